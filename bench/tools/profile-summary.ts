// Summarises V8 CPU profiles (from `npm run bench -- --cpu-prof DIR`): self time by function and
// by package/file, so a finding can be quoted with its share of the process's time.
// Usage: npx tsx bench/tools/profile-summary.ts DIR_OR_FILE [TOP] [--skip-ms MS]
//   --skip-ms MS  leaves out each profile's first MS milliseconds: a server's start-up (module
//                 loading, the LRU's preallocation, a snapshot load) otherwise fills a short
//                 profile and hides what a call costs.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * For a file of the esbuild bundle (dist/): the line where each input module starts and its
 * package (or src/ path), from the `// node_modules/...` and `// src/...` comments esbuild
 * writes. Without it a replica's whole bundle is one or two chunk files in the summary.
 */
const bundleSections = new Map<string, (readonly [number, string])[] | undefined>();
function sectionsOf(url: string): (readonly [number, string])[] | undefined {
  if (bundleSections.has(url)) return bundleSections.get(url);
  let sections: (readonly [number, string])[] | undefined;
  // A later `npm run build` replaces the chunk files a profile names: then the frames are
  // attributed to the chunk, with a warning, rather than the summary failing.
  if (url.startsWith("file://") && url.includes("/dist/") && !existsSync(new URL(url))) {
    process.stderr.write(`profile-summary: ${url} is gone (rebuilt since the profile?); its frames are counted under the chunk\n`);
  } else if (url.startsWith("file://") && url.includes("/dist/")) {
    sections = [];
    const lines = readFileSync(new URL(url), "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      const m = /^\/\/ (?:node_modules\/((?:@[^/]+\/)?[^/]+)\/.*|((?:src|bench)\/.*))$/.exec(lines[i] as string);
      if (m !== null) sections.push([i, (m[1] ?? m[2]) as string]);
    }
  }
  bundleSections.set(url, sections);
  return sections;
}

/** The module a sampled frame belongs to (lineNumber is 0-based, as V8 reports it). */
function whereFrame(url: string, lineNumber: number): string {
  const sections = sectionsOf(url);
  if (sections === undefined) return where(url);
  let name = "(bundle runtime)";
  for (const [start, module] of sections) {
    if (start > lineNumber) break;
    name = module;
  }
  return name;
}

function where(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m !== null) return m[1] as string;
  if (url.startsWith("node:")) return url;
  const src = /\/(src|bench)\/(.*)$/.exec(url);
  return src !== null ? `${src[1]}/${src[2]}` : url === "" ? "(native/gc)" : url;
}

const { values: flags, positionals } = parseArgs({ options: { "skip-ms": { type: "string", default: "0" } }, allowPositionals: true });
const [input, topArg] = positionals;
if (input === undefined) throw new Error("usage: profile-summary.ts DIR_OR_FILE [TOP] [--skip-ms MS]");
const skipUs = Number(flags["skip-ms"]) * 1000;
if (!Number.isFinite(skipUs) || skipUs < 0) throw new Error(`--skip-ms must be a number >= 0, got ${flags["skip-ms"]}`);
const files = statSync(input).isDirectory()
  ? readdirSync(input)
      .filter((f) => f.endsWith(".cpuprofile"))
      .map((f) => join(input, f))
  : [input];
const top = Number(topArg ?? 25);
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  // Attribute each sample's time delta to the sampled (leaf) function: self time.
  let elapsed = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = nodes.get(profile.samples[i] as number);
    const dt = profile.timeDeltas[i] ?? 0;
    elapsed += dt;
    if (node === undefined || elapsed < skipUs) continue;
    const fn = node.callFrame.functionName || "(anonymous)";
    if (fn === "(idle)" || fn === "(program)") continue;
    const file = whereFrame(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${fn} ${file}:${node.callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + dt);
    byFile.set(file, (byFile.get(file) ?? 0) + dt);
    total += dt;
  }
}
const show = (title: string, m: Map<string, number>): void => {
  process.stdout.write(
    `\n${title} (busy time ${(total / 1e6).toFixed(2)} s over ${files.length} profile(s)${skipUs > 0 ? `, first ${skipUs / 1000} ms of each left out` : ""})\n`,
  );
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}\n`);
  }
};
show("self time by package or file", byFile);
show("self time by function", byFunction);
