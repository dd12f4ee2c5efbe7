// The event-loop watch and the load shedder on a hand-driven clock: a stall keeps moving
// deadlines back for as long again after it (a shorter stall after it does not cut that short),
// and load is shed only while the loop is both behind and busy, with hysteresis.

import { describe, expect, it } from "vitest";
import { EventLoopWatch } from "../../src/server/event-loop-watch.ts";
import { LoadShedder } from "../../src/server/load-shedder.ts";
import { handElu } from "../support/hand-elu.ts";
import { HandScheduler } from "../support/hand-scheduler.ts";

function watch() {
  let now = 1_000;
  let active = 0; // loop time spent running code, ms
  const w = new EventLoopWatch(
    () => now,
    handElu(
      () => now,
      () => active,
    ),
  );
  return {
    w,
    /** `ms` pass; `busy` of them spent running code; then the timer ticks. */
    pass(ms: number, busy = 0) {
      now += ms;
      active += busy;
      w.sample();
    },
    at: () => now,
  };
}

describe("event-loop watch", () => {
  it("reports a stall for as long again after it, and a shorter one does not cut it short", () => {
    const { w, pass } = watch();
    for (let i = 0; i < 5; i++) pass(10);
    expect(w.stallMs()).toBe(0);
    pass(2_500); // stopped
    expect(w.stallMs()).toBeGreaterThanOrEqual(2_500);
    pass(10); // on time again
    expect(w.stallMs()).toBeGreaterThanOrEqual(2_500);
    pass(60); // a short stall ...
    pass(10); // ... over
    expect(w.stallMs()).toBeGreaterThanOrEqual(2_500);
    for (let i = 0; i < 300; i++) pass(10);
    expect(w.stallMs()).toBe(0);
  });
});

describe("event-loop watch: backlog behind a stall", () => {
  it("moves deadlines back while the loop reads the stall's backlog, not once it is idle again", () => {
    const { w, pass } = watch();
    for (let i = 0; i < 5; i++) pass(10);
    pass(300); // stopped
    expect(w.backlogMs()).toBeGreaterThanOrEqual(300); // under way: counts whatever the load
    for (let i = 0; i < 3; i++) pass(10, 9); // on time again, busy reading what queued
    expect(w.backlogMs()).toBeGreaterThanOrEqual(300);
    for (let i = 0; i < 3; i++) pass(10, 1); // idle: the backlog is drained
    expect(w.backlogMs()).toBe(0);
    expect(w.stallMs()).toBeGreaterThanOrEqual(300); // the stall itself is still remembered
  });
});

describe("event-loop watch: backlog right after a stop", () => {
  it("is judged on the ticks after the stall, not on the stall's own idle-looking ticks", () => {
    const { w, pass } = watch();
    for (let i = 0; i < 5; i++) pass(10); // idle before
    pass(2_500); // stopped inside epoll_wait: reads as 2.5 s of idle loop
    pass(10, 9); // the first tick on time, busy reading what queued: the stall is over
    // An average over the last three ticks (idle, stopped, busy) is 0.3: it said "drained".
    expect(w.backlogMs()).toBeGreaterThanOrEqual(2_500);
    pass(10, 9);
    expect(w.backlogMs()).toBeGreaterThanOrEqual(2_500);
    pass(10, 2); // a tick that found the loop idle: nothing was left queued
    expect(w.backlogMs()).toBe(0);
    pass(10, 9); // busy again later (new calls): the old stall's backlog stays drained
    expect(w.backlogMs()).toBe(0);
    expect(w.stallMs()).toBeGreaterThanOrEqual(2_500);
  });
});

describe("load shedder", () => {
  it("sheds while the loop is behind and busy, not when it is starved but idle", () => {
    const { w, pass } = watch();
    const shedder = new LoadShedder(w, 100);
    for (let i = 0; i < 3; i++) pass(160, 5); // late, but idle: another process has the CPU
    expect(shedder.shed()).toBeUndefined();
    for (let i = 0; i < 3; i++) pass(160, 158); // late and busy: our own load
    expect(shedder.shed()).toBeGreaterThanOrEqual(100);
    pass(70, 69); // 60 ms late: still shedding (hysteresis down to 50)
    pass(70, 69);
    pass(70, 69);
    expect(shedder.shed()).toBeGreaterThanOrEqual(50);
    for (let i = 0; i < 3; i++) pass(10, 2); // keeps time
    expect(shedder.shed()).toBeUndefined();
  });
});

describe("event-loop watch: idle slow-down", () => {
  function started() {
    const timers = new HandScheduler();
    let active = 0;
    const now = (): number => 1_000 + timers.nowMs;
    const w = new EventLoopWatch(
      now,
      handElu(now, () => active),
    ).start(timers);
    return { timers, w, busyFor: (ms: number) => (active += ms) };
  }

  it("ticks every 100 ms after half a second idle, and every 10 ms again from the first read", () => {
    const { timers, w } = started();
    expect(timers.pending()).toEqual([[10, 10]]);
    timers.advance(600);
    expect(timers.pending().map(([every]) => every)).toEqual([100]);
    expect(w.stallMs()).toBe(0); // a call arrives: nothing was late
    expect(timers.pending()).toEqual([[10, 10]]);
  });

  it("a busy loop keeps the 10 ms tick", () => {
    const { timers, busyFor } = started();
    for (let i = 0; i < 100; i++) {
      busyFor(5);
      timers.advance(10);
    }
    expect(timers.pending().map(([every]) => every)).toEqual([10]);
  });

  it("short bursts of work (heartbeats) do not keep it at 10 ms", () => {
    const { timers, busyFor } = started();
    for (let i = 0; i < 100; i++) {
      if (i % 20 === 0) busyFor(6); // one 6 ms burst every 200 ms: 3% of the loop
      timers.advance(10);
    }
    expect(timers.pending().map(([every]) => every)).toEqual([100]);
  });

  it("a stall while slowed down is seen by the first read, and moves deadlines back as before", () => {
    const { timers, w } = started();
    timers.advance(600);
    // Stopped for 2 s: no timer ran (the hand clock moves without running them).
    timers.nowMs += 2_000;
    expect(w.backlogMs()).toBeGreaterThanOrEqual(1_900);
    timers.advance(10); // on time again, and idle: the backlog read is over, the stall remembered
    expect(w.stallMs()).toBeGreaterThanOrEqual(1_900);
  });
});
