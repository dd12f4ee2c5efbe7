// Reads the repo's Dockerfile into stages (dockerfile-ast, the parser behind VS Code's Docker
// support), so tests run what the image runs: the runtime stage's copies, its `npm ci`, its ENV
// and its exact CMD and HEALTHCHECK, with no second copy of them to drift.

import { readFileSync } from "node:fs";
import { DockerfileParser, type Instruction } from "dockerfile-ast";
import { validate } from "dockerfile-utils";
import { REPO_ROOT } from "./process.ts";

export type Step =
  | { readonly kind: "copy"; readonly from: string | undefined; readonly sources: readonly string[]; readonly dest: string }
  | { readonly kind: "run"; readonly command: string };

export interface Stage {
  readonly name: string | undefined;
  readonly image: string;
  /** WORKDIR in force at the end of the stage ("/" when none). */
  workdir: string;
  readonly env: Record<string, string>;
  readonly steps: Step[];
  user: string | undefined;
  readonly volumes: string[];
  readonly exposed: number[];
  cmd: readonly string[] | undefined;
  healthcheck: { readonly command: readonly string[]; readonly flags: Readonly<Record<string, string>> } | undefined;
}

export const DOCKERFILE = `${REPO_ROOT}Dockerfile`;

/** An exec-form argument list (a JSON array of strings); shell form is refused on purpose. */
function execForm(where: string, text: string): string[] {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`${where}: not an exec-form array: ${text}`);
  return parsed as string[];
}

function flagsOf(ins: Instruction): Record<string, string> {
  const out: Record<string, string> = {};
  const withFlags = ins as Instruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  for (const f of withFlags.getFlags?.() ?? []) out[f.getName()] = f.getValue() ?? "";
  return out;
}

export function readDockerfile(path = DOCKERFILE): { stages: Stage[]; problems: string[] } {
  const text = readFileSync(path, "utf8");
  const problems = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
  const stages: Stage[] = [];
  for (const ins of DockerfileParser.parse(text).getInstructions()) {
    const keyword = ins.getKeyword();
    const args = ins.getArguments().map((a) => a.getValue());
    if (keyword === "FROM") {
      const as = args.findIndex((a) => a.toUpperCase() === "AS");
      const stage: Stage = {
        name: as >= 0 ? args[as + 1] : undefined,
        image: args[0] ?? "",
        workdir: "/",
        env: {},
        steps: [],
        user: undefined,
        volumes: [],
        exposed: [],
        cmd: undefined,
        healthcheck: undefined,
      };
      stages.push(stage);
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) throw new Error(`${keyword} before any FROM`);
    const content = ins.getArgumentsContent() ?? "";
    switch (keyword) {
      case "WORKDIR":
        stage.workdir = content.startsWith("/") ? content : `${stage.workdir.replace(/\/$/, "")}/${content}`;
        break;
      case "ENV":
        for (const p of (ins as Instruction & { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties()) {
          stage.env[p.getName()] = p.getValue() ?? "";
        }
        break;
      case "COPY":
        stage.steps.push({ kind: "copy", from: flagsOf(ins).from, sources: args.slice(0, -1), dest: args.at(-1) ?? "" });
        break;
      case "RUN":
        stage.steps.push({ kind: "run", command: content });
        break;
      case "USER":
        stage.user = content;
        break;
      case "VOLUME":
        stage.volumes.push(...(content.startsWith("[") ? execForm("VOLUME", content) : args));
        break;
      case "EXPOSE":
        stage.exposed.push(...args.map((a) => Number.parseInt(a, 10)));
        break;
      case "CMD":
        stage.cmd = execForm("CMD", content);
        break;
      case "HEALTHCHECK": {
        const at = content.indexOf("CMD ");
        if (at < 0) throw new Error(`HEALTHCHECK without CMD: ${content}`);
        stage.healthcheck = { command: execForm("HEALTHCHECK", content.slice(at + 4).trim()), flags: flagsOf(ins) };
        break;
      }
      default:
        break;
    }
  }
  return { stages, problems };
}
