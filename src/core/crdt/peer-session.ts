// Per peer, both directions of a delta-interval stream (Almeida, Shoker, Baquero 2018, Alg. 2).
// Out: what the peer acknowledged and what was sent; a send normally covers (sent, now], and
// when acks stall it goes back to (acked, now], so a lost delta is covered by a later one.
// In: the highest sequence received without a gap. Watermarks in a delta that does not start
// at or below it would claim data that may be missing, so they are not applied (trap 8).

import type { IncId } from "./incarnation.ts";

export interface PeerSession {
  acked: number;
  sent: number;
  /** Raw time of the last ack progress (or of the last resend). */
  lastProgressAt: number;
  /** The peer incarnation we are streaming from; its sequence restarts with it. */
  inInc: IncId | undefined;
  contigIn: number;
  /** Whether any delta of this peer has been applied (first sync done). */
  synced: boolean;
  /** The peer reported a gap: the next delta restarts from the last ack. */
  resendNow: boolean;
  /** The stream to the peer may carry key parts without their header (header-omission.ts). */
  omitHeaders: boolean;
  /** This peer's bit in KeyRecord.headersFrom (0: none left), assigned on first use. */
  headerBit: number | undefined;
}

export function newSession(now: number): PeerSession {
  return {
    acked: 0,
    sent: 0,
    lastProgressAt: now,
    inInc: undefined,
    contigIn: 0,
    synced: false,
    resendNow: false,
    omitHeaders: false,
    headerBit: undefined,
  };
}

/** Where the next delta to this peer starts. */
export function nextFrom(s: PeerSession, now: number, resendAfterUs: number): number {
  // A reported gap resends early, but at most every quarter timeout (the resend is in flight).
  const early = s.resendNow && now - s.lastProgressAt >= resendAfterUs / 4;
  if (s.acked < s.sent && (early || now - s.lastProgressAt >= resendAfterUs)) {
    s.lastProgressAt = now;
    s.resendNow = false;
    return s.acked;
  }
  return s.sent;
}

/** Forget what the peer holds: it restarted or we renewed, so send everything again. */
export function resetOut(s: PeerSession, now: number): void {
  s.acked = 0;
  s.sent = 0;
  s.lastProgressAt = now;
}

export function onAck(s: PeerSession, upTo: number, now: number): void {
  if (upTo > s.acked && upTo <= s.sent) {
    s.acked = upTo;
    s.lastProgressAt = now;
  }
}

/** Accepts an incoming interval; returns whether its watermarks can be trusted. */
export function onDelta(
  s: PeerSession,
  inc: IncId,
  from: number,
  to: number,
): { trusted: boolean; newStream: boolean; previous: IncId | undefined } {
  let newStream = false;
  const previous = s.inInc;
  if (s.inInc !== inc) {
    s.inInc = inc;
    s.contigIn = 0;
    newStream = true;
  }
  const trusted = from <= s.contigIn;
  if (trusted) s.contigIn = Math.max(s.contigIn, to);
  return { trusted, newStream, previous: newStream ? previous : undefined };
}
