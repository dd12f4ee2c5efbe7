// A holder's side of strict mode for one key: the lease it holds, the small bucket that lease
// defines (its share of the capacity, refilled at its share of the rate), the requests it sent
// (a grant's lease runs from when its request left, on this holder's clock) and its demand.
// Pure: every time is passed in, on this replica's monotonic clock.

import type { Rate } from "../rate.ts";
import { fail, ok, type Result } from "../result.ts";
import { type EscrowGrant, SHARE_PARTS } from "./shares.ts";

/** Why a strict decision was denied: the held share is empty for now, or nothing (enough) is held. */
export type DenyReason = "tokens" | "escrow";

export interface HolderDecision {
  readonly allowed: boolean;
  /** Set when denied. */
  readonly reason: DenyReason | undefined;
  /** Whole tokens this holder may still admit now. */
  readonly heldTokens: number;
  /** Microseconds until the held share refills enough (0 when allowed; the lease's renewal when unknown). */
  readonly retryAfterUs: number;
}

interface HeldLease {
  readonly seq: number;
  readonly rateParts: number;
  readonly capacityTokens: number;
  /** Holder clock: sent(seq) + L. After it the share is gone. */
  readonly validUntilUs: number;
}

/**
 * Demand is smoothed over about this long: a quiet key's one call per 100 ms then reads as a
 * steady 10/s. A share that swings with each call is worse than a slow one: a holder whose
 * share dipped can grow back only into what the others do not hold.
 */
const DEMAND_TIME_CONSTANT_US = 1_000_000;

export class KeyHolder {
  private lease: HeldLease | undefined;
  /** Level in units × SHARE_PARTS at `atUs`. */
  private level = 0;
  private atUs: number;
  private nextSeq = 1;
  /** Send times of recent requests, seq `firstSeq` first; older than L are dropped (their grants would be dead). */
  private sentAt: number[] = [];
  private firstSeq = 1;
  private attempts = 0;
  private demand = 0;
  private lastAskUs: number;

  constructor(
    readonly rate: Rate,
    readonly leaseUs: number,
    nowUs: number,
  ) {
    this.atUs = nowUs;
    this.lastAskUs = nowUs;
  }

  /** Refills the held share up to `nowUs`; past the lease's end nothing is held. */
  private advance(nowUs: number): void {
    if (nowUs <= this.atUs) return;
    const l = this.lease;
    if (l !== undefined) {
      const end = Math.min(nowUs, l.validUntilUs);
      const cap = l.capacityTokens * this.rate.unitsPerToken * SHARE_PARTS;
      const perUs = this.rate.unitsPerMicro * l.rateParts;
      const gap = cap - this.level;
      if (gap > 0 && perUs > 0 && end > this.atUs) {
        const elapsed = end - this.atUs;
        // Compared before multiplying, so the product stays below cap + one microsecond's refill.
        this.level = elapsed >= Math.ceil(gap / perUs) ? cap : this.level + elapsed * perUs;
      }
      if (nowUs >= l.validUntilUs) {
        this.lease = undefined;
        this.level = 0;
      }
    }
    this.atUs = nowUs;
  }

  /** Admits `cost` tokens now if the held share holds them; counts the ask as demand either way. */
  admit(cost: number, nowUs: number): HolderDecision {
    this.advance(nowUs);
    this.attempts += cost;
    return this.judge(cost, true);
  }

  /** The same judgement without taking anything or counting demand (Query). */
  peek(cost: number, nowUs: number): HolderDecision {
    this.advance(nowUs);
    return this.judge(cost, false);
  }

  private judge(cost: number, take: boolean): HolderDecision {
    const need = cost * this.rate.unitsPerToken * SHARE_PARTS;
    const l = this.lease;
    if (l !== undefined && this.level >= need) {
      if (take) this.level -= need;
      return { allowed: true, reason: undefined, heldTokens: this.heldTokensNow(), retryAfterUs: 0 };
    }
    const cap = l === undefined ? 0 : l.capacityTokens * this.rate.unitsPerToken * SHARE_PARTS;
    const perUs = l === undefined ? 0 : this.rate.unitsPerMicro * l.rateParts;
    if (l === undefined || cap < need || perUs === 0) {
      // Nothing held that could ever cover this cost: the replica lacks escrow, not the key tokens.
      return { allowed: false, reason: "escrow", heldTokens: this.heldTokensNow(), retryAfterUs: 0 };
    }
    const wait = Math.ceil((need - this.level) / perUs);
    return { allowed: false, reason: "tokens", heldTokens: this.heldTokensNow(), retryAfterUs: wait };
  }

  private heldTokensNow(): number {
    return Math.floor(this.level / (this.rate.unitsPerToken * SHARE_PARTS));
  }

  /**
   * The held level in the key's own units at `nowUs`, rounded down: what core/decision.ts
   * compares with cost × p (exact, since cost × p × SHARE_PARTS is a multiple of SHARE_PARTS).
   */
  levelUnits(nowUs: number): number {
    this.advance(nowUs);
    return Math.floor(this.level / SHARE_PARTS);
  }

  /** Counts `cost` asked for (admitted or not) towards the demand the next request reports. */
  noteDemand(cost: number): void {
    this.attempts += cost;
  }

  /** Takes `units` (the key's units) from the held share, if it holds them; returns whether it did. */
  take(units: number, nowUs: number): boolean {
    this.advance(nowUs);
    const need = units * SHARE_PARTS;
    if (this.lease === undefined || this.level < need) return false;
    this.level -= need;
    return true;
  }

  /** Whole tokens held at `nowUs`. */
  heldTokens(nowUs: number): number {
    this.advance(nowUs);
    return this.heldTokensNow();
  }

  /** The share in force at `nowUs` (zeros when none). */
  share(nowUs: number): { readonly rateParts: number; readonly capacityTokens: number; readonly validUntilUs: number } {
    this.advance(nowUs);
    const l = this.lease;
    return l === undefined ? { rateParts: 0, capacityTokens: 0, validUntilUs: 0 } : l;
  }

  /** The next request (one per flush): it renews the lease and reports smoothed demand. */
  request(nowUs: number): { readonly seq: number; readonly demandPerSecond: number } {
    const dt = Math.max(1, nowUs - this.lastAskUs);
    const sample = (this.attempts * 1e6) / dt;
    const keep = Math.exp(-dt / DEMAND_TIME_CONSTANT_US);
    this.demand = this.demand * keep + sample * (1 - keep);
    this.attempts = 0;
    this.lastAskUs = nowUs;
    while (this.sentAt.length > 0 && (this.sentAt[0] as number) + this.leaseUs <= nowUs) {
      this.sentAt.shift();
      this.firstSeq += 1;
    }
    const seq = this.nextSeq++;
    if (this.sentAt.length === 0) this.firstSeq = seq;
    this.sentAt.push(nowUs);
    return { seq, demandPerSecond: this.demand };
  }

  /**
   * Takes a grant (already validated against the bank and this holder). A grant answering an
   * older request than the lease held, or whose lease has already run out, changes nothing;
   * duplicates and reordering are therefore harmless. A grant for a request never sent is an error.
   */
  applyGrant(g: EscrowGrant, nowUs: number): Result<"applied" | "stale", { field: "seq"; message: string }> {
    if (g.seq >= this.nextSeq) return fail("seq", `answers request ${g.seq}, but only ${this.nextSeq - 1} were sent`);
    if (this.lease !== undefined && g.seq <= this.lease.seq) return ok("stale");
    const sent = g.seq >= this.firstSeq ? this.sentAt[g.seq - this.firstSeq] : undefined;
    if (sent === undefined || sent + this.leaseUs <= nowUs) return ok("stale");
    this.advance(nowUs);
    const cap = g.capacityTokens * this.rate.unitsPerToken * SHARE_PARTS;
    this.level = Math.min(this.level, cap);
    this.lease = { seq: g.seq, rateParts: g.rateParts, capacityTokens: g.capacityTokens, validUntilUs: sent + this.leaseUs };
    return ok("applied");
  }
}
