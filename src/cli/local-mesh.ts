// `tokenmesh local-mesh CONFIG...`: runs one `serve` process per config file (the default is the
// 3-replica mesh in config/local-mesh/), prefixes their logs, and passes SIGINT/SIGTERM on so
// every replica drains and exits; SIGHUP is passed on too (a live config reload). Exits with the first non-zero exit code, or 0.

import { spawn } from "node:child_process";
import { basename } from "node:path";
import { createInterface } from "node:readline";

export async function runLocalMesh(configs: readonly string[]): Promise<number> {
  // The entry script that started this process (bin/tokenmesh.mjs): each replica then runs the
  // same code as this one, the build when there is one, the sources otherwise.
  const CLI = process.argv[1];
  if (CLI === undefined) throw new Error("local-mesh runs from the tokenmesh command line");
  const children = configs.map((config) => {
    const name = basename(config).replace(/\.(ya?ml|json)$/, "");
    const child = spawn(process.execPath, [CLI, "serve", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => process.stdout.write(`[${name}] ${line}\n`));
    }
    const exited = new Promise<number>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal === null ? 1 : 0))));
    return { child, exited };
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    stopping = true;
    for (const { child } of children) if (child.exitCode === null) child.kill(signal);
  };
  // SIGHUP reloads every replica's config file (each validates its own; see "Changing the config live").
  process.on("SIGHUP", () => {
    for (const { child } of children) if (child.exitCode === null) child.kill("SIGHUP");
  });
  process.on("SIGINT", () => stop("SIGTERM"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // If one replica dies on its own, stop the others too: a half mesh is confusing to try.
  const first = await Promise.race(children.map((c, i) => c.exited.then((code) => ({ code, i }))));
  if (!stopping) {
    process.stderr.write(`replica ${configs[first.i]} exited with ${first.code}; stopping the others\n`);
    stop("SIGTERM");
  }
  const codes = await Promise.all(children.map((c) => c.exited));
  return codes.find((c) => c !== 0) ?? 0;
}
