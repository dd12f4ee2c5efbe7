// A standalone replica honours `effectiveAt` on a live reload: the old limit holds before it, the
// new one from it on, and at it the level becomes min(level, C_new). Over a real server with an
// injected clock, every decision is compared with an ideal bucket (test/support/gcra.ts) that
// switches at the effective time, and every answer must report the limit it enforced.

import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Channel, createChannel, createClient } from "nice-grpc";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfigFile } from "../../src/config/load.ts";
import type { ConfigReloader } from "../../src/server/config-reload.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { GcraReference } from "../support/gcra.ts";
import { type RateLimiterClient, rateLimiterDefinition, START_US } from "../support/server.ts";

interface Limit {
  readonly capacity: number;
  readonly refill: number;
  /** Refill period in milliseconds. */
  readonly perMs: number;
}

const header = 'listen: "127.0.0.1:0"\nmetricsListen: null\nhttpListen: null\ndataDir: null\nlogLevel: silent\npolicies:\n';
const iso = (us: number): string => new Date(us / 1000).toISOString();
const policyLine = (l: Limit, version: number, effectiveAtUs?: number): string =>
  `  api: { capacity: ${l.capacity}, refill: ${l.refill}, per: ${l.perMs}ms, version: ${version}${
    effectiveAtUs === undefined ? "" : `, effectiveAt: "${iso(effectiveAtUs)}"`
  } }\n`;

/** The ideal bucket: one GCRA per limit, handing its level over at each switch. */
class SwitchingIdeal {
  limit: Limit;
  #ref: GcraReference;

  constructor(limit: Limit) {
    this.limit = limit;
    this.#ref = new GcraReference(limit.capacity, limit.refill, limit.perMs * 1000);
  }

  /** Switches at `tUs` to `next`, the level becoming min(level, C_new). */
  switchTo(next: Limit, tUs: number): void {
    const [num, den] = this.#ref.level(tUs);
    // The test keeps every event before a switch on the old limit's emission grid, so the level
    // there is whole tokens and the hand-over is exact in any units.
    expect(num % den, "level at the switch is whole tokens").toBe(0n);
    const level = num / den < BigInt(next.capacity) ? num / den : BigInt(next.capacity);
    this.#ref = GcraReference.holding(next.capacity, next.refill, next.perMs * 1000, tUs, level);
    this.limit = next;
  }

  consume(tUs: number): boolean {
    return this.#ref.consume(tUs, 1);
  }

  remaining(tUs: number): number {
    return this.#ref.remaining(tUs);
  }
}

let server: RunningServer | undefined;
let channel: Channel | undefined;
afterEach(async () => {
  channel?.close();
  await server?.shutdown();
  server = undefined;
  channel = undefined;
});

interface Harness {
  readonly client: RateLimiterClient;
  readonly reloader: ConfigReloader;
  readonly file: string;
  readonly clock: { now: number };
}

async function start(first: Limit): Promise<Harness> {
  const file = join(mkdtempSync(join(tmpdir(), "tokenmesh-effective-")), "tokenmesh.yaml");
  writeFileSync(file, header + policyLine(first, 1));
  const clock = { now: START_US };
  server = await startServer({
    config: await loadConfigFile(file),
    log: pino({ level: "silent" }),
    configPath: file,
    clock: () => clock.now,
  });
  if (server.reloader === undefined) throw new Error("no reloader");
  // The test reloads at chosen clock times; the file watch would add reloads of its own (which
  // a `reload` call made while one runs would share, answering before the new file was read).
  server.reloader.close();
  channel = createChannel(`127.0.0.1:${server.port}`);
  return { client: createClient(rateLimiterDefinition, channel), reloader: server.reloader, file, clock };
}

async function reload(h: Harness, line: string): Promise<void> {
  writeFileSync(h.file, header + line);
  expect(await h.reloader.reload("test")).toMatchObject({ ok: true });
}

const PER_STEP = 3;

/**
 * From the clock's time up to (not including) `untilUs`, in steps of `stepUs`: a Query (capacity
 * and remaining as the ideal bucket has them) then PER_STEP decisions of cost 1, each compared with
 * the ideal. `switches` are applied to the ideal at their time (each on a step). Returns how many
 * were admitted.
 */
async function drive(
  h: Harness,
  ideal: SwitchingIdeal,
  untilUs: number,
  stepUs: number,
  switches: readonly { atUs: number; to: Limit }[] = [],
): Promise<number> {
  let admitted = 0;
  for (; h.clock.now < untilUs; h.clock.now += stepUs) {
    const t = h.clock.now;
    for (const s of switches) if (s.atUs === t) ideal.switchTo(s.to, t);
    const q = await h.client.query({ decisions: [{ buckets: [{ policy: "api", key: "k" }] }] });
    const status = q.results[0]?.buckets[0];
    expect({ t: t - START_US, capacity: status?.capacity, remaining: status?.remaining }).toEqual({
      t: t - START_US,
      capacity: BigInt(ideal.limit.capacity),
      remaining: BigInt(ideal.remaining(t)),
    });
    const decisions = Array.from({ length: PER_STEP }, () => ({ buckets: [{ policy: "api", key: "k", cost: 1 }] }));
    const res = await h.client.consume({ decisions });
    const got = res.results.map((r) => r.allowed);
    const want = decisions.map(() => ideal.consume(t));
    expect({ t: t - START_US, allowed: got }).toEqual({ t: t - START_US, allowed: want });
    for (const r of res.results) expect(r.buckets[0]?.capacity).toBe(BigInt(ideal.limit.capacity));
    admitted += got.filter(Boolean).length;
  }
  return admitted;
}

const SECOND = 1_000_000;

describe("standalone replica: effectiveAt on a live reload", () => {
  it("keeps the old limit until effectiveAt, then switches with min(level, C_new)", async () => {
    const oldLimit: Limit = { capacity: 10, refill: 10, perMs: 1000 }; // one token per 100 ms
    const newLimit: Limit = { capacity: 4, refill: 40, perMs: 1000 }; // one per 25 ms, smaller burst
    const h = await start(oldLimit);
    const ideal = new SwitchingIdeal(oldLimit);
    const effectiveUs = START_US + 2.5 * SECOND;
    await reload(h, policyLine(newLimit, 2, effectiveUs));
    // Before: steps on the old emission grid (100 ms).
    const before = await drive(h, ideal, effectiveUs, 100_000);
    expect(before).toBe(3 * 4 + 2 + 20); // the burst of 10 spent by 400 ms, then one per step
    // From the effective time: the new limit, at steps off any grid.
    const after = await drive(h, ideal, START_US + 4 * SECOND, 13_000, [{ atUs: effectiveUs, to: newLimit }]);
    // 13 ms steps at 40/s: the refill (0.52 per step) and not the old 10/s bounds it.
    expect(after).toBeGreaterThan(50);
  });

  it("a bucket not read at the effective time still switches at it, not at its next read", async () => {
    const oldLimit: Limit = { capacity: 10, refill: 10, perMs: 1000 };
    const newLimit: Limit = { capacity: 4, refill: 40, perMs: 1000 };
    const h = await start(oldLimit);
    const effectiveUs = START_US + SECOND;
    await reload(h, policyLine(newLimit, 2, effectiveUs));
    h.clock.now = effectiveUs - 300_000;
    const drained = await h.client.consume({ decisions: [{ buckets: [{ policy: "api", key: "idle", cost: 10 }] }] });
    expect(drained.results[0]?.allowed).toBe(true);
    const ideal = new SwitchingIdeal(oldLimit);
    for (let i = 0; i < 10; i++) ideal.consume(h.clock.now);
    ideal.switchTo(newLimit, effectiveUs);
    // 3 tokens at the switch, then 40/s: 5.4, capped at 4. Switched at this read instead, the old
    // 10/s would have refilled 3.6 by now (3 whole tokens).
    h.clock.now = effectiveUs + 60_000;
    const q = await h.client.query({ decisions: [{ buckets: [{ policy: "api", key: "idle" }] }] });
    expect(ideal.remaining(h.clock.now)).toBe(4);
    expect(q.results[0]?.buckets[0]?.remaining).toBe(4n);
  });

  it("a second reload before the effective time replaces the pending change; a past effectiveAt switches at once", async () => {
    const v1: Limit = { capacity: 10, refill: 10, perMs: 1000 };
    const v2: Limit = { capacity: 4, refill: 40, perMs: 1000 };
    const v3: Limit = { capacity: 20, refill: 5, perMs: 1000 }; // one token per 200 ms
    const v4: Limit = { capacity: 6, refill: 50, perMs: 1000 };
    const h = await start(v1);
    const ideal = new SwitchingIdeal(v1);
    await reload(h, policyLine(v2, 2, START_US + 2 * SECOND));
    await drive(h, ideal, START_US + 1 * SECOND, 100_000);
    // Pending v2 replaced by v3, effective later: v1 still holds through v2's effective time.
    const v3AtUs = START_US + 3 * SECOND;
    await reload(h, policyLine(v3, 3, v3AtUs));
    await drive(h, ideal, v3AtUs, 100_000);
    // v3 from its time, on its own emission grid (200 ms) so the next hand-over is exact too.
    await drive(h, ideal, START_US + 4 * SECOND, 200_000, [{ atUs: v3AtUs, to: v3 }]);
    // effectiveAt already past: the switch is the reload's own time.
    const reloadUs = h.clock.now;
    await reload(h, policyLine(v4, 4, START_US + 1 * SECOND));
    await drive(h, ideal, START_US + 5 * SECOND, 11_000, [{ atUs: reloadUs, to: v4 }]);
  });
});
