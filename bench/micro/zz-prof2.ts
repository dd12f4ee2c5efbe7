import { DEFAULT_LIMITS, makeKeyConfig, Replica } from "../../src/core/crdt/index.ts";

let ids16 = 0;
const START = 1_800_000_000_000_000;
function replica(node: string, peers: string[]): Replica {
  return new Replica({
    node,
    peers,
    nowUs: START,
    randomHex: () => (++ids16).toString(16).padStart(18, "0"),
    warmupTimeoutUs: 0,
    maxNewKeysPerDelta: 1e6,
    limits: { ...DEFAULT_LIMITS, maxKeysPerDelta: 1e6 },
  });
}
function exchange(a: Replica, b: Replica, now: number): void {
  for (const [from, to] of [
    [a, b],
    [b, a],
  ] as const) {
    const d = from.deltaFor(to.s.opts.node, now);
    if (d === undefined) continue;
    const r = to.applyDelta(d, now);
    if (!r.ok) throw new Error(r.error.message);
    from.applyAck(r.ack, now);
  }
}
const c = makeKeyConfig({ capacity: 2000, refillTokens: 1, refillPeriodUs: 1_000_000 });
if (!c.ok) throw 0;
const cfg = c.config;
const held = Number(process.argv[2] ?? 10000);
const a = replica("a", ["b"]);
const b = replica("b", ["a"]);
let now = START;
a.tick(now);
b.tick(now);
exchange(a, b, now);
for (let k = 0; k < held; k++) a.consume(`h${k}`, cfg, 1_000, now);
for (let f = 0; f < 3; f++) {
  now += 5000;
  a.tick(now);
  b.tick(now);
  exchange(a, b, now);
}
const t0 = performance.now();
const tt = { tickA: 0, tickB: 0, ex: 0, cons: 0 };
for (let f = 0; f < 200; f++) {
  now += 5000;
  let x = performance.now();
  for (let k = 0; k < 100; k++) a.consume(`c${(f * 100 + k) % 1000}`, cfg, 1, now);
  tt.cons += performance.now() - x;
  x = performance.now();
  a.tick(now);
  tt.tickA += performance.now() - x;
  x = performance.now();
  b.tick(now);
  tt.tickB += performance.now() - x;
  x = performance.now();
  exchange(a, b, now);
  tt.ex += performance.now() - x;
}
console.log((performance.now() - t0) / 200, tt, a.s.keys.size, b.s.keys.size, a.s.tails.size, a.s.collect.length, b.s.collect.length);
{
  for (let f = 0; f < 3; f++) {
    now += 5000;
    for (let k = 0; k < 100; k++) a.consume(`c${(f * 100 + k) % 1000}`, cfg, 1, now);
    a.tick(now);
    b.tick(now);
    const d1 = a.deltaFor("b", now);
    console.log("a->b", d1?.keys.length, d1?.from, d1?.to, JSON.stringify(d1).length);
    if (d1) {
      const r = b.applyDelta(d1, now);
      if (r.ok) a.applyAck(r.ack, now);
    }
    const d2 = b.deltaFor("a", now);
    console.log("b->a", d2?.keys.length, JSON.stringify(d2).length);
    if (d2) {
      const r = a.applyDelta(d2, now);
      if (r.ok) b.applyAck(r.ack, now);
    }
  }
}
