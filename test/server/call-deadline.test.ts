// Deadlines against the event loop's backlog, on a hand-driven clock: the backlog a call is held
// to is the one the loop was reading when the call's headers arrived, never the one at decision
// time, and a call that waited behind a stopped loop is refused when it is about to be charged.

import { describe, expect, it } from "vitest";
import { arrivalDeadline, type CallTiming } from "../../src/server/call-deadline.ts";
import { CallGuard } from "../../src/server/call-guard.ts";
import { Status, type TokenmeshError } from "../../src/server/errors.ts";
import { EventLoopWatch } from "../../src/server/event-loop-watch.ts";
import { handElu } from "../support/hand-elu.ts";

/** A watch whose clock (also the guard's wall clock) and loop utilization the test drives. */
function loop() {
  let now = 1_000_000;
  let active = 0;
  const watch = new EventLoopWatch(
    () => now,
    handElu(
      () => now,
      () => active,
    ),
  );
  const guard = new CallGuard(undefined, () => now);
  return {
    watch,
    guard,
    /** `ms` pass, `busy` of them running code, then the loop's timer ticks. */
    pass(ms: number, busy = 0) {
      now += ms;
      active += busy;
      watch.sample();
    },
    /** A call whose headers arrive now, wanting an answer within `timeoutMs`. */
    arrive(timeoutMs: number): CallTiming {
      return { deadlineMs: arrivalDeadline(now + timeoutMs, watch) as number };
    },
  };
}

function refusal(guard: CallGuard, call: CallTiming): Status | undefined {
  try {
    guard.charge(call);
    return undefined;
  } catch (err) {
    return (err as TokenmeshError).code;
  }
}

describe("call deadlines and the loop's backlog", () => {
  it("a call read from a stall's backlog is held to a deadline moved back by it, even once the loop is idle", () => {
    const { guard, pass, arrive } = loop();
    for (let i = 0; i < 5; i++) pass(10);
    pass(300); // stopped: calls queue in the kernel
    for (let i = 0; i < 3; i++) pass(10, 9); // on time again, busy reading what queued
    const queued = arrive(100); // sent about 300 ms ago with 100 ms to live
    for (let i = 0; i < 5; i++) pass(10, 1); // the backlog is drained before its decision
    expect(refusal(guard, queued)).toBe(Status.DEADLINE_EXCEEDED);
    expect(guard.stats.expired.deadline).toBe(1);
  });

  it("a stall that ended before the call arrived never moves its deadline, whatever the loop does later", () => {
    const { guard, pass, arrive } = loop();
    for (let i = 0; i < 5; i++) pass(10);
    pass(300); // a stall ...
    for (let i = 0; i < 5; i++) pass(10, 1); // ... over, and its backlog drained: the loop is idle
    const onTime = arrive(200);
    // Before its decision the loop is busy again (reading other calls), with the old stall still
    // remembered: read at decision time, that would have refused this call, on time.
    for (let i = 0; i < 3; i++) pass(10, 9);
    expect(refusal(guard, onTime)).toBeUndefined();
    expect(guard.stats.expired.deadline).toBe(0);
  });

  it("a call that arrived on time and then waited behind a stopped loop is refused before it is charged", () => {
    const { guard, pass, arrive } = loop();
    for (let i = 0; i < 5; i++) pass(10);
    const call = arrive(200);
    expect(refusal(guard, call)).toBeUndefined(); // admitted on arrival
    pass(500); // the loop stops between admission and charge
    expect(refusal(guard, call)).toBe(Status.DEADLINE_EXCEEDED);
  });

  it("no deadline, none held; a cancelled call is refused as cancelled", () => {
    const { guard, watch } = loop();
    expect(arrivalDeadline(undefined, watch)).toBeUndefined();
    expect(arrivalDeadline(Number.POSITIVE_INFINITY, watch)).toBeUndefined();
    const controller = new AbortController();
    controller.abort();
    expect(refusal(guard, { signal: controller.signal })).toBe(Status.CANCELLED);
    expect(refusal(guard, {})).toBeUndefined();
  });
});
