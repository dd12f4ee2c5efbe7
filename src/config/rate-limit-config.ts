// envoyproxy/ratelimit's configuration format, so a team can point tokenmesh at the YAML it
// already has: one document per domain, nested `descriptors` of `key` and optional `value`, and a
// `rate_limit` of `requests_per_unit` per `unit` (or `unlimited`). Each limit becomes a tokenmesh
// bucket that refills `requests_per_unit` every `unit` and holds at most `requests_per_unit`
// (README, "Envoy's rate limit service"). Validation happens here, once, at start-up.

import { createHash } from "node:crypto";
import { z } from "zod";
import { makeRate, type Rate } from "../core/rate.ts";
import type { Result } from "../core/result.ts";

/** Units ratelimit accepts, as the length of one unit in microseconds (month: 30 days, year: 365). */
export const UNIT_US = {
  second: 1_000_000,
  minute: 60_000_000,
  hour: 3_600_000_000,
  day: 86_400_000_000,
  month: 30 * 86_400_000_000,
  year: 365 * 86_400_000_000,
} as const;

export type RateLimitUnit = keyof typeof UNIT_US;

const text = z
  .string()
  .min(1)
  .max(256)
  .refine((s) => !s.includes("\u0000"), "must not contain NUL");

const rateLimitSchema = z
  .strictObject({
    unit: z
      .string()
      .transform((u) => u.toLowerCase())
      .refine((u): u is RateLimitUnit => u in UNIT_US, { message: "must be second, minute, hour, day, month or year" })
      .optional(),
    requests_per_unit: z.number().int().min(0).max(4_294_967_295).optional(),
    unlimited: z.boolean().default(false),
    name: text.optional(),
    replaces: z
      .array(z.strictObject({ name: text }))
      .max(64)
      .default([]),
  })
  .superRefine((r, ctx) => {
    if (r.unlimited && r.unit !== undefined) ctx.addIssue({ code: "custom", path: ["unit"], message: "must not be set when unlimited" });
    if (!r.unlimited && r.unit === undefined) ctx.addIssue({ code: "custom", path: ["unit"], message: "is required (or unlimited: true)" });
    if (!r.unlimited && r.requests_per_unit === undefined) {
      ctx.addIssue({ code: "custom", path: ["requests_per_unit"], message: "is required (or unlimited: true)" });
    }
    for (const [i, replaced] of r.replaces.entries()) {
      if (replaced.name === r.name)
        ctx.addIssue({ code: "custom", path: ["replaces", i, "name"], message: "must not name this limit itself" });
    }
  });

interface DescriptorInput {
  key: string;
  value?: string | undefined;
  rate_limit?: z.output<typeof rateLimitSchema> | undefined;
  shadow_mode: boolean;
  detailed_metric: boolean;
  value_to_metric: boolean;
  descriptors: DescriptorInput[];
}

const descriptorSchema: z.ZodType<DescriptorInput, unknown> = z.lazy(() =>
  z.strictObject({
    key: text,
    value: text.refine((v) => !v.includes("*"), "wildcard values (*) are not supported by tokenmesh").optional(),
    rate_limit: rateLimitSchema.optional(),
    shadow_mode: z.boolean().default(false),
    // Accepted so existing files load; they only shape ratelimit's own metric names.
    detailed_metric: z.boolean().default(false),
    value_to_metric: z.boolean().default(false),
    descriptors: z.array(descriptorSchema).max(10_000).default([]),
  }),
);

/** One ratelimit config document: a domain and its descriptor tree. */
export const domainSchema = z.strictObject({
  domain: text,
  descriptors: z.array(descriptorSchema).max(10_000).default([]),
});

export type DomainInput = z.input<typeof domainSchema>;

/** A configured limit, as a matched request descriptor uses it. */
export interface RateLimitRule {
  /** Where it is in the config, as ratelimit names it: `domain.key_value.key`. Metrics use it. */
  readonly label: string;
  /**
   * The policy part of its buckets' ids: `rls:` and the label, or a digest of a label too long
   * for the mesh's key bound. The same config gives the same ids on every replica.
   */
  readonly bucketPolicy: string;
  /** `rate_limit.name`, or "" (what `replaces` refers to). */
  readonly name: string;
  readonly replaces: readonly string[];
  readonly unlimited: boolean;
  readonly shadowMode: boolean;
  readonly unit: RateLimitUnit | undefined;
  readonly requestsPerUnit: number;
  /** The bucket: capacity and refill `requestsPerUnit` per unit. Absent for unlimited and 0-limits. */
  readonly rate: Rate | undefined;
}

/** One level of a descriptor tree: what an entry's key (and value) leads to. */
export interface DescriptorNode {
  readonly rule: RateLimitRule | undefined;
  /** Children by key, then by value; `any` is the entry configured without a value. */
  readonly children: ReadonlyMap<string, DescriptorBranch>;
}

export interface DescriptorBranch {
  readonly values: ReadonlyMap<string, DescriptorNode>;
  readonly any: DescriptorNode | undefined;
}

export type RateLimitDomains = ReadonlyMap<string, DescriptorNode>;

export const NO_DOMAINS: RateLimitDomains = new Map();

function ruleOf(d: DescriptorInput, label: string, where: string, problems: string[]): RateLimitRule | undefined {
  const r = d.rate_limit;
  if (r === undefined) return undefined;
  const requestsPerUnit = r.unlimited ? 0 : (r.requests_per_unit ?? 0);
  let rate: Rate | undefined;
  if (!r.unlimited && r.unit !== undefined && requestsPerUnit > 0) {
    const made = makeRate({ capacity: requestsPerUnit, refillTokens: requestsPerUnit, refillPeriodUs: UNIT_US[r.unit] });
    if (made.ok) rate = made.value;
    else problems.push(`${where}.rate_limit: ${made.error.message}`);
  }
  const bucketPolicy =
    Buffer.byteLength(label) <= 60 ? `rls:${label}` : `rls#${createHash("sha256").update(label).digest("hex").slice(0, 40)}`;
  return {
    label,
    bucketPolicy,
    name: r.name ?? "",
    replaces: r.replaces.map((x) => x.name),
    unlimited: r.unlimited,
    shadowMode: d.shadow_mode,
    unit: r.unit,
    requestsPerUnit,
    rate,
  };
}

function buildLevel(list: readonly DescriptorInput[], parent: string, where: string, problems: string[]): DescriptorNode["children"] {
  const children = new Map<string, { values: Map<string, DescriptorNode>; any: DescriptorNode | undefined }>();
  for (const [i, d] of list.entries()) {
    const at = `${where}.descriptors[${i}]`;
    const label = `${parent}.${d.key}${d.value === undefined ? "" : `_${d.value}`}`;
    const node: DescriptorNode = { rule: ruleOf(d, label, at, problems), children: buildLevel(d.descriptors, label, at, problems) };
    let branch = children.get(d.key);
    if (branch === undefined) {
      branch = { values: new Map(), any: undefined };
      children.set(d.key, branch);
    }
    const taken = d.value === undefined ? branch.any !== undefined : branch.values.has(d.value);
    if (taken) {
      problems.push(`${at}: duplicate descriptor "${label}" (another entry at this level has the same key and value)`);
      continue;
    }
    if (d.value === undefined) branch.any = node;
    else branch.values.set(d.value, node);
  }
  return children;
}

/** A parsed document and where it came from (a file name, or `envoy.domains[2]`). */
export interface DomainSource {
  readonly source: string;
  readonly raw: unknown;
}

/** The domains, or every problem found (config loading reports them all at once). */
export type DomainsResult = Result<RateLimitDomains, string[]>;

/** Validates every document and builds the domains; one domain per document, as ratelimit requires. */
export function buildRateLimitDomains(sources: readonly DomainSource[]): DomainsResult {
  const problems: string[] = [];
  const domains = new Map<string, DescriptorNode>();
  const origin = new Map<string, string>();
  for (const { source, raw } of sources) {
    const parsed = domainSchema.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues)
        problems.push(`${source}: ${i.path.length > 0 ? i.path.join(".") : "(top level)"}: ${i.message}`);
      continue;
    }
    const { domain, descriptors } = parsed.data;
    const seen = origin.get(domain);
    if (seen !== undefined) {
      problems.push(`${source}: domain "${domain}" is already defined by ${seen}`);
      continue;
    }
    origin.set(domain, source);
    domains.set(domain, { rule: undefined, children: buildLevel(descriptors, domain, source, problems) });
  }
  return problems.length > 0 ? { ok: false, error: problems } : { ok: true, value: domains };
}

/** Every configured rule under `node`, depth first (values before `any`, in config order). */
function* rulesUnder(node: DescriptorNode): Generator<RateLimitRule> {
  if (node.rule !== undefined) yield node.rule;
  for (const branch of node.children.values()) {
    for (const child of branch.values.values()) yield* rulesUnder(child);
    if (branch.any !== undefined) yield* rulesUnder(branch.any);
  }
}

function* domainRules(domains: RateLimitDomains): Generator<RateLimitRule> {
  for (const node of domains.values()) yield* rulesUnder(node);
}

/** Every bucket rate the domains use (the mesh bounds peers' counts by the largest). */
export function domainRates(domains: RateLimitDomains): Rate[] {
  return [...domainRules(domains)].flatMap((rule) => (rule.rate === undefined ? [] : [rule.rate]));
}

/**
 * The policy part of every rule's bucket ids. Policy names share that id space (a policy may be
 * named `rls:...`), so a reload does not drop keys one of these still serves.
 */
export function domainBucketPolicies(domains: RateLimitDomains): Set<string> {
  return new Set([...domainRules(domains)].map((rule) => rule.bucketPolicy));
}
