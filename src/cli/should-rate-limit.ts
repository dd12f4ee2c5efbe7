// `tokenmesh should-rate-limit`: one Envoy ShouldRateLimit call, as Envoy would make it, for
// trying a domain's limits from a shell. Exit code 0 for OK, 1 for OVER_LIMIT, 2 on errors.

import { ChannelCredentials } from "@grpc/grpc-js";
import { ClientError, createChannel, createClient, Status } from "nice-grpc";
import {
  RateLimitResponse_Code as Code,
  RateLimitService,
  RateLimitResponse_RateLimit_Unit as Unit,
} from "../gen/envoy/service/ratelimit/v3/rls_pb.ts";
import { niceDefinition } from "../grpc/service-definition.ts";

export interface ShouldRateLimitArgs {
  readonly address: string;
  readonly domain: string;
  /** One string per descriptor: `key=value[,key=value...]`. */
  readonly descriptors: readonly string[];
  readonly hits: number | undefined;
  readonly json: boolean;
  readonly timeoutMs: number;
  /** Calls to make back to back (a CLI start takes longer than a 5-per-second refill). */
  readonly repeat: number;
}

/** `a=1,b=2` as descriptor entries, or an error naming the bad part. */
export function parseDescriptor(text: string): { key: string; value: string }[] | string {
  const entries = [];
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at <= 0) return `--descriptor "${text}": each entry is key=value, got "${part}"`;
    entries.push({ key: part.slice(0, at), value: part.slice(at + 1) });
  }
  return entries;
}

const definition = niceDefinition(RateLimitService);

export async function runShouldRateLimit(args: ShouldRateLimitArgs): Promise<number> {
  const descriptors = [];
  for (const text of args.descriptors) {
    const entries = parseDescriptor(text);
    if (typeof entries === "string") {
      process.stderr.write(`tokenmesh should-rate-limit: ${entries}\n`);
      return 2;
    }
    descriptors.push({ entries });
  }
  const channel = createChannel(args.address, ChannelCredentials.createInsecure());
  const client = createClient(definition, channel);
  let code = 0;
  try {
    for (let i = 0; i < args.repeat && code < 2; i++) code = await callOnce(client, { domain: args.domain, descriptors }, args);
    return code;
  } finally {
    channel.close();
  }
}

async function callOnce(
  client: ReturnType<typeof createClient<typeof definition>>,
  request: { domain: string; descriptors: { entries: { key: string; value: string }[] }[] },
  args: ShouldRateLimitArgs,
): Promise<number> {
  const { descriptors } = request;
  try {
    const response = await client.shouldRateLimit(
      { domain: args.domain, descriptors, hitsAddend: args.hits ?? 0 },
      { signal: AbortSignal.timeout(args.timeoutMs) },
    );
    const overall = Code[response.overallCode];
    if (args.json) {
      const statuses = response.statuses.map((s) => ({
        code: Code[s.code],
        ...(s.currentLimit === undefined
          ? {}
          : { limit: { requestsPerUnit: s.currentLimit.requestsPerUnit, unit: Unit[s.currentLimit.unit] } }),
        remaining: s.limitRemaining,
        ...(s.durationUntilReset === undefined
          ? {}
          : { resetAfterMs: Number(s.durationUntilReset.seconds) * 1000 + Math.round(s.durationUntilReset.nanos / 1e6) }),
      }));
      const headers = Object.fromEntries(response.responseHeadersToAdd.map((h) => [h.key, h.value]));
      process.stdout.write(`${JSON.stringify({ overall, statuses, headers })}\n`);
    } else {
      process.stdout.write(`${overall}  domain=${args.domain}\n`);
      response.statuses.forEach((s, i) => {
        const limit =
          s.currentLimit === undefined ? "no limit" : `${s.currentLimit.requestsPerUnit}/${Unit[s.currentLimit.unit]?.toLowerCase()}`;
        const reset =
          s.durationUntilReset === undefined
            ? ""
            : `  reset_after=${Number(s.durationUntilReset.seconds) * 1000 + Math.round(s.durationUntilReset.nanos / 1e6)}ms`;
        process.stdout.write(`  ${Code[s.code]}  ${args.descriptors[i]}  ${limit}  remaining=${s.limitRemaining}${reset}\n`);
      });
      for (const h of response.responseHeadersToAdd) process.stdout.write(`  header ${h.key}: ${h.value}\n`);
    }
    return response.overallCode === Code.OVER_LIMIT ? 1 : 0;
  } catch (err) {
    const message = err instanceof ClientError ? `${Status[err.code]}: ${err.details}` : String(err);
    process.stderr.write(`tokenmesh should-rate-limit: ${message}\n`);
    return 2;
  }
}
