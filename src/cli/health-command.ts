// `tokenmesh health`: one grpc.health.v1 Check against a running server, for container health
// checks and scripts. Exit code 0 when SERVING, 1 for any other status, 2 when it cannot ask.

import { ClientError, createChannel, createClient, Status } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { credentialsFor, type ServerConnection } from "./client-commands.ts";

export interface HealthArgs extends ServerConnection {
  /** "" for the process, or a service name (tokenmesh.v1.RateLimiter: admitting). */
  readonly service: string;
}

const STATUS_NAMES: readonly string[] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

export async function runHealthCheck(args: HealthArgs): Promise<number> {
  let channel: ReturnType<typeof createChannel>;
  try {
    channel = createChannel(args.address, credentialsFor(args.tls));
  } catch (err) {
    process.stderr.write(`tokenmesh health: cannot set up TLS: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const client = createClient(HealthDefinition, channel);
    const { status } = await client.check({ service: args.service }, { signal: AbortSignal.timeout(args.timeoutMs) });
    const name = STATUS_NAMES[status] ?? `status ${status}`;
    process.stdout.write(`${name}${args.service === "" ? "" : `  ${args.service}`}\n`);
    return name === "SERVING" ? 0 : 1;
  } catch (err) {
    const message = err instanceof ClientError ? `${Status[err.code]}: ${err.details}` : String(err);
    process.stderr.write(`tokenmesh health: ${message}\n`);
    return 2;
  } finally {
    channel.close();
  }
}
