// Command-line entry: `tokenmesh serve | consume | query`.

import { parseArgs } from "node:util";
import { runClientCommand } from "./client-commands.ts";
import { runLocalMesh } from "./local-mesh.ts";
import { serve } from "./serve.ts";
import { runShouldRateLimit } from "./should-rate-limit.ts";

const USAGE = `usage:
  tokenmesh serve --config FILE
  tokenmesh local-mesh CONFIG...      one serve process per config (npm start: the 3-replica mesh)
  tokenmesh consume --address HOST:PORT --policy P --key K [--cost N] [--json] [--timeout-ms N]
  tokenmesh query   --address HOST:PORT --policy P --key K [--cost N] [--json] [--timeout-ms N] [--replicas]
  tokenmesh should-rate-limit --address HOST:PORT --domain D --descriptor KEY=VALUE[,KEY=VALUE...] ... [--hits N] [--repeat N] [--json]
                                      one Envoy ShouldRateLimit call (one --descriptor per descriptor)

TLS to the server: --tls-ca FILE (its CA), plus --tls-cert FILE --tls-key FILE for mutual TLS.

consume/query/should-rate-limit exit 0 when allowed, 1 when denied, 2 on error.
`;

function fail(message: string): number {
  process.stderr.write(`tokenmesh: ${message}\n\n${USAGE}`);
  return 2;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "local-mesh") {
    if (rest.length === 0) return fail("local-mesh needs one or more config files");
    return runLocalMesh(rest);
  }
  let values: Record<string, string | boolean | string[] | undefined>;
  try {
    values = parseArgs({
      args: [...rest],
      options: {
        config: { type: "string" },
        address: { type: "string", default: "127.0.0.1:50051" },
        policy: { type: "string" },
        key: { type: "string" },
        cost: { type: "string" },
        json: { type: "boolean", default: false },
        replicas: { type: "boolean", default: false },
        "tls-ca": { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "timeout-ms": { type: "string", default: "2000" },
        domain: { type: "string" },
        descriptor: { type: "string", multiple: true },
        hits: { type: "string" },
        repeat: { type: "string", default: "1" },
      },
      strict: true,
    }).values;
  } catch (err) {
    return fail((err as Error).message);
  }
  if (command === "serve") {
    if (typeof values.config !== "string") return fail("serve needs --config FILE");
    return serve(values.config);
  }
  if (command === "should-rate-limit") {
    const descriptors = Array.isArray(values.descriptor) ? values.descriptor : [];
    if (typeof values.domain !== "string" || descriptors.length === 0) return fail("should-rate-limit needs --domain and --descriptor");
    const hits = values.hits === undefined ? undefined : Number(values.hits);
    if (hits !== undefined && !(Number.isSafeInteger(hits) && hits >= 0)) return fail(`--hits must be a whole number, got ${values.hits}`);
    const timeoutMs = Number(values["timeout-ms"]);
    if (!(timeoutMs > 0)) return fail(`--timeout-ms must be positive, got ${values["timeout-ms"]}`);
    const repeat = Number(values.repeat);
    if (!(Number.isSafeInteger(repeat) && repeat >= 1 && repeat <= 1000)) return fail(`--repeat must be 1..1000, got ${values.repeat}`);
    return runShouldRateLimit({
      repeat,
      address: String(values.address),
      domain: values.domain,
      descriptors,
      hits,
      json: values.json === true,
      timeoutMs,
    });
  }
  if (command === "consume" || command === "query") {
    if (typeof values.policy !== "string" || typeof values.key !== "string") return fail(`${command} needs --policy and --key`);
    const cost = values.cost === undefined ? undefined : Number(values.cost);
    if (cost !== undefined && !(Number.isSafeInteger(cost) && cost >= 0)) return fail(`--cost must be a whole number, got ${values.cost}`);
    const timeoutMs = Number(values["timeout-ms"]);
    if (!(timeoutMs > 0)) return fail(`--timeout-ms must be positive, got ${values["timeout-ms"]}`);
    return runClientCommand(command, {
      address: String(values.address),
      policy: values.policy,
      key: values.key,
      cost,
      json: values.json === true,
      timeoutMs,
      replicas: values.replicas === true,
      ...(typeof values["tls-ca"] === "string"
        ? {
            tls: {
              ca: values["tls-ca"],
              ...(typeof values["tls-cert"] === "string" ? { cert: values["tls-cert"] } : {}),
              ...(typeof values["tls-key"] === "string" ? { key: values["tls-key"] } : {}),
            },
          }
        : {}),
    });
  }
  return fail(`unknown command "${command}"`);
}
