// `tokenmesh consume|query`: one decision against a running server, printed for a person or as
// JSON for scripts. Exit code 0 when allowed, 1 when denied, 2 on errors.

import { readFileSync } from "node:fs";
import { ChannelCredentials } from "@grpc/grpc-js";
import { type Client, ClientError, createChannel, createClient, Status } from "nice-grpc";
import { RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../grpc/service-definition.ts";

/** Where a client command finds the server, and how long it waits. */
export interface ServerConnection {
  readonly address: string;
  readonly timeoutMs: number;
  /** TLS to the server: the CA that signed its certificate, and optionally a client identity. */
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
}

export interface ClientArgs extends ServerConnection {
  readonly policy: string;
  readonly key: string;
  readonly cost: number | undefined;
  readonly json: boolean;
  /** Query only: also show each replica's part in the bucket. */
  readonly replicas: boolean;
}

export function credentialsFor(tls: ClientArgs["tls"]): ChannelCredentials {
  if (tls === undefined) return ChannelCredentials.createInsecure();
  const read = (path: string | undefined) => (path === undefined ? null : readFileSync(path));
  return ChannelCredentials.createSsl(readFileSync(tls.ca), read(tls.key), read(tls.cert));
}

const definition = niceDefinition(RateLimiter);

const usFormat = (us: bigint): string => (us === 0n ? "0" : us < 1000n ? `${us}us` : `${Number(us) / 1000}ms`);

export async function runClientCommand(command: "consume" | "query", args: ClientArgs): Promise<number> {
  let channel: ReturnType<typeof createChannel>;
  try {
    channel = createChannel(args.address, credentialsFor(args.tls));
  } catch (err) {
    process.stderr.write(`tokenmesh ${command}: cannot set up TLS: ${(err as Error).message}\n`);
    return 2;
  }
  const client: Client<typeof definition> = createClient(definition, channel);
  try {
    const request = {
      decisions: [{ buckets: [{ policy: args.policy, key: args.key, ...(args.cost === undefined ? {} : { cost: args.cost }) }] }],
    };
    const options = { signal: AbortSignal.timeout(args.timeoutMs) };
    const response =
      command === "consume"
        ? await client.consume(request, options)
        : await client.query({ ...request, includeReplicas: args.replicas }, options);
    const result = response.results[0];
    const bucket = result?.buckets[0];
    if (result === undefined || bucket === undefined) throw new Error("server sent an empty answer");
    if (args.json) {
      process.stdout.write(
        `${JSON.stringify({
          allowed: result.allowed,
          remaining: Number(bucket.remaining),
          retryAfterMs: Number(result.retryAfterUs) / 1000,
          resetAfterMs: Number(bucket.resetAfterUs) / 1000,
          limit: {
            capacity: Number(bucket.capacity),
            refillTokens: Number(bucket.refillTokens),
            refillPeriodMs: Number(bucket.refillPeriodMs),
          },
        })}\n`,
      );
    } else {
      const verdict = command === "query" ? (result.allowed ? "would allow" : "would deny") : result.allowed ? "allowed" : "denied";
      process.stdout.write(
        `${verdict}  ${args.policy}/${args.key}  remaining=${bucket.remaining}/${bucket.capacity}  retry_after=${usFormat(result.retryAfterUs)}  reset_after=${usFormat(bucket.resetAfterUs)}\n`,
      );
      for (const r of bucket.replicas) {
        const who = `${r.node === "" ? "(unknown)" : r.node}${r.local ? " (this replica)" : ""}${r.retired ? " (retired)" : ""}`;
        process.stdout.write(`  ${who.padEnd(28)} consumed=${r.consumed}  lag=${usFormat(r.lagUs)}  incarnation=${r.incarnation}\n`);
      }
    }
    return result.allowed ? 0 : 1;
  } catch (err) {
    const message = err instanceof ClientError ? `${Status[err.code]}: ${err.details}` : String(err);
    process.stderr.write(`tokenmesh ${command}: ${message}\n`);
    return 2;
  } finally {
    channel.close();
  }
}
