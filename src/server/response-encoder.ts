// Encodes Consume/Query responses straight from the core's outcomes to protobuf bytes.
//
// The reflective path (build init objects with BigInts, `create`, `toBinary`) spent about a
// third of the server's CPU on a 100-decision call, mostly in allocation and GC. The messages
// are small and fixed (ConsumeResponse and QueryResponse share the same shape), so they are
// written here by hand (with src/wire/proto-writer.ts); a test checks the bytes equal protobuf-es's `toBinary` for random
// outcomes. Field numbers: proto/tokenmesh/v1/rate_limiter.proto.
//
//   Response        1: repeated DecisionResult results
//   DecisionResult  1: bool allowed, 2: uint64 retry_after_us, 3: repeated BucketStatus buckets
//   BucketStatus    1: remaining, 2: retry_after_us, 3: reset_after_us, 4: capacity,
//                   5: refill_tokens, 6: refill_period_ms (all uint64),
//                   7: repeated ReplicaShare replicas, 9: DenyReason deny_reason (enum),
//                   10: uint64 held_tokens (strict buckets)
//   ReplicaShare    1: string node, 2: string incarnation, 3: uint64 consumed, 4: uint64 lag_us,
//                   5: bool retired, 6: bool local

import type { DecisionOutcome } from "../core/decision.ts";
import type { ReplicaShareInfo, ValidDecision } from "../limiter/limiter.ts";
import { ProtoWriter } from "../wire/proto-writer.ts";

/** What a handler returns: the validated decisions and their outcomes, encoded on send. */
export interface DecisionAnswers {
  readonly decisions: readonly ValidDecision[];
  readonly outcomes: readonly DecisionOutcome[];
  /** Per decision, per bucket: each writer's part (Query with include_replicas). */
  readonly shares?: readonly (readonly (readonly ReplicaShareInfo[])[])[];
}

/** DenyReason's numbers in the proto. */
export const DENY_REASON = { tokens: 1, escrow: 2 } as const;

function periodMs(periodUs: number): number {
  return Math.ceil(periodUs / 1000);
}

/**
 * One writer for every answer of the process: encoding is synchronous and bytes() copies out,
 * so per call only the result is allocated. It grows as a large batch (or a Query with replicas)
 * needs and lets go of a buffer over 1 MiB after use.
 */
const answerWriter = new ProtoWriter(16_384);

export function encodeDecisionAnswers(answers: DecisionAnswers): Uint8Array {
  const { outcomes, shares } = answers;
  const w = answerWriter.reset();
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i] as DecisionOutcome;
    const result = w.begin(1);
    w.boolField(1, o.allowed);
    w.intField(2, o.retryAfterUs);
    for (let j = 0; j < o.buckets.length; j++) {
      const r = o.buckets[j] as DecisionOutcome["buckets"][number];
      const rate = r.rate; // in force for this key (a replicated config may differ from the request's)
      const bucket = w.begin(3);
      w.intField(1, r.remaining);
      w.intField(2, r.retryAfterUs);
      w.intField(3, r.resetAfterUs);
      w.intField(4, rate.capacity);
      w.intField(5, rate.refillTokens);
      w.intField(6, periodMs(rate.refillPeriodUs));
      for (const share of shares?.[i]?.[j] ?? []) writeShare(w, share);
      const reason = o.denyReasons?.[j];
      if (reason !== undefined) w.intField(9, DENY_REASON[reason]);
      w.intField(10, o.heldTokens?.[j] ?? 0);
      w.end(bucket);
    }
    w.end(result);
  }
  return w.bytes();
}

function writeShare(w: ProtoWriter, share: ReplicaShareInfo): void {
  const at = w.begin(7);
  if (share.node !== "") w.string(1, share.node);
  if (share.incarnation !== "") w.string(2, share.incarnation);
  w.intField(3, share.consumed);
  w.intField(4, share.lagUs);
  w.boolField(5, share.retired);
  w.boolField(6, share.local);
  w.end(at);
}
