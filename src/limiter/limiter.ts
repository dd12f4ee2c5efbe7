// Runs validated decisions against the bucket store: the one place the server's handlers and
// (later) the replication layer meet the core's decision rule.

import type { StrictPolicy } from "../config/load.ts";
import type { RateSwitch } from "../core/bucket.ts";
import { type BucketAccess, type DecisionOutcome, decide } from "../core/decision.ts";
import type { DenyReason } from "../core/escrow/index.ts";
import type { Rate } from "../core/rate.ts";
import type { EvictionCounts } from "./bucket-store.ts";

/** A bucket as a validated request names it. */
export interface BucketTarget {
  /** Policy name, kept for metrics. */
  readonly policy: string;
  /** Unique id of the bucket: policy and key. */
  readonly id: string;
  readonly rate: Rate;
  readonly cost: number;
  /** The limit `rate` replaced and when (a standalone policy's last switch; see config/policy-schedule.ts). */
  readonly change?: RateSwitch;
  /** Strict mode: admitted only within this replica's leased share (a standalone replica is its own bank). */
  readonly strict?: StrictPolicy;
}

export type ValidDecision = readonly BucketTarget[];

/** Policy and key in one string; policy names cannot hold NUL, so ids never collide. */
export function bucketId(policy: string, key: string): string {
  return `${policy}\u0000${key}`;
}

/**
 * Where buckets live: `BucketStore` for a standalone replica (exact single-node buckets), or the
 * replicated CRDT core when the process is part of a mesh.
 */
export interface BucketBackend {
  /** `change`: the limit `rate` replaced and when; backends that keep their own config history ignore it. */
  access(id: string, rate: Rate, cost: number, nowUs: number, change?: RateSwitch, strict?: StrictPolicy): BucketAccess;
  readonly size: number;
  readonly evictions: EvictionCounts;
  /** Each writer's part in a bucket (replicated backends only). */
  shares?(id: string, nowUs: number): ReplicaShareInfo[];
}

/** One writer's part in a bucket, as this replica knows it (see ReplicaShare in the proto). */
export interface ReplicaShareInfo {
  readonly node: string;
  readonly incarnation: string;
  readonly consumed: number;
  readonly lagUs: number;
  readonly retired: boolean;
  readonly local: boolean;
}

export class Limiter {
  constructor(readonly store: BucketBackend) {}

  /** Decides each decision in order at `nowUs`; `consume: false` only reads. */
  run(decisions: readonly ValidDecision[], nowUs: number, consume: boolean): DecisionOutcome[] {
    const out: DecisionOutcome[] = new Array(decisions.length);
    for (let i = 0; i < decisions.length; i++) {
      const targets = decisions[i] as ValidDecision;
      const access = targets.map((t) => this.store.access(t.id, t.rate, t.cost, nowUs, t.change, t.strict));
      const outcome = decide(access, consume);
      out[i] = outcome.allowed || !access.some(isStrict) ? outcome : withDenyReasons(outcome, access);
    }
    return out;
  }
}

/** A strict bucket's access also says why it would deny and what it holds. */
export interface StrictAccess extends BucketAccess {
  readonly denyReason: DenyReason | undefined;
  readonly heldTokens: number;
}

function isStrict(a: BucketAccess): a is StrictAccess {
  return "heldTokens" in a;
}

/** Per bucket of a denied decision with a strict bucket in it: why (strict buckets say tokens or escrow; others tokens when short). */
function withDenyReasons(outcome: DecisionOutcome, access: readonly BucketAccess[]): DecisionOutcome {
  const reasons = access.map((a): DenyReason | undefined => {
    if (isStrict(a)) return a.denyReason;
    return a.level() < a.cost * a.rate.unitsPerToken ? "tokens" : undefined;
  });
  const held = access.map((a) => (isStrict(a) ? a.heldTokens : undefined));
  return { ...outcome, denyReasons: reasons, heldTokens: held };
}
