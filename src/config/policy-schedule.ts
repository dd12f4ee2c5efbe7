// A standalone replica's policies across a live reload. The contract is the mesh's (docs/design.md,
// trap 10; core/crdt/key-config.ts): a changed limit with `effectiveAt` ahead of the reload keeps
// the old limit until then and the new one after, and at the switch a bucket's level becomes
// min(level, C_new). So the snapshot a reload builds holds both and picks by the decision's time:
// validation, enforcement and the answer then all use the one limit in force, and no timer or
// second reload is needed to make the switch happen. A change without `effectiveAt`, or with one
// already past, switches at the reload. Pure: the reload's time is passed in.

import { sameRate } from "../core/rate.ts";
import type { Policy, PolicySnapshot, ResolvedConfig } from "./load.ts";

/**
 * The snapshot for `next`, loaded at `reloadUs`, on a replica where `inForce` were the policies in
 * force at that time (the previous snapshot's, which may still hold a change that is pending: a
 * reload that replaces it before its effective time switches from the limit actually in force).
 */
export function scheduledSnapshot(inForce: ReadonlyMap<string, Policy>, next: ResolvedConfig, reloadUs: number): PolicySnapshot {
  const now = new Map<string, Policy>();
  /** Changes still ahead: from `atUs` on, `policy` replaces what `now` holds under its name. */
  const pending: { atUs: number; policy: Policy }[] = [];
  for (const [name, p] of next.policies) {
    const was = inForce.get(name);
    if (was === undefined) {
      now.set(name, p); // a new policy has no old limit to keep
      continue;
    }
    if (sameRate(was.rate, p.rate)) {
      // The same limit (perhaps a new version of it): nothing switches; keep the switch it came by,
      // for buckets that have not been read since.
      now.set(name, was.change === undefined ? p : { ...p, change: was.change });
      continue;
    }
    const atUs = Math.max(reloadUs, p.effectiveAtUs ?? 0);
    const switched: Policy = { ...p, change: { from: was.rate, atUs } };
    if (atUs > reloadUs) {
      now.set(name, was);
      pending.push({ atUs, policy: switched });
    } else now.set(name, switched);
  }
  pending.sort((a, b) => a.atUs - b.atUs);
  // One map per interval between switch times, built once: a decision only picks one.
  const steps: { fromUs: number; policies: ReadonlyMap<string, Policy> }[] = [];
  let current: ReadonlyMap<string, Policy> = now;
  for (const { atUs, policy } of pending) {
    const after = new Map(current);
    after.set(policy.name, policy);
    const last = steps[steps.length - 1];
    if (last !== undefined && last.fromUs === atUs) steps[steps.length - 1] = { fromUs: atUs, policies: after };
    else steps.push({ fromUs: atUs, policies: after });
    current = after;
  }
  return {
    policiesAt(nowUs: number): ReadonlyMap<string, Policy> {
      let policies: ReadonlyMap<string, Policy> = now;
      for (const step of steps) {
        if (nowUs < step.fromUs) break;
        policies = step.policies;
      }
      return policies;
    },
    rateLimitDomains: next.envoy.domains,
  };
}
