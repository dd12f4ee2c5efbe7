// What each `tokenmesh` command accepts, its usage text, and the checks every command's options
// get before anything connects or binds: an unknown option is named and answered with that
// command's usage; an address without a port is explained instead of being dialled (grpc-js would
// take "50051" for a host name and the call would fail far from the mistake).

import { type ParseArgsConfig, parseArgs } from "node:util";
import type { Result } from "../core/result.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

export const COMMANDS = ["serve", "local-mesh", "consume", "query", "should-rate-limit", "health"] as const;
export type CommandName = (typeof COMMANDS)[number];

const help = { help: { type: "boolean", short: "h", default: false } } as const satisfies Options;

const connection = {
  address: { type: "string", default: "127.0.0.1:50051" },
  "timeout-ms": { type: "string", default: "2000" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
} as const satisfies Options;

const decision = {
  policy: { type: "string" },
  key: { type: "string" },
  cost: { type: "string" },
  json: { type: "boolean", default: false },
} as const satisfies Options;

const CONNECTION_USAGE = `  --address HOST:PORT  the server's client port (default 127.0.0.1:50051)
  --timeout-ms N       give up after N ms (default 2000)
  --tls-ca FILE        TLS: the CA that signed the server's certificate
  --tls-cert FILE      mutual TLS: this client's certificate (with --tls-key)
  --tls-key FILE       mutual TLS: this client's private key`;

interface Command {
  readonly options: Options;
  /** Accepts file arguments after the options (local-mesh only). */
  readonly positionals: boolean;
  readonly usage: string;
}

export const COMMAND_TABLE: Readonly<Record<CommandName, Command>> = {
  serve: {
    options: { ...help, config: { type: "string" } },
    positionals: false,
    usage: `usage: tokenmesh serve --config FILE

Runs one replica until SIGTERM or SIGINT, then drains in-flight calls and exits 0.
  --config FILE        the YAML (or JSON) config; TOKENMESH_LISTEN, TOKENMESH_METRICS_LISTEN,
                       TOKENMESH_LOG_LEVEL and TOKENMESH_NODE override parts of it
Exits 2 on a config error (each problem named with its path), 1 if it cannot bind.`,
  },
  "local-mesh": {
    options: { ...help },
    positionals: true,
    usage: `usage: tokenmesh local-mesh CONFIG...

Runs one \`serve\` process per config file (npm start: the 3-replica mesh in config/local-mesh/),
prefixes their logs with the file's name, and stops them all on Ctrl-C or SIGTERM.`,
  },
  consume: {
    options: { ...help, ...connection, ...decision },
    positionals: false,
    usage: `usage: tokenmesh consume --policy P --key K [--cost N] [--json] [options]

Takes N tokens (default 1) from one bucket. Exits 0 when allowed, 1 when denied, 2 on error.
  --policy P           a policy of the server's config
  --key K              the bucket's key under that policy
  --cost N             tokens to take (default 1)
  --json               one JSON object on stdout instead of a line of text
${CONNECTION_USAGE}`,
  },
  query: {
    options: { ...help, ...connection, ...decision, replicas: { type: "boolean", default: false } },
    positionals: false,
    usage: `usage: tokenmesh query --policy P --key K [--cost N] [--json] [--replicas] [options]

Answers what consume would, taking nothing. Exits 0 when it would allow, 1 when it would deny,
2 on error.
  --policy P, --key K, --cost N, --json   as for consume
  --replicas           also list each replica's part in the bucket and its replication lag
${CONNECTION_USAGE}`,
  },
  "should-rate-limit": {
    options: {
      ...help,
      address: connection.address,
      "timeout-ms": connection["timeout-ms"],
      domain: { type: "string" },
      descriptor: { type: "string", multiple: true },
      hits: { type: "string" },
      repeat: { type: "string", default: "1" },
      json: { type: "boolean", default: false },
    },
    positionals: false,
    usage: `usage: tokenmesh should-rate-limit --domain D --descriptor KEY=VALUE[,KEY=VALUE...] ... [options]

One Envoy ShouldRateLimit call, as Envoy would make it (one --descriptor per descriptor).
Exits 0 for OK, 1 for OVER_LIMIT, 2 on error.
  --domain D           the rate limit config's domain
  --descriptor K=V,... one descriptor's entries; repeat the option for more descriptors
  --hits N             hits to add (default: Envoy's 1)
  --repeat N           calls back to back, 1..1000 (a CLI start outlasts a fast refill)
  --json               the response as JSON
  --address HOST:PORT  the server's client port (default 127.0.0.1:50051)
  --timeout-ms N       give up after N ms (default 2000)`,
  },
  health: {
    options: { ...help, ...connection, service: { type: "string", default: "" } },
    positionals: false,
    usage: `usage: tokenmesh health [--service NAME] [options]

Asks the server's grpc.health.v1 service (the container's health check uses this). Prints the
status; exits 0 when SERVING, 1 when not, 2 when the server cannot be asked.
  --service NAME       "" (default): the process is up; tokenmesh.v1.RateLimiter: it admits
                       (a mesh replica reports NOT_SERVING while it warms up or drains)
${CONNECTION_USAGE}`,
  },
};

export const USAGE = `usage: tokenmesh COMMAND [options]

commands:
  serve --config FILE     run one replica
  local-mesh CONFIG...    one serve process per config (npm start: the 3-replica mesh)
  consume                 take tokens from a bucket (exit 0 allowed, 1 denied, 2 error)
  query                   what consume would answer, taking nothing
  should-rate-limit       one Envoy ShouldRateLimit call (exit 0 OK, 1 OVER_LIMIT, 2 error)
  health                  the server's health status (exit 0 when SERVING)

tokenmesh COMMAND --help  the command's options
tokenmesh --version       the version
`;

export interface CommandArguments {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

/** The arguments, or node:util's message naming the bad option. */
export type ParsedCommand = Result<CommandArguments, string>;

/** Parses a command's arguments; never throws: a bad argument comes back as a message. */
export function parseCommand(command: CommandName, args: readonly string[]): ParsedCommand {
  const spec = COMMAND_TABLE[command];
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: spec.options, allowPositionals: spec.positionals, strict: true });
    return { ok: true, value: { values: values as Record<string, string | boolean | string[] | undefined>, positionals } };
  } catch (err) {
    // node:util names the option in its message ("Unknown option '--colour'").
    return { ok: false, error: (err as Error).message };
  }
}

/**
 * Why an --address will not reach a tokenmesh server, or undefined when it looks usable.
 * grpc-js targets with a scheme (dns:, unix:, ipv4:, ...) are passed through untouched.
 */
export function addressProblem(address: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:(?!\d+$)/i.test(address)) return undefined;
  if (/^\d{1,5}$/.test(address)) return `--address ${address} is a port without a host: did you mean 127.0.0.1:${address}?`;
  if (!/:\d{1,5}$/.test(address)) return `--address ${address} has no port: did you mean ${address}:50051?`;
  return undefined;
}

/** A whole number of at least `min`, or a message naming the option. */
export function wholeNumber(option: string, raw: string, min: number): number | string {
  const n = Number(raw);
  if (raw.trim() === "" || !Number.isSafeInteger(n) || n < min) return `--${option} must be a whole number of at least ${min}, got ${raw}`;
  return n;
}
