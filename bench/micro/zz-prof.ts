import { makeRate } from "../../src/core/rate.ts";
import { bucketId, Limiter, type ValidDecision } from "../../src/limiter/limiter.ts";
import { createReplica } from "../../src/mesh/mesh-node.ts";
import { ReplicaBackend } from "../../src/mesh/replica-backend.ts";

const made = makeRate({ capacity: 2000, refillTokens: 1000, refillPeriodUs: 1_000_000 });
if (!made.ok) throw new Error();
const rate = made.rate;
const keys = 10_000;
const tickOn = process.argv[2] !== "notick";
const replica2 = createReplica(
  {
    node: "a",
    cluster: "c",
    region: "r",
    peerListen: "127.0.0.1:1",
    peers: [],
    insecure: true,
    flushIntervalUs: 5000,
    retireAfterUs: 5e6,
    warmupTimeoutUs: 2e6,
    maxMessageBytes: 4e6,
    maxNewKeysPerPeerPerSecond: 1e5,
    relay: true,
  } as never,
  new Map([["p", { name: "p", rate }]]),
  1_800_000_000_000_000,
);
const limiter = new Limiter(new ReplicaBackend(replica2, 1_000_000));
let now = 1_800_000_000_000_000;
let n = 0;
let lastTick = now;
const t0 = performance.now();
while (performance.now() - t0 < 4000) {
  const decisions: ValidDecision[] = [];
  for (let i = 0; i < 100; i++) {
    const k = (n + i) % keys;
    decisions.push([{ policy: "p", id: bucketId("p", `k${k}`), rate, cost: 1 }]);
  }
  limiter.run(decisions, now, true);
  n += 100;
  now += 100;
  if (tickOn && now - lastTick >= 5000) {
    replica2.tick(now);
    lastTick = now;
  }
}
console.log(Math.round(n / ((performance.now() - t0) / 1000)));
