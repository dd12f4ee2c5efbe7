// Command-line entry: `tokenmesh serve | local-mesh | consume | query | should-rate-limit | health`.
//
// Each command's module is imported only when that command runs: a `consume` from a shell loop
// must not pay for loading the server, pino and prom-client (see bench/scenarios/start-up.ts).

import packageJson from "../../package.json" with { type: "json" };
import { addressProblem, COMMAND_TABLE, COMMANDS, type CommandName, parseCommand, USAGE, wholeNumber } from "./command-line.ts";

type Values = Readonly<Record<string, string | boolean | string[] | undefined>>;

function fail(message: string, usage: string): number {
  process.stderr.write(`tokenmesh: ${message}\n\n${usage}\n`);
  return 2;
}

const isCommand = (s: string): s is CommandName => (COMMANDS as readonly string[]).includes(s);

const text = (values: Values, name: string): string | undefined => {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
};

/** TLS options shared by the client commands, or an error message. */
function clientTls(values: Values): { tls?: { ca: string; cert?: string; key?: string } } | string {
  const ca = text(values, "tls-ca");
  const cert = text(values, "tls-cert");
  const key = text(values, "tls-key");
  if (ca === undefined) return cert === undefined && key === undefined ? {} : "--tls-cert and --tls-key need --tls-ca (the server's CA)";
  if ((cert === undefined) !== (key === undefined)) return "--tls-cert and --tls-key go together";
  return { tls: { ca, ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) } };
}

/** Options every client command shares: where the server is, how long to wait, TLS. */
function connection(values: Values): { address: string; timeoutMs: number; tls?: { ca: string; cert?: string; key?: string } } | string {
  const address = text(values, "address") ?? "127.0.0.1:50051";
  const problem = addressProblem(address);
  if (problem !== undefined) return problem;
  const timeoutMs = wholeNumber("timeout-ms", text(values, "timeout-ms") ?? "", 1);
  if (typeof timeoutMs === "string") return timeoutMs;
  const tls = clientTls(values);
  if (typeof tls === "string") return tls;
  return { address, timeoutMs, ...tls };
}

async function run(command: CommandName, values: Values, positionals: readonly string[]): Promise<number> {
  const usage = COMMAND_TABLE[command].usage;
  switch (command) {
    case "serve": {
      const config = text(values, "config");
      if (config === undefined) return fail("serve needs --config FILE", usage);
      const { serve } = await import("./serve.ts");
      return serve(config);
    }
    case "local-mesh": {
      if (positionals.length === 0) return fail("local-mesh needs one or more config files", usage);
      const { runLocalMesh } = await import("./local-mesh.ts");
      return runLocalMesh(positionals);
    }
    case "health": {
      const conn = connection(values);
      if (typeof conn === "string") return fail(conn, usage);
      const { runHealthCheck } = await import("./health-command.ts");
      return runHealthCheck({ ...conn, service: text(values, "service") ?? "" });
    }
    case "should-rate-limit": {
      const domain = text(values, "domain");
      const descriptors = Array.isArray(values.descriptor) ? values.descriptor : [];
      if (domain === undefined || descriptors.length === 0) return fail("should-rate-limit needs --domain and --descriptor", usage);
      const address = text(values, "address") ?? "127.0.0.1:50051";
      const problem = addressProblem(address);
      if (problem !== undefined) return fail(problem, usage);
      const timeoutMs = wholeNumber("timeout-ms", text(values, "timeout-ms") ?? "", 1);
      if (typeof timeoutMs === "string") return fail(timeoutMs, usage);
      const rawHits = text(values, "hits");
      const hits = rawHits === undefined ? undefined : wholeNumber("hits", rawHits, 0);
      if (typeof hits === "string") return fail(hits, usage);
      const repeat = wholeNumber("repeat", text(values, "repeat") ?? "", 1);
      if (typeof repeat === "string" || repeat > 1000) return fail(`--repeat must be 1..1000, got ${text(values, "repeat")}`, usage);
      const { runShouldRateLimit } = await import("./should-rate-limit.ts");
      return runShouldRateLimit({ address, domain, descriptors, hits, json: values.json === true, timeoutMs, repeat });
    }
    case "consume":
    case "query": {
      const policy = text(values, "policy");
      const key = text(values, "key");
      if (policy === undefined || key === undefined) return fail(`${command} needs --policy and --key`, usage);
      const conn = connection(values);
      if (typeof conn === "string") return fail(conn, usage);
      const rawCost = text(values, "cost");
      const cost = rawCost === undefined ? undefined : wholeNumber("cost", rawCost, 0);
      if (typeof cost === "string") return fail(cost, usage);
      const { runClientCommand } = await import("./client-commands.ts");
      return runClientCommand(command, { ...conn, policy, key, cost, json: values.json === true, replicas: values.replicas === true });
    }
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) return fail("which command?", USAGE);
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (first === "--version" || first === "-v" || first === "version") {
    process.stdout.write(`tokenmesh ${packageJson.version}\n`);
    return 0;
  }
  if (!isCommand(first)) {
    return fail(first.startsWith("-") ? `unknown option ${first}` : `unknown command "${first}" (commands: ${COMMANDS.join(", ")})`, USAGE);
  }
  const usage = COMMAND_TABLE[first].usage;
  const parsed = parseCommand(first, rest);
  if (!parsed.ok) return fail(`${first}: ${parsed.error}`, usage);
  if (parsed.value.values.help === true) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  return run(first, parsed.value.values, parsed.value.positionals);
}
