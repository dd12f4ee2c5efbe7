// When a sender goes back to the last ack (peer-session.ts): after its acks have been silent,
// with data out, for twice the longest recent silence that ended in progress, doubled per
// timeout resend, never below resendAfter nor above MAX_RESEND_STRETCH times it. Issue 14: with a fixed 500 ms, a receiver reading a backlog
// got the whole backlog again on every burst, and a saturated mesh fell seconds behind and shed
// its callers.

import { describe, expect, it } from "vitest";
import type { Delta } from "../../src/core/crdt/index.ts";
import {
  MAX_RESEND_STRETCH,
  newSession,
  nextFrom,
  noteSent,
  onAck,
  type PeerSession,
  resendWait,
  SILENCE_HALF_LIFE_US,
} from "../../src/core/crdt/peer-session.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";

const BASE = 500_000;

/** Sends up to `seq` at `at` and has it acknowledged `silence` later. */
function exchange(s: PeerSession, seq: number, at: number, silence: number): number {
  noteSent(s, seq, at);
  onAck(s, seq, at + silence);
  return at + silence;
}

describe("resend wait", () => {
  it("is resendAfter until a silence has been measured, and 0 stays 0 (resend on every flush)", () => {
    const s = newSession(0);
    expect(resendWait(s, BASE, 0)).toBe(BASE);
    const t = exchange(s, 1, 0, 2_000_000);
    expect(resendWait(s, 0, t)).toBe(0);
  });

  it("stays resendAfter on a link whose acks keep coming", () => {
    const s = newSession(0);
    let t = 0;
    for (let seq = 1; seq <= 100; seq++) t = exchange(s, seq, t, 5_000);
    expect(resendWait(s, BASE, t)).toBe(BASE);
  });

  it("waits twice the longest recent silence, which a burst of acks does not erase, within MAX_RESEND_STRETCH x resendAfter", () => {
    const s = newSession(0);
    let t = exchange(s, 1, 0, 800_000);
    for (let seq = 2; seq <= 100; seq++) t = exchange(s, seq, t, 0); // the rest of the burst
    expect(resendWait(s, BASE, t)).toBe(1_600_000);
    t = exchange(s, 101, t, 30_000_000);
    expect(resendWait(s, BASE, t)).toBe(MAX_RESEND_STRETCH * BASE);
  });

  it("forgets a long silence by halves", () => {
    const s = newSession(0);
    let t = exchange(s, 1, 0, 800_000);
    t += SILENCE_HALF_LIFE_US;
    expect(resendWait(s, BASE, t)).toBe(800_000);
    t += SILENCE_HALF_LIFE_US;
    expect(resendWait(s, BASE, t)).toBe(BASE);
  });

  it("a silence that starts after an idle time is measured from the send, not the last ack", () => {
    const s = newSession(0);
    exchange(s, 1, 0, 5_000);
    const t = exchange(s, 2, 60_000_000, 5_000); // a minute with nothing out
    expect(resendWait(s, BASE, t)).toBe(BASE);
    noteSent(s, 3, 120_000_000);
    expect(nextFrom(s, 120_000_000 + BASE - 1, BASE)).toBe(3); // no resend right after an idle time
  });

  it("doubles per timeout resend; the silence a resend ended is no sample (Karn)", () => {
    const s = newSession(0);
    noteSent(s, 10, 0);
    let now = 0;
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const wait = resendWait(s, BASE, now);
      waits.push(wait);
      now += wait - 1;
      expect(nextFrom(s, now, BASE)).toBe(10); // not yet
      now += 1;
      expect(nextFrom(s, now, BASE)).toBe(0); // resend from the ack
    }
    expect(waits).toEqual([BASE, 2 * BASE, 4 * BASE, 8 * BASE, 8 * BASE]);
    now += 100_000;
    onAck(s, 5, now); // ends the silence the resends were in: no sample, still backed off
    expect(s.silenceUs).toBe(0);
    expect(resendWait(s, BASE, now)).toBe(8 * BASE);
    now = exchange(s, 20, now + 1_000, 5_000); // the same burst: ends nothing
    expect(resendWait(s, BASE, now)).toBe(8 * BASE);
    now = exchange(s, 21, now + 1_000, 100_000); // a silence with no resend in it
    expect(resendWait(s, BASE, now)).toBe(BASE);
  });

  it("a reported gap still resends after a quarter of the wait, and is not a timeout", () => {
    const s = newSession(0);
    noteSent(s, 10, 0);
    s.resendNow = true;
    expect(nextFrom(s, BASE / 4 - 1, BASE)).toBe(10);
    expect(nextFrom(s, BASE / 4, BASE)).toBe(0);
    expect(resendWait(s, BASE, BASE / 4)).toBe(BASE);
  });
});

describe("a receiver that answers in bursts (its event loop busy 750 ms of every 800)", () => {
  /** Resends (a delta starting below the previous one's end) over `seconds` of flushes every 5 ms. */
  function run(seconds: number): { resends: number; deltas: number; converged: boolean } {
    const m = new Mesh(["a", "b"], { resendAfterUs: BASE });
    m.round(1_000);
    m.round(1_000);
    const a = m.get("a");
    const b = m.get("b");
    const cfg = config(1000, 1000);
    const queue: Delta[] = [];
    let lastTo = Number.NEGATIVE_INFINITY;
    let resends = 0;
    let deltas = 0;
    const start = m.now;
    const end = start + seconds * 1_000_000;
    for (let i = 0; m.now < end; i++) {
      m.now += 5_000;
      a.consume(`k${i % 500}`, cfg, 1, m.now);
      a.tick(m.now);
      const d = a.deltaFor("b", m.now);
      if (d !== undefined) {
        deltas++;
        if (d.fromSeq < lastTo) resends++;
        lastTo = d.toSeq;
        queue.push(d);
      }
      // b gets to its socket once per 800 ms and reads, applies and acks all that queued, in
      // order, as a stream delivers it: nothing is lost, the acks are only late.
      if ((m.now - start) % 800_000 < 5_000) {
        b.tick(m.now);
        for (const q of queue.splice(0)) {
          const res = b.applyDelta(viaWire(q), m.now);
          if (!res.ok) throw new Error(res.error.message);
          a.applyAck(res.value, m.now);
        }
        m.deliver(b.deltaFor("a", m.now), "a");
      }
    }
    for (const q of queue.splice(0)) m.deliver(q, "b");
    for (let i = 0; i < 3; i++) m.round(1_000);
    return { resends, deltas, converged: a.canonical() === b.canonical() };
  }

  it("is not sent its backlog again every half second", () => {
    const r = run(10);
    expect(r.deltas).toBeGreaterThan(1000);
    // The wait starts at 500 ms and learns the round trip (up to 800 ms here) from the first
    // acks: at most the resends of that onset. A fixed 500 ms resent the whole backlog on
    // every burst (12 times in 10 s).
    expect(r.resends).toBeLessThanOrEqual(2);
    expect(r.converged).toBe(true);
  });
});
