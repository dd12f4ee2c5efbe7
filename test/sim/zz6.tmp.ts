import { Cluster } from "./cluster.ts";
import { levelOfAllData } from "./figures.ts";
const names = ["n0", "n1", "n2", "n3", "n4"];
const topology = names.slice(1).map((n, i) => [names[i] as string, n] as const);
const T = 30e6;
const c = new Cluster({ seed: 1, nodes: names.map((name) => ({ name })), topology, link: { delayUs: 20_000, jitterUs: 30_000, loss: 0.1, duplicate: 0.1 }, flushUs: 5000, limit: { capacity: 10, refillTokens: 1000, refillPeriodUs: 1_000_000 }, replica: { resendAfterUs: 200_000, retireAfterUs: 2_000_000, warmupTimeoutUs: 1_000_000 } });
c.start();
const keys = { hot: 1_500, warm: 150, cold: 5 };
for (const n of names) for (const [k, rate] of Object.entries(keys)) c.load(n, k, rate, 0, T);
c.partition([["n0", "n1", "n2", "n3"], ["n4"]], T / 3, T / 3 + 5_000_000);
const seen: { t: number; tau: number; level: number; forgiven: number; late: number; digest: number }[] = [];
let lastDigest = -1;
for (let t = 5000; t <= T; t += 5000) {
  c.run(t);
  const k = c.node("n0").replica?.keyState("hot");
  if (k && k.prefix.digest !== lastDigest) { lastDigest = k.prefix.digest; seen.push({ t, tau: k.prefix.tau, level: k.prefix.level / 1000, forgiven: k.prefix.forgiven, late: k.prefix.lateCharged, digest: k.prefix.digest }); }
}
c.quiesce();
let prevD = 0;
for (const p of seen) {
  const D = p.level - levelOfAllData(c, "hot", p.tau) - p.forgiven;
  if (Math.abs(D - prevD) > 0.5) console.log(p.t, p.tau, "D", D.toFixed(2), "level", p.level.toFixed(2), "forgiven", p.forgiven, "late", p.late);
  prevD = D;
}
