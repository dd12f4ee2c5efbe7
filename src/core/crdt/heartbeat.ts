// When a replica raises its own watermark (its heartbeat). Peers fold only up to the smallest
// watermark over live incarnations, so while anything may still need folding here, or this
// replica wrote since its last raise, it raises on every tick. Otherwise nothing waits for its
// watermark, and raising it every tick only made deltas and acks (an idle 3-replica mesh spent
// about a quarter of a core on them): it backs off, doubling the gap between raises up to
// `maxIdleHeartbeatUs`, and returns to every tick at the first change. Peers judge silence on
// any delta of an incarnation's own stream (item 14), and the cap is at most a fifth of
// `retireAfter`, so a backed-off replica is never retired for it (docs/design.md, "The heartbeat:
// idle back-off"). A replica that cannot tell whether its peers are current does not back off:
// while a link is down (the edge says so) or a peer has left data unacknowledged over two ticks
// in a row and for longer than twice the ack silences its link has shown (a link to another
// region leaves every delta unacknowledged for its round trip: counted in ticks alone, that kept
// every far mesh at one raise per tick), it keeps raising on every tick, so the peer is brought
// up to date at the normal pace once it answers again.

import { ackOverdue, resendWait } from "./peer-session.ts";
import type { ReplicaState } from "./replica-state.ts";

export interface HeartbeatState {
  /** Raw time of the last raise. */
  lastRaiseAt: number;
  /** Gap before the next idle raise; 0 while active (raise every tick). */
  gapUs: number;
  /** Change sequence of the latest key change seen at the last tick (change list, key-index.ts). */
  keysSeenAt: number;
  /**
   * A peer's delta carried key parts since the last tick. Its writers fold them only once our
   * watermark passes them too, even for keys we do not hold (ignored here: a removed policy).
   */
  peerData: boolean;
  /** The edge has a peer link that is down (Replica.linkDown). */
  linkDown: boolean;
  /** Ticks in a row that found some peer with unacknowledged data (UNACKED_TICKS makes it active). */
  unackedTicks: number;
}

/**
 * Ticks in a row with unacknowledged data before it keeps the pace: one tick may just come
 * before an ack that is on its way (a loaded machine), and backing off stops only for a peer
 * that is really behind.
 */
const UNACKED_TICKS = 2;

export function newHeartbeat(raw: number): HeartbeatState {
  return { lastRaiseAt: raw, gapUs: 0, keysSeenAt: 0, peerData: false, linkDown: false, unackedTicks: 0 };
}

/** Some peer's ack is later than its link has shown them to be (peer-session.ts, ackOverdue). */
function anyOverdue(s: ReplicaState, raw: number): boolean {
  for (const session of s.sessions.values()) if (ackOverdue(session, raw)) return true;
  return false;
}

/** The longest gap between idle raises: the option, but never above a fifth of retireAfter. */
export function maxIdleGap(s: ReplicaState): number {
  return Math.max(1, Math.min(s.opts.maxIdleHeartbeatUs, Math.floor(s.opts.retireAfterUs / 5)));
}

/**
 * Whether this replica has something peers still need its watermark for, or that a tick must
 * handle soon: its own open slots, keys with a tail (they fold only once every live watermark
 * passes them), any key changed since the last tick (here or by a peer: its fold follows), key
 * parts received since the last tick (held or not: their folds wait for our watermark too), or
 * held data waiting for the clock. Before the first sync the edge keeps ticking too, and so it
 * does while a peer link is down or a peer leaves data unacknowledged (see the top).
 */
export function isActive(s: ReplicaState): boolean {
  return (
    !s.ready ||
    s.heartbeat.linkDown ||
    s.heartbeat.unackedTicks >= UNACKED_TICKS ||
    s.open.size > 0 ||
    s.tails.size > 0 ||
    s.touched.size > 0 ||
    s.heldKeys.length > 0 ||
    s.heldRecords.length > 0 ||
    s.heartbeat.peerData ||
    (s.lastChanged?.changed ?? 0) > s.heartbeat.keysSeenAt
  );
}

/**
 * Whether this tick raises the watermark, and the back-off bookkeeping for it: every tick while
 * active (the gap restarts from zero), else once the gap since the last raise has passed, the
 * gap then doubling from one slot (at least 1 ms) up to maxIdleGap.
 */
export function raiseDue(s: ReplicaState, raw: number): boolean {
  const hb = s.heartbeat;
  hb.unackedTicks = anyOverdue(s, raw) ? hb.unackedTicks + 1 : 0;
  const active = isActive(s);
  hb.keysSeenAt = Math.max(hb.keysSeenAt, s.lastChanged?.changed ?? 0);
  hb.peerData = false;
  if (active) {
    hb.gapUs = 0;
    return true;
  }
  if (raw - hb.lastRaiseAt < hb.gapUs) return false;
  hb.gapUs = Math.min(maxIdleGap(s), Math.max(Math.max(1_000, s.opts.slotWidthUs), hb.gapUs * 2));
  return true;
}

/**
 * Until when (raw) ticks have nothing to do, or undefined when the next tick may: the next idle
 * raise, or an earlier resend to a peer whose acks stalled. A resend already due that the last
 * flush did not send belongs to a link that is down; its reconnect sends everything anyway.
 */
export function quietUntil(s: ReplicaState, raw: number): number | undefined {
  if (isActive(s) || s.heartbeat.gapUs === 0) return undefined;
  let until = s.heartbeat.lastRaiseAt + s.heartbeat.gapUs;
  for (const session of s.sessions.values()) {
    if (session.acked >= session.sent) continue;
    const wait = resendWait(session, s.opts.resendAfterUs, raw);
    const after = session.resendNow ? wait / 4 : wait;
    const due = session.lastProgressAt + after;
    if (due > raw) until = Math.min(until, due);
  }
  return until;
}
