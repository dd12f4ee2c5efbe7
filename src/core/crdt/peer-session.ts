// Per peer, both directions of a delta-interval stream (Almeida, Shoker, Baquero 2018, Alg. 2).
// Out: what the peer acknowledged and what was sent; a send normally covers (sent, now], and
// when acks stall it goes back to (acked, now], so a lost delta is covered by a later one.
// In: the highest sequence received without a gap. Watermarks in a delta that does not start
// at or below it would claim data that may be missing, so they are not applied (trap 8).
//
// "Acks stall" means: silent, with data out, for longer than this link's acks have lately been.
// Each silence that ends in progress is a sample of how long the peer may take (a receiver
// reading a backlog answers in bursts: one long silence, then many acks at once, so a mean
// would forget the silence within the burst); the link keeps the longest, halving every
// SILENCE_HALF_LIFE_US, and waits twice that, never less than the configured `resendAfter`. A
// resend on a timeout doubles the wait (as TCP's timer backs off), and a silence that held one
// is not a sample (Karn's rule: its end may answer the resend, not the original); the doubling
// lasts until a silence ends without one. Acks within BURST_US of the last progress are the
// same burst, not a silence: neither a sample nor an end to the doubling.
// With the fixed 500 ms, a receiver that took longer than that to read a backlog was sent the
// whole backlog again on every burst, which made it slower still: saturated meshes fell
// seconds behind and shed their callers (issue 14). A link whose acks keep coming (every flush)
// measures silences of a few ms and keeps `resendAfter` as it was.

import type { IncId } from "./incarnation.ts";

export interface PeerSession {
  acked: number;
  sent: number;
  /** Raw time of the last ack progress, of the last resend, or of the send that ended a time with nothing unacknowledged. */
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
  /** The longest recent ack silence (us), decaying from `silenceAt` on; 0 before any. */
  silenceUs: number;
  silenceAt: number;
  /** Resends on a timeout since the last silence that ended without one: each doubles the wait. */
  timeouts: number;
  /** A timeout resend went out since the last ack progress (the silence it ends is no sample). */
  resentInSilence: boolean;
}

/**
 * The longest the measured silences and the doubling may stretch the resend wait, as a multiple
 * of `resendAfter`: whatever a peer does, a lost delta is resent within this.
 */
export const MAX_RESEND_STRETCH = 8;

/** Progress this soon after the last is part of the same burst of acks (a flush is 5 ms). */
export const BURST_US = 20_000;

/** A long silence measured once counts for less and less: its half-life. */
export const SILENCE_HALF_LIFE_US = 10_000_000;

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
    silenceUs: 0,
    silenceAt: now,
    timeouts: 0,
    resentInSilence: false,
  };
}

/** The longest recent silence as of `now`, halved per SILENCE_HALF_LIFE_US since it was noted. */
function recentSilence(s: PeerSession, now: number): number {
  const age = Math.max(0, now - s.silenceAt);
  return s.silenceUs * 2 ** (-age / SILENCE_HALF_LIFE_US);
}

/**
 * How long acks may be silent before a resend at `now`: twice the longest recent silence (at
 * least resendAfterUs), doubled per timeout resend, at most MAX_RESEND_STRETCH x resendAfterUs.
 * resendAfterUs 0 (tests) resends on every flush, as before.
 */
export function resendWait(s: PeerSession, resendAfterUs: number, now: number): number {
  if (resendAfterUs <= 0) return resendAfterUs;
  const measured = Math.ceil(2 * recentSilence(s, now));
  return Math.min(MAX_RESEND_STRETCH * resendAfterUs, Math.max(resendAfterUs, measured) * 2 ** Math.min(s.timeouts, 3));
}

/**
 * Whether the peer is later with its ack than its link has been: data unacknowledged for longer
 * than twice the longest recent ack silence. On a link of 80 ms round trip every delta is
 * unacknowledged for 80 ms; that is the link, not the peer falling behind.
 */
export function ackOverdue(s: PeerSession, now: number): boolean {
  return s.acked < s.sent && now - s.lastProgressAt > 2 * recentSilence(s, now);
}

function noteSilence(s: PeerSession, r: number, now: number): void {
  const kept = recentSilence(s, now);
  s.silenceUs = Math.max(r, kept);
  s.silenceAt = now;
}

/** A delta up to `seq` went out at `now`: a silence starts here if nothing was unacknowledged. */
export function noteSent(s: PeerSession, seq: number, now: number): void {
  if (s.acked >= s.sent) s.lastProgressAt = now;
  s.sent = seq;
}

/** Where the next delta to this peer starts. */
export function nextFrom(s: PeerSession, now: number, resendAfterUs: number): number {
  // A reported gap resends early, but at most every quarter timeout (the resend is in flight).
  const wait = resendWait(s, resendAfterUs, now);
  const early = s.resendNow && now - s.lastProgressAt >= wait / 4;
  if (s.acked < s.sent && (early || now - s.lastProgressAt >= wait)) {
    if (!early) {
      s.timeouts++;
      s.resentInSilence = true;
    }
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
  s.timeouts = 0;
  s.resentInSilence = false;
}

export function onAck(s: PeerSession, upTo: number, now: number): void {
  if (upTo > s.acked && upTo <= s.sent) {
    const silence = now - s.lastProgressAt;
    if (silence >= BURST_US) {
      if (!s.resentInSilence) {
        noteSilence(s, silence, now);
        s.timeouts = 0;
      }
      s.resentInSilence = false;
    }
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
