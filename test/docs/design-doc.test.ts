// The design contract is docs/design.md, and code comments cite it: "trap N", "docs/design.md,
// "Section"", "docs/crdt-history.md item N". Each citation must name something the docs define,
// the trap tests must carry the names the doc gives, and no doc may point outside the
// repository (a contract that lives elsewhere cannot be read with the code).

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/process.ts";

const read = (path: string): string => readFileSync(join(REPO_ROOT, path), "utf8");
const DESIGN = read("docs/design.md");
const HISTORY = read("docs/crdt-history.md");

/** Files under `dir` (relative to the repo) whose names end in one of `exts`, generated code left out. */
function files(dir: string, exts: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (abs: string): void => {
    for (const name of readdirSync(abs)) {
      const path = join(abs, name);
      if (statSync(path).isDirectory()) {
        if (name !== "node_modules" && name !== "gen") walk(path);
      } else if (exts.some((e) => name.endsWith(e))) out.push(relative(REPO_ROOT, path));
    }
  };
  walk(join(REPO_ROOT, dir));
  return out.sort();
}

const SELF = "test/docs/design-doc.test.ts";
const SOURCES = [
  ...files("src", [".ts"]),
  ...files("test", [".ts"]),
  ...files("bench", [".ts"]),
  ...files("scripts", [".ts", ".mjs"]),
].filter((f) => f !== SELF);
const DOCS = ["README.md", ...files("docs", [".md"])];

/** Trap numbers docs/design.md defines ("**Trap N: name.**"), with their names. */
function definedTraps(): Map<number, string> {
  const traps = new Map<number, string>();
  for (const m of DESIGN.matchAll(/^\*\*Trap (\d+): ([^*]+?)\.\*\*/gm)) traps.set(Number(m[1]), (m[2] as string).toLowerCase());
  return traps;
}

/**
 * Headings of a markdown text, without the leading hashes and section numbers ("1. "); a heading
 * with a subtitle ("The registry: watermarks, ...") may be cited by the part before the colon.
 */
function headings(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(/^#{1,6} +(?:\d+\. +)?(.+?) *$/gm)) {
    const title = (m[1] as string).toLowerCase();
    out.add(title);
    out.add(title.split(":")[0] as string);
  }
  return out;
}

describe("docs/design.md defines what the code cites", () => {
  const traps = definedTraps();

  it("defines traps 1 to 12, in order", () => {
    expect([...traps.keys()]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it('every "trap N" cited in src, test, bench and the docs is defined there', () => {
    const undefinedCites: string[] = [];
    for (const file of [...SOURCES, ...DOCS]) {
      for (const m of read(file).matchAll(/\btraps? (\d+)(?:(?:,| and) (\d+))?/gi)) {
        for (const n of [m[1], m[2]]) if (n !== undefined && !traps.has(Number(n))) undefinedCites.push(`${file}: trap ${n}`);
      }
    }
    expect(undefinedCites).toEqual([]);
  });

  it("the trap tests carry the numbers and names the doc gives", () => {
    const titles = [...read("test/crdt/traps.test.ts").matchAll(/it\("trap (\d+), ([^:]+):/g)];
    expect(titles.map((m) => Number(m[1]))).toEqual([...traps.keys()]);
    for (const m of titles) expect(traps.get(Number(m[1])), `trap ${m[1]}`).toContain((m[2] as string).toLowerCase());
  });

  it('every section cited as docs/design.md, "Title" is a heading of the doc', () => {
    const known = headings(DESIGN);
    const missing: string[] = [];
    for (const file of [...SOURCES, ...DOCS]) {
      if (file === "test/docs/design-doc.test.ts") continue; // its own comments show the pattern
      // The title may wrap onto the next comment line: join comment continuations first.
      const text = read(file).replace(/\n\s*(?:\/\/|\*) ?/g, " ");
      for (const m of text.matchAll(/design\.md,? "([^"]+)"/g)) {
        if (!known.has((m[1] as string).toLowerCase())) missing.push(`${file}: "${m[1]}"`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("every crdt-history.md item cited exists there", () => {
    const items = new Set([...HISTORY.matchAll(/^(\d+)\. \*\*/gm)].map((m) => Number(m[1])));
    expect(items.size).toBeGreaterThanOrEqual(20);
    const missing: string[] = [];
    for (const file of [...SOURCES, ...DOCS]) {
      for (const m of read(file).matchAll(/crdt-history\.md,? items? (\d+)/g))
        if (!items.has(Number(m[1]))) missing.push(`${file}: item ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });
});

describe("no doc points outside the repository", () => {
  it("no pointer to the old design notes or a sibling directory", () => {
    const found: string[] = [];
    for (const file of [...DOCS, ...SOURCES]) {
      read(file)
        .split("\n")
        .forEach((line, i) => {
          if (/design notes|\.\.\/shared\b/i.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });

  it("every relative link in the docs names a file inside the repository that exists", () => {
    const bad: string[] = [];
    for (const file of DOCS) {
      for (const m of read(file).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1] as string;
        if (/^[a-z]+:/i.test(target)) continue; // https:, mailto:
        const abs = resolve(REPO_ROOT, dirname(file), target);
        const inside = !relative(REPO_ROOT, abs).startsWith("..");
        if (!inside || !existsSync(abs)) bad.push(`${file}: ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it("design.md and crdt.md link each other and the appendix", () => {
    expect(DESIGN).toContain("](crdt.md)");
    expect(DESIGN).toContain("](crdt-history.md)");
    expect(read("docs/crdt.md")).toContain("](design.md)");
    expect(read("docs/crdt.md")).toContain("](crdt-history.md)");
    expect(HISTORY).toContain("](crdt.md)");
    expect(read("README.md")).toContain("](docs/design.md)");
  });
});
