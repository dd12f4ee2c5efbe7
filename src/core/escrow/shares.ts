// Strict mode's vocabulary: the shares of one key's limit that its bank leases to holders, the
// messages that ask for and carry them, and the bounds every peer-supplied message is checked
// against. A share is a fraction of the rate (in SHARE_PARTS parts) and a number of whole tokens
// of the capacity; a holder may admit only within the shares it holds (docs/design.md, section 9).

import { MAX_EXACT, type Rate } from "../rate.ts";
import { fail, ok, type Result } from "../result.ts";

/** Parts of the rate a share is counted in: 0.01% of r resolves the split finely enough. */
export const SHARE_PARTS = 10_000;

/**
 * How far any one clock's rate may be from true time (parts per million): Linux slews a clock
 * by at most 500 ppm. A holder refills its share by its own clock, so one running that much
 * fast would admit that much more than its share of r; the bank therefore leases out at most
 * GRANTABLE_PARTS of the rate, short of the whole by this much.
 */
export const CLOCK_RATE_PPM = 500;

/** Parts of the rate the bank leases out in all: (1 − CLOCK_RATE_PPM) of it, rounded down. */
export const GRANTABLE_PARTS = SHARE_PARTS - Math.ceil((SHARE_PARTS * CLOCK_RATE_PPM) / 1_000_000);

/**
 * How much slower than the holder's the bank's clock may run over one lease, in parts per
 * million of the lease. Linux slews a clock by at most 500 ppm; two clocks slewed in opposite
 * directions drift 1000 ppm apart; twice that is the margin. Offsets never matter (each side
 * measures only its own intervals), so a 1 h skew costs nothing.
 */
export const DRIFT_MARGIN_PPM = 2_000;

/** How long after the bank granted a lease it still counts it as held: L plus the drift margin. */
export function bankHoldUs(leaseUs: number): number {
  return leaseUs + Math.ceil((leaseUs * DRIFT_MARGIN_PPM) / 1_000_000);
}

/** Smallest and largest lease a policy may configure (microseconds). */
export const LEASE_BOUNDS = { minUs: 10_000, maxUs: 3_600_000_000 } as const;

/** A holder's ask, sent every flush: it renews its lease and says what it would spend. */
export interface EscrowRequest {
  /** The holder: the asking replica's incarnation id. */
  readonly holder: string;
  readonly key: string;
  /** The holder's request counter for this key (1, 2, ...): the grant answering it names it. */
  readonly seq: number;
  /** Tokens per second the holder was asked for lately (admitted or not). */
  readonly demandPerSecond: number;
}

/** The bank's answer: a share the holder may use until its own clock reads sent(seq) + L. */
export interface EscrowGrant {
  /** The bank's node name (only the key's bank may grant). */
  readonly bank: string;
  readonly holder: string;
  readonly key: string;
  /** The request this answers. */
  readonly seq: number;
  /** Share of the rate, in SHARE_PARTS parts. */
  readonly rateParts: number;
  /** Share of the capacity, in whole tokens. */
  readonly capacityTokens: number;
}

/**
 * Whether a limit can be split into shares exactly: a holder's level is kept in units times
 * SHARE_PARTS, and capacity plus one microsecond's refill must stay below 2^53 there.
 */
export function strictRateProblem(rate: Rate): string | undefined {
  const top = (rate.capacityUnits + rate.unitsPerMicro) * SHARE_PARTS;
  if (top > MAX_EXACT) {
    return `mode strict needs capacity × (period / refill) × ${SHARE_PARTS} below 2^53; got capacity ${rate.capacity}, refill ${rate.refillTokens} per ${rate.refillPeriodUs} us`;
  }
  return undefined;
}

function isCount(n: unknown, max: number): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= max;
}

/** Largest demand a request may state: more than any rate the core represents. */
const MAX_DEMAND_PER_SECOND = 1e15;
const MAX_SEQ = MAX_EXACT;
const MAX_NAME = 256;

function isName(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && s.length <= MAX_NAME;
}

/**
 * Checks a request from a peer. `from` is who the peer's stream authenticated (its node name):
 * the holder must be `from` itself or `from/<id>` (a node asks only for itself).
 */
export function validateRequest(m: Partial<Record<keyof EscrowRequest, unknown>>, from: string): Result<EscrowRequest> {
  if (!isName(m.holder)) return fail("holder", `must be an incarnation id of 1..${MAX_NAME} characters`);
  if (m.holder !== from && !m.holder.startsWith(`${from}/`))
    return fail("holder", `must be the sender's own (${from}/...), got ${m.holder}`);
  if (!isName(m.key)) return fail("key", `must be a key of 1..${MAX_NAME} characters`);
  if (!isCount(m.seq, MAX_SEQ) || m.seq < 1) return fail("seq", `must be an integer in 1..2^53-1, got ${String(m.seq)}`);
  const d = m.demandPerSecond;
  if (typeof d !== "number" || !Number.isFinite(d) || d < 0 || d > MAX_DEMAND_PER_SECOND) {
    return fail("demandPerSecond", `must be a finite number in 0..${MAX_DEMAND_PER_SECOND}, got ${String(d)}`);
  }
  return ok({ holder: m.holder, key: m.key, seq: m.seq, demandPerSecond: d });
}

/**
 * Checks a grant from a peer: it must come from the key's bank, be addressed to this holder, and
 * be no larger than the whole limit (a bank never grants more; anything larger is refused).
 */
export function validateGrant(
  m: Partial<Record<keyof EscrowGrant, unknown>>,
  expect: { readonly bank: string; readonly holder: string; readonly rate: Rate },
): Result<EscrowGrant> {
  if (m.bank !== expect.bank) return fail("bank", `only the key's bank ${expect.bank} may grant, got ${String(m.bank)}`);
  if (m.holder !== expect.holder) return fail("holder", `must be this replica's incarnation ${expect.holder}, got ${String(m.holder)}`);
  if (!isName(m.key)) return fail("key", `must be a key of 1..${MAX_NAME} characters`);
  if (!isCount(m.seq, MAX_SEQ) || m.seq < 1) return fail("seq", `must be an integer in 1..2^53-1, got ${String(m.seq)}`);
  if (!isCount(m.rateParts, SHARE_PARTS)) return fail("rateParts", `must be an integer in 0..${SHARE_PARTS}, got ${String(m.rateParts)}`);
  if (!isCount(m.capacityTokens, expect.rate.capacity)) {
    return fail("capacityTokens", `must be an integer in 0..${expect.rate.capacity} (the capacity), got ${String(m.capacityTokens)}`);
  }
  return ok({
    bank: m.bank,
    holder: m.holder,
    key: m.key,
    seq: m.seq,
    rateParts: m.rateParts,
    capacityTokens: m.capacityTokens,
  });
}
