// Acceptance scenarios under faults (docs/design.md, section 6): restart mid-load, a partition
// longer than T_retire (with mutual retirement) and its heal, convergence after quiescence
// with loss, duplicates, reordering, relays, peer timeouts and retirements, and state size.

import type { Replica } from "../../src/core/crdt/index.ts";
import { stateOf } from "../support/replica-state.ts";
import { Cluster } from "./cluster.ts";
import { admittedBetween, maxGap, type Row, rateByFit, row } from "./figures.ts";
import { C, D_US, FLUSH_US, LIMIT, LINK, R, seconds, WARM_US } from "./scenarios-load.ts";

const LOCKOUT_BOUND_US = (C / R) * 1e6 + 1_000_000;

/** Three saturated replicas; n1 is killed mid-load and restarted 500 ms later with empty state. */
export function restart(seed: number, scale: number): Row[] {
  const T = seconds(scale) * 1e6;
  const c = new Cluster({ seed, nodes: [{ name: "n0" }, { name: "n1" }, { name: "n2" }], link: LINK, flushUs: FLUSH_US, limit: LIMIT });
  c.start();
  for (const n of ["n0", "n1", "n2"]) c.load(n, "k", 2_000, 0, T);
  // Kill n1 at the worst moment: just after it admitted, before its next flush ships that.
  let kill = Math.round(T / 3);
  c.run(kill);
  const openSlot = (r: Replica | undefined) => (r === undefined ? undefined : stateOf(r).open.get("k"));
  while (openSlot(c.node("n1").replica) === undefined && kill < T / 2) {
    kill += 100;
    c.run(kill);
  }
  const dying = c.node("n1").replica;
  const oldInc = dying?.incarnation ?? "";
  const consumed = dying === undefined ? 0 : (stateOf(dying).counters.get("k") ?? 0);
  const back = kill + 500_000;
  c.kill("n1", kill);
  c.restart("n1", back);
  c.run(back + 2_000_000);
  // What the survivors ever learned of the dead incarnation's consumption.
  let known = 0;
  for (const n of ["n0", "n2"]) {
    const k = c.node(n).replica?.keyState("k");
    if (k === undefined) continue;
    known = Math.max(
      known,
      k.prefix.F.get(oldInc) ?? 0,
      k.K.get(oldInc) ?? 0,
      ...k.entries.filter((e) => e.inc === oldInc).map((e) => e.c1),
    );
  }
  c.run(T);
  const lost = consumed - known;
  const firstAfter = c.admissions.find((a) => a.node === "n1" && a.t >= back);
  const gap = maxGap(c, "n1", back, T);
  const minBefore = Math.min(...c.admissions.filter((a) => a.t >= WARM_US && a.t < kill).map((a) => a.trueLevel));
  const minAfter = Math.min(...c.admissions.filter((a) => a.t >= kill && a.t < T).map((a) => a.trueLevel));
  const span = (T - WARM_US) / 1e6;
  const total = admittedBetween(c, WARM_US, T);
  return [
    row(
      "restart: over-admission (lost consumption)",
      seed,
      lost,
      C,
      "tokens",
      lost <= C,
      `dead incarnation admitted ${consumed}, survivors learned ${known}; global min level before ${minBefore.toFixed(1)}, after ${minAfter.toFixed(1)}; ${(total / span).toFixed(1)}/s overall`,
    ),
    row(
      "restart: lock-out of the restarted replica",
      seed,
      gap / 1e6,
      LOCKOUT_BOUND_US / 1e6,
      "s",
      gap <= LOCKOUT_BOUND_US,
      `first admission ${firstAfter === undefined ? "never" : `${((firstAfter.t - back) / 1e3).toFixed(0)}ms`} after restart (warm-up: first sync)`,
    ),
  ];
}

/**
 * Four saturated replicas split into two sides for 60 s (longer than T_retire = 5 s: each side
 * retires the other), then healed. Over-admission during the split is at most r*60s per extra
 * side; nobody is locked out longer than C/r + 1 s after the heal; the rate is back to r then.
 */
export function partition(seed: number, scale: number): Row[] {
  const split = Math.max(12, Math.round(60 * scale)) * 1e6;
  const from = 5_000_000;
  const heal = from + split;
  const after = 20_000_000;
  const T = heal + after;
  const names = ["n0", "n1", "n2", "n3"];
  const c = new Cluster({ seed, nodes: names.map((name) => ({ name })), link: LINK, flushUs: FLUSH_US, limit: LIMIT });
  c.start();
  for (const n of names) c.load(n, "k", 2_000, 0, T);
  c.partition(
    [
      ["n0", "n1"],
      ["n2", "n3"],
    ],
    from,
    heal,
  );
  c.run(T);
  const during = admittedBetween(c, from, heal);
  const over = during - (R * split) / 1e6;
  const overBound = (R * split) / 1e6 + C + (R * D_US) / 1e6;
  let lock = 0;
  for (const n of names) lock = Math.max(lock, maxGap(c, n, heal, heal + 10_000_000));
  const back = heal + LOCKOUT_BOUND_US;
  // A slope, not a count between two instants: see rateByFit (the mesh admits in bursts).
  const rate = rateByFit(c, back, T);
  const renewals = names.map((n) => c.node(n).replica?.stats.renewals ?? 0).join("/");
  const retirements = names.map((n) => c.node(n).replica?.stats.retirementsWritten ?? 0).join("/");
  return [
    row(
      `partition ${split / 1e6}s: over-admission during split`,
      seed,
      over,
      overBound,
      "tokens",
      over <= overBound,
      `price of availability: ${during} admitted in ${split / 1e6}s (r*T = ${(R * split) / 1e6}, bound r*T per extra side + C + r*d)`,
    ),
    row(
      "partition: lock-out after heal",
      seed,
      lock / 1e6,
      LOCKOUT_BOUND_US / 1e6,
      "s",
      lock <= LOCKOUT_BOUND_US,
      `mutual retirement: retirements written ${retirements}, renewals ${renewals}`,
    ),
    row(
      "partition: rate error after C/r + 1s",
      seed,
      (Math.abs(rate - R) / R) * 100,
      1,
      "%",
      Math.abs(rate - R) / R <= 0.01,
      `${rate.toFixed(1)}/s (slope of admissions) over ${((T - back) / 1e6).toFixed(2)}s after the heal + C/r + 1s`,
    ),
  ];
}
