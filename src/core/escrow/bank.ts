// The bank's side of strict mode for one key: it splits the key's limit into shares (a part of
// the rate and whole tokens of the capacity), leases them to holders on request, and counts each
// lease as held until L + margin after granting it. The invariant that makes strict mode safe:
// at every instant, the shares counted as held sum to at most the whole rate and the whole
// capacity (less a clock-rate allowance on the rate; docs/design.md, section 9, gives the proof). Pure: times are the bank's monotonic clock.

import type { Rate } from "../rate.ts";
import { bankHoldUs, type EscrowGrant, type EscrowRequest, GRANTABLE_PARTS, SHARE_PARTS } from "./shares.ts";

/** Each holder is offered this much more rate than it was asked for lately, so demand can grow. */
const HEADROOM = 1.25;

interface Counted {
  readonly rateParts: number;
  readonly capacityTokens: number;
  /** Bank clock: granted + L + margin. */
  readonly untilUs: number;
}

interface HolderRecord {
  seq: number;
  /** The request last answered: a lease renews only on a fresh request, so a silent holder's share runs out. */
  answeredSeq: number;
  demandPerSecond: number;
  askedAtUs: number;
  /** Leases granted and not yet run out, oldest first. */
  counted: Counted[];
}

export class KeyBank {
  private readonly holders = new Map<string, HolderRecord>();
  private readonly holdUs: number;

  /**
   * `startedAtUs`: when this bank incarnation started. It cannot know what an earlier incarnation
   * leased, so it grants nothing until every such lease has run out (L + margin later).
   */
  constructor(
    readonly name: string,
    readonly key: string,
    readonly rate: Rate,
    readonly leaseUs: number,
    private readonly startedAtUs: number,
  ) {
    this.holdUs = bankHoldUs(leaseUs);
  }

  /** Records a holder's (validated) request; an older or repeated one changes nothing. */
  request(req: EscrowRequest, nowUs: number): void {
    const h = this.holders.get(req.holder);
    if (h === undefined) {
      this.holders.set(req.holder, { seq: req.seq, answeredSeq: 0, demandPerSecond: req.demandPerSecond, askedAtUs: nowUs, counted: [] });
      return;
    }
    if (req.seq <= h.seq) return;
    h.seq = req.seq;
    h.demandPerSecond = req.demandPerSecond;
    h.askedAtUs = nowUs;
  }

  /** Drops leases that have run out, and holders with neither a lease nor a recent request. */
  private expire(nowUs: number): void {
    for (const [id, h] of this.holders) {
      while (h.counted.length > 0 && (h.counted[0] as Counted).untilUs <= nowUs) h.counted.shift();
      if (h.counted.length === 0 && h.askedAtUs + this.leaseUs <= nowUs) this.holders.delete(id);
    }
  }

  /** The largest share each holder may still be using (what its leases count as). */
  private static held(h: HolderRecord): { rateParts: number; capacityTokens: number } {
    let rateParts = 0;
    let capacityTokens = 0;
    for (const c of h.counted) {
      rateParts = Math.max(rateParts, c.rateParts);
      capacityTokens = Math.max(capacityTokens, c.capacityTokens);
    }
    return { rateParts, capacityTokens };
  }

  /** Shares counted as held right now, summed over holders (never above GRANTABLE_PARTS and C). */
  outstanding(nowUs: number): { readonly rateParts: number; readonly capacityTokens: number; readonly holders: number } {
    this.expire(nowUs);
    let rateParts = 0;
    let capacityTokens = 0;
    let holders = 0;
    for (const h of this.holders.values()) {
      const s = KeyBank.held(h);
      rateParts += s.rateParts;
      capacityTokens += s.capacityTokens;
      if (h.counted.length > 0) holders += 1;
    }
    return { rateParts, capacityTokens, holders };
  }

  /** Whether nothing is leased and nobody asked within L (the edge may drop this bank). */
  idle(nowUs: number): boolean {
    this.expire(nowUs);
    return this.holders.size === 0;
  }

  /** The share `holder` is counted as holding now. */
  heldBy(holder: string, nowUs: number): { readonly rateParts: number; readonly capacityTokens: number } {
    this.expire(nowUs);
    const h = this.holders.get(holder);
    return h === undefined ? { rateParts: 0, capacityTokens: 0 } : KeyBank.held(h);
  }

  /**
   * One round of grants (each flush): a lease for every holder with a request not yet answered
   * (holders ask every flush; one that stopped asking gets no more), sized by a
   * max-min fair split of the rate over demand (plus headroom), each limited to what the others
   * are still counted as holding leaves free. Shrinking shares go first; what they free becomes
   * usable only when their older, larger leases run out.
   */
  grants(nowUs: number): EscrowGrant[] {
    this.expire(nowUs);
    if (nowUs < this.startedAtUs + this.holdUs) return [];
    // The split is over every holder that asked within L (one whose last request was lost still
    // counts); leases go only to those with a fresh request.
    const active = [...this.holders.entries()].filter(([, h]) => h.askedAtUs + this.leaseUs > nowUs);
    const split = this.targets(active.map(([, h]) => h.demandPerSecond));
    const targets = active.map(([id], i) => [id, split[i]] as const);
    const asking = active.filter(([, h]) => h.seq > h.answeredSeq);
    if (asking.length === 0) return [];
    const held = new Map<string, { rateParts: number; capacityTokens: number }>();
    let sumRate = 0;
    let sumCap = 0;
    for (const [id, h] of this.holders) {
      const s = KeyBank.held(h);
      held.set(id, s);
      sumRate += s.rateParts;
      sumCap += s.capacityTokens;
    }
    const targetOf = new Map(targets);
    const order = asking.map(([id, h]) => ({ id, h, target: targetOf.get(id) ?? { rateParts: 0, capacityTokens: 0 } }));
    const growth = (o: (typeof order)[number]): number => o.target.rateParts - (held.get(o.id)?.rateParts ?? 0);
    order.sort((a, b) => growth(a) - growth(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const out: EscrowGrant[] = [];
    for (const { id, h, target } of order) {
      const mine = held.get(id) ?? { rateParts: 0, capacityTokens: 0 };
      const rateParts = Math.max(0, Math.min(target.rateParts, GRANTABLE_PARTS - (sumRate - mine.rateParts)));
      const capacityTokens = Math.max(0, Math.min(target.capacityTokens, this.rate.capacity - (sumCap - mine.capacityTokens)));
      h.counted.push({ rateParts, capacityTokens, untilUs: nowUs + this.holdUs });
      const now = { rateParts: Math.max(mine.rateParts, rateParts), capacityTokens: Math.max(mine.capacityTokens, capacityTokens) };
      sumRate += now.rateParts - mine.rateParts;
      sumCap += now.capacityTokens - mine.capacityTokens;
      held.set(id, now);
      h.answeredSeq = h.seq;
      out.push({ bank: this.name, holder: id, key: this.key, seq: h.seq, rateParts, capacityTokens });
    }
    return out;
  }

  /**
   * Max-min fair shares of the rate over the asked rates (each times HEADROOM), in SHARE_PARTS
   * parts, rounded down; capacity in proportion, at least one token for any holder with rate.
   */
  private targets(demands: readonly number[]): { rateParts: number; capacityTokens: number }[] {
    const r = (this.rate.refillTokens * 1e6) / this.rate.refillPeriodUs;
    const wants = demands.map((d) => Math.min(SHARE_PARTS, (d * HEADROOM * SHARE_PARTS) / r));
    const byWant = wants.map((w, i) => ({ w, i })).sort((a, b) => a.w - b.w);
    const parts = new Array<number>(wants.length).fill(0);
    let left = GRANTABLE_PARTS;
    for (let k = 0; k < byWant.length; k++) {
      const { w, i } = byWant[k] as { w: number; i: number };
      const fair = left / (byWant.length - k);
      const give = Math.floor(Math.min(w, fair));
      parts[i] = give;
      left -= give;
    }
    return parts.map((p) => ({
      rateParts: p,
      capacityTokens: p === 0 ? 0 : Math.max(1, Math.floor((this.rate.capacity * p) / SHARE_PARTS)),
    }));
  }
}
