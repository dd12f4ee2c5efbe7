// Turns a ShouldRateLimit request into tokenmesh decisions, with envoyproxy/ratelimit's matching
// rules, and the decisions' outcomes back into one status per descriptor. Pure: the decision
// service runs the plan's decisions against the buckets at one time.
//
// Matching, per request descriptor, walking its entries down the domain's tree: at each level
// the entry's key and value is tried before the key alone (most specific first); a limit applies
// only where the walk ends on the request's last entry (depth must match). Limits named in a
// matched limit's `replaces` are dropped. Unmatched descriptors answer OK with no limit.
//
// Deciding: every enforced descriptor's bucket goes into ONE all-or-nothing decision, so a
// request over limit on any descriptor takes nothing from the others (two descriptors on the
// same bucket add their hits). Shadow-mode descriptors are decided on their own and always
// answer OK; `hits_addend: 0` only reads.

import type { DescriptorNode, RateLimitDomains, RateLimitRule } from "../config/rate-limit-config.ts";
import type { DecisionOutcome } from "../core/decision.ts";
import { type BucketTarget, bucketId } from "../limiter/limiter.ts";
import { invalidArgument, type TokenmeshError } from "../server/errors.ts";

export interface DescriptorEntry {
  readonly key: string;
  readonly value: string;
}

export interface PlainDescriptor {
  readonly entries: readonly DescriptorEntry[];
  /** Per-descriptor hits; undefined falls back to the request's. */
  readonly hitsAddend: number | undefined;
  /** Envoy's per-request limit override (RateLimitDescriptor.limit), which tokenmesh refuses. */
  readonly limitOverride: boolean;
}

/** ShouldRateLimit as plain data; `malformed` when the bytes were not a valid message. */
export interface DescriptorRequest {
  readonly domain: string;
  readonly descriptors: readonly PlainDescriptor[];
  /** Request-wide hits; 0 means 1. */
  readonly hitsAddend: number;
  readonly malformed?: string;
  /** A field the bytes held that cannot be taken as sent (not UTF-8, wider than its uint32). */
  readonly invalid?: { readonly field: string; readonly problem: string };
}

export interface DescriptorLimits {
  readonly maxDescriptorsPerRequest: number;
  readonly maxBucketsPerDecision: number;
  readonly maxKeyBytes: number;
}

/** One decision of the plan; `consume: false` only reads. */
export interface PlannedDecision {
  readonly targets: BucketTarget[];
  readonly consume: boolean;
  readonly shadow: boolean;
}

type Slot =
  | { readonly kind: "none" }
  | { readonly kind: "unlimited"; readonly rule: RateLimitRule }
  /** requests_per_unit: 0, never allowed. */
  | { readonly kind: "blocked"; readonly rule: RateLimitRule }
  | { readonly kind: "bucket"; readonly rule: RateLimitRule; readonly decision: number; readonly bucket: number };

export interface DescriptorPlan {
  readonly decisions: readonly PlannedDecision[];
  readonly slots: readonly Slot[];
}

/** What one descriptor is answered (DescriptorStatus, before encoding). */
export interface DescriptorStatus {
  readonly overLimit: boolean;
  /** The limit that applied; undefined when none did (unmatched, replaced). */
  readonly rule: RateLimitRule | undefined;
  readonly remaining: number;
  readonly resetAfterUs: number | undefined;
  readonly retryAfterUs: number;
  /** Shadow mode turned an OVER_LIMIT into OK. */
  readonly shadowDenied: boolean;
}

export interface DescriptorAnswer {
  readonly overLimit: boolean;
  readonly statuses: readonly DescriptorStatus[];
}

/** The deepest node a descriptor's entries reach, if the walk ends on the last entry with a limit. */
export function matchRule(root: DescriptorNode, entries: readonly DescriptorEntry[]): RateLimitRule | undefined {
  let node: DescriptorNode = root;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as DescriptorEntry;
    const branch = node.children.get(entry.key);
    const next = branch?.values.get(entry.value) ?? branch?.any;
    if (next === undefined) return undefined;
    if (i === entries.length - 1) return next.rule;
    node = next;
  }
  return undefined;
}

function checkShape(request: DescriptorRequest, limits: DescriptorLimits): TokenmeshError | undefined {
  if (request.malformed !== undefined) return invalidArgument("request", `not a valid protobuf message: ${request.malformed}`);
  if (request.invalid !== undefined) return invalidArgument(request.invalid.field, request.invalid.problem);
  if (request.domain.length === 0) return invalidArgument("domain", "is required");
  const n = request.descriptors.length;
  if (n === 0 || n > limits.maxDescriptorsPerRequest) {
    return invalidArgument("descriptors", `must hold 1..${limits.maxDescriptorsPerRequest} descriptors, got ${n}`);
  }
  for (let i = 0; i < n; i++) {
    const d = request.descriptors[i] as PlainDescriptor;
    const field = `descriptors[${i}]`;
    if (d.limitOverride) return invalidArgument(`${field}.limit`, "per-request limit overrides are not supported; configure the limit");
    const m = d.entries.length;
    if (m === 0 || m > limits.maxBucketsPerDecision) {
      return invalidArgument(`${field}.entries`, `must hold 1..${limits.maxBucketsPerDecision} entries, got ${m}`);
    }
    for (let j = 0; j < m; j++) {
      const e = d.entries[j] as DescriptorEntry;
      const keyBytes = Buffer.byteLength(e.key, "utf8");
      if (keyBytes === 0 || keyBytes > limits.maxKeyBytes) {
        return invalidArgument(`${field}.entries[${j}].key`, `must be 1..${limits.maxKeyBytes} bytes of UTF-8, got ${keyBytes}`);
      }
    }
    const valueBytes = Buffer.byteLength(bucketKey(d.entries), "utf8");
    if (valueBytes > limits.maxKeyBytes) {
      return invalidArgument(
        `${field}.entries`,
        `values must total at most ${limits.maxKeyBytes} bytes of UTF-8 as a bucket key, got ${valueBytes}`,
      );
    }
  }
  return undefined;
}

/** The bucket key: every entry's value, as ratelimit keys a counter by the request's values. */
function bucketKey(entries: readonly DescriptorEntry[]): string {
  return JSON.stringify(entries.map((e) => e.value));
}

/** Validates the request and plans its decisions, or names the first bad field. */
export function planDescriptors(
  request: DescriptorRequest,
  domains: RateLimitDomains,
  limits: DescriptorLimits,
): DescriptorPlan | TokenmeshError {
  const bad = checkShape(request, limits);
  if (bad !== undefined) return bad;
  const root = domains.get(request.domain);
  const rules = request.descriptors.map((d) => (root === undefined ? undefined : matchRule(root, d.entries)));
  const replaced = new Set<string>();
  for (const r of rules) for (const name of r?.replaces ?? []) replaced.add(name);

  const enforced: BucketTarget[] = [];
  const decisions: PlannedDecision[] = [{ targets: enforced, consume: true, shadow: false }];
  let blocked = false;
  const slots: Slot[] = request.descriptors.map((d, i): Slot => {
    const rule = rules[i];
    if (rule === undefined || (rule.name !== "" && replaced.has(rule.name))) return { kind: "none" };
    if (rule.unlimited) return { kind: "unlimited", rule };
    if (rule.rate === undefined) {
      if (!rule.shadowMode) blocked = true;
      return { kind: "blocked", rule };
    }
    const cost = d.hitsAddend ?? Math.max(1, request.hitsAddend);
    const id = bucketId(rule.bucketPolicy, bucketKey(d.entries));
    const target: BucketTarget = { policy: rule.label, id, rate: rule.rate, cost };
    if (rule.shadowMode || cost === 0) {
      decisions.push({ targets: [target], consume: cost > 0, shadow: rule.shadowMode });
      return { kind: "bucket", rule, decision: decisions.length - 1, bucket: 0 };
    }
    const same = enforced.findIndex((t) => t.id === id);
    if (same >= 0) {
      const held = enforced[same] as BucketTarget;
      enforced[same] = { ...held, cost: held.cost + cost };
      return { kind: "bucket", rule, decision: 0, bucket: same };
    }
    enforced.push(target);
    return { kind: "bucket", rule, decision: 0, bucket: enforced.length - 1 };
  });
  // A request already over limit (a zero limit matched) takes nothing: its decision only reads.
  if (blocked) decisions[0] = { targets: enforced, consume: false, shadow: false };
  if (enforced.length === 0) decisions[0] = { targets: enforced, consume: false, shadow: false };
  return { decisions, slots };
}

/** Statuses from the outcomes of `plan.decisions` (same order; an empty decision has none). */
export function answerDescriptors(plan: DescriptorPlan, outcomes: readonly (DecisionOutcome | undefined)[]): DescriptorAnswer {
  let overLimit = false;
  const statuses = plan.slots.map((slot): DescriptorStatus => {
    if (slot.kind === "none")
      return { overLimit: false, rule: undefined, remaining: 0, resetAfterUs: undefined, retryAfterUs: 0, shadowDenied: false };
    if (slot.kind === "unlimited") {
      return { overLimit: false, rule: slot.rule, remaining: 4_294_967_295, resetAfterUs: undefined, retryAfterUs: 0, shadowDenied: false };
    }
    if (slot.kind === "blocked") {
      if (!slot.rule.shadowMode) overLimit = true;
      return {
        overLimit: !slot.rule.shadowMode,
        rule: slot.rule,
        remaining: 0,
        resetAfterUs: undefined,
        retryAfterUs: 0,
        shadowDenied: slot.rule.shadowMode,
      };
    }
    const planned = plan.decisions[slot.decision] as PlannedDecision;
    const outcome = outcomes[slot.decision] as DecisionOutcome;
    const report = outcome.buckets[slot.bucket] as DecisionOutcome["buckets"][number];
    // Over for this descriptor alone: its bucket lacks its hits (the decision may fail on another).
    const over = report.retryAfterUs > 0;
    if (over && !planned.shadow) overLimit = true;
    return {
      overLimit: over && !planned.shadow,
      rule: slot.rule,
      remaining: report.remaining,
      resetAfterUs: report.resetAfterUs,
      retryAfterUs: report.retryAfterUs,
      shadowDenied: over && planned.shadow,
    };
  });
  return { overLimit, statuses };
}
