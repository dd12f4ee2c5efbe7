// Envoy's door: envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit on the gRPC port.
// Messages are protobuf-es code generated from Envoy's own rls.proto (src/gen/envoy/); this
// module only translates them to and from the decision service's plain request and answer.

import { fromBinary, type MessageInitShape } from "@bufbuild/protobuf";
import type { CallContext } from "nice-grpc";
import { type RateLimitUnit, UNIT_US } from "../config/rate-limit-config.ts";
import {
  RateLimitResponse_Code as Code,
  RateLimitRequestSchema,
  type RateLimitResponseSchema,
  RateLimitService,
  RateLimitResponse_RateLimit_Unit as Unit,
} from "../gen/envoy/service/ratelimit/v3/rls_pb.ts";
import { niceDefinition } from "../grpc/service-definition.ts";
import { callTimingOf } from "../server/call-deadline.ts";
import type { DecisionService } from "../server/decision-service.ts";
import { rateLimitHeaders, secondsUp } from "../server/ratelimit-headers.ts";
import { ProtoReader } from "../wire/proto-reader.ts";
import type { DescriptorAnswer, DescriptorRequest, DescriptorStatus } from "./descriptor-plan.ts";
import { lossyField } from "./strict-fields.ts";

type ResponseInit = MessageInitShape<typeof RateLimitResponseSchema>;

const UNITS: Record<RateLimitUnit, Unit> = {
  second: Unit.SECOND,
  minute: Unit.MINUTE,
  hour: Unit.HOUR,
  day: Unit.DAY,
  month: Unit.MONTH,
  year: Unit.YEAR,
};

/** Never throws: bytes that are not a RateLimitRequest reach the handler and get INVALID_ARGUMENT. */
export function decodeRateLimitRequest(bytes: Uint8Array): DescriptorRequest {
  try {
    const lossy = lossyField(new ProtoReader(bytes, 0, bytes.length));
    if (lossy !== undefined) return { domain: "", descriptors: [], hitsAddend: 0, invalid: lossy };
    const m = fromBinary(RateLimitRequestSchema, bytes);
    return {
      domain: m.domain,
      hitsAddend: m.hitsAddend,
      descriptors: m.descriptors.map((d) => ({
        entries: d.entries.map((e) => ({ key: e.key, value: e.value })),
        // The Envoy API that @grpc/grpc-js-xds ships predates per-descriptor hits_addend.
        hitsAddend: undefined,
        limitOverride: d.limit !== undefined,
      })),
    };
  } catch (err) {
    return { domain: "", descriptors: [], hitsAddend: 0, malformed: (err as Error).message };
  }
}

const generic = niceDefinition(RateLimitService);

export const rateLimitServiceDefinition = {
  shouldRateLimit: {
    ...generic.shouldRateLimit,
    requestDeserialize: decodeRateLimitRequest,
  },
} as const;

function durationOf(us: number): { seconds: bigint; nanos: number } {
  return { seconds: BigInt(Math.floor(us / 1_000_000)), nanos: (us % 1_000_000) * 1000 };
}

function statusOf(s: DescriptorStatus) {
  const rule = s.rule;
  return {
    code: s.overLimit ? Code.OVER_LIMIT : Code.OK,
    ...(rule === undefined || rule.unlimited || rule.unit === undefined
      ? {}
      : { currentLimit: { name: rule.name, requestsPerUnit: rule.requestsPerUnit, unit: UNITS[rule.unit] } }),
    limitRemaining: Math.min(s.remaining, 4_294_967_295),
    ...(s.resetAfterUs === undefined ? {} : { durationUntilReset: durationOf(s.resetAfterUs) }),
  };
}

/**
 * The descriptor the headers describe, as ratelimit picks it: an over-limit one if any, else the
 * limited one with the fewest requests left.
 */
function tightest(answer: DescriptorAnswer): DescriptorStatus | undefined {
  let best: DescriptorStatus | undefined;
  for (const s of answer.statuses) {
    if (s.rule === undefined || s.rule.unlimited || s.rule.unit === undefined) continue;
    if (s.overLimit) return s;
    if (best === undefined || s.remaining < best.remaining) best = s;
  }
  return best;
}

export function rateLimitResponse(answer: DescriptorAnswer, responseHeaders: boolean): ResponseInit {
  const response: ResponseInit = {
    overallCode: answer.overLimit ? Code.OVER_LIMIT : Code.OK,
    statuses: answer.statuses.map(statusOf),
  };
  const t = responseHeaders ? tightest(answer) : undefined;
  if (t?.rule?.unit !== undefined) {
    const headers = rateLimitHeaders({
      name: t.rule.name === "" ? t.rule.label : t.rule.name,
      quota: t.rule.requestsPerUnit,
      windowSeconds: UNIT_US[t.rule.unit] / 1_000_000,
      remaining: t.overLimit ? 0 : t.remaining,
      resetSeconds: secondsUp(t.overLimit ? t.retryAfterUs : (t.resetAfterUs ?? 0)),
    });
    response.responseHeadersToAdd = Object.entries(headers).map(([key, value]) => ({ key, value }));
  }
  return response;
}

export function rateLimitService(decisions: DecisionService, options: { readonly responseHeaders: boolean }) {
  return {
    async shouldRateLimit(request: DescriptorRequest, context?: CallContext): Promise<ResponseInit> {
      return rateLimitResponse(decisions.shouldRateLimit(request, callTimingOf(context)), options.responseHeaders);
    },
  };
}
