// Calls sampled with a real gRPC client (nice-grpc over grpc-js, the repo's own definition)
// while a load runs: h2load reports any HTTP 200 as a success, and a server's own counters can
// be unavailable, so a few real calls per run show whether the service answers with status OK
// and a well-formed response (one result per decision).

import { ClientError, createChannel, createClient } from "nice-grpc";
import { RateLimiter } from "../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../../src/grpc/service-definition.ts";
import { keyName } from "./keys.ts";

export interface SampleTally {
  ok: number;
  /** By gRPC status name, or "malformed" for an OK answer of the wrong shape. */
  failed: Record<string, number>;
}

const definition = niceDefinition(RateLimiter);

/** Sends one Consume every `everyMs` until stopped; returns what came back. */
export function startSampler(address: string, policy: string, everyMs: number): { stop(): Promise<SampleTally> } {
  // A channel of its own: grpc-js would otherwise share a subchannel with nothing else here,
  // but keeping it separate makes the sampler's connection obviously not the load's.
  const channel = createChannel(address, undefined, { "grpc.use_local_subchannel_pool": 1 });
  const client = createClient(definition, channel);
  const tally: SampleTally = { ok: 0, failed: {} };
  const pending = new Set<Promise<void>>();
  let n = 0;
  const fail = (kind: string): void => {
    tally.failed[kind] = (tally.failed[kind] ?? 0) + 1;
  };
  const once = (): void => {
    const key = keyName(9_000_000 + (n++ % 1000)); // outside every load's key space
    const p = client
      .consume({ decisions: [{ buckets: [{ policy, key }] }] }, { signal: AbortSignal.timeout(5000) })
      .then(
        (res) => {
          if (res.results.length === 1 && res.results[0]?.buckets.length === 1) tally.ok++;
          else fail("malformed");
        },
        (err: unknown) => fail(err instanceof ClientError ? `grpc-${err.code}` : "transport"),
      )
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  const timer = setInterval(once, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.all(pending);
      channel.close();
      return tally;
    },
  };
}
