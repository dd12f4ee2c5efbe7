// A mesh replica's snapshot through the real codec and core: what a restarted process loads
// answers like the state that was written, increments join with their base in any order, an
// old snapshot never raises a level a replica already knows lower, the writing incarnation is
// retired on load, and a whole cluster restarted from its snapshots converges on what it had.

import { describe, expect, it } from "vitest";
import type { Replica } from "../../src/core/crdt/index.ts";
import { importState, validateDelta } from "../../src/core/crdt/index.ts";
import { decodeDelta, findDelta } from "../../src/mesh/delta-wire.ts";
import { loadReplicaSnapshot, replicaSnapshotSource } from "../../src/snapshot/replica-snapshot.ts";
import type { LoadedFile } from "../../src/snapshot/snapshot-directory.ts";
import { config, Mesh } from "../crdt/mesh.ts";

const CFG = config(10, 10); // C = 10, r = 10/s
const KEYS = Array.from({ length: 300 }, (_, i) => `k${i}`);

function snapshot(r: Replica, now: number, from = 0, sequence = 0): { file: LoadedFile; to: number } {
  const e = replicaSnapshotSource(r).begin(from, now);
  const chunks = [...e.chunks];
  const header = {
    kind: "mesh" as const,
    role: sequence === 0 ? ("base" as const) : ("increment" as const),
    generation: "g",
    sequence,
    node: r.node,
    cluster: "test",
    writer: e.writer,
    writtenAtUs: now,
    items: e.items,
  };
  return { file: { name: sequence === 0 ? "base.tms" : `increment-${sequence}.tms`, header, chunks, bytes: 0 }, to: e.to };
}

const levels = (r: Replica, keys: readonly string[], now: number): number[] => keys.map((k) => r.level(k, CFG, now).level);

describe("mesh replica snapshots", () => {
  it("a restarted process answers like the state it wrote, and retires the writer", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    for (const [i, k] of KEYS.entries()) m.get("a").consume(k, CFG, 1 + (i % 9), m.now);
    m.round(20_000);
    const written = levels(m.get("a"), KEYS, m.now);
    const { file } = snapshot(m.get("a"), m.now);
    expect(file.chunks.length).toBeGreaterThan(0);
    const oldInc = m.get("a").incarnation;
    const restarted = m.boot("a"); // a new process: new incarnation, empty state
    expect(restarted.incarnation).not.toBe(oldInc);
    const load = loadReplicaSnapshot(restarted, [file], m.now);
    expect(load.refused).toBeUndefined();
    expect(load.retired).toBe(1);
    expect(restarted.incarnationRecord(oldInc)?.retired).toBeGreaterThanOrEqual(0);
    expect(levels(restarted, KEYS, m.now)).toEqual(written);
    // Later, the same refill on both sides.
    expect(levels(restarted, KEYS, m.now + 300_000)).toEqual(levels(m.get("b"), KEYS, m.now + 300_000));
  });

  it("an increment joins its base in either order", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    for (const k of KEYS.slice(0, 100)) m.get("a").consume(k, CFG, 3, m.now);
    m.round(20_000);
    const base = snapshot(m.get("a"), m.now);
    for (const k of KEYS.slice(50, 200)) m.get("a").consume(k, CFG, 4, m.now);
    m.round(20_000);
    const inc = snapshot(m.get("a"), m.now, base.to, 1);
    expect(inc.file.header.items).toBeLessThan(KEYS.length);
    const want = levels(m.get("a"), KEYS, m.now);
    const forward = m.boot("x");
    loadReplicaSnapshot(forward, [base.file, inc.file], m.now);
    expect(levels(forward, KEYS, m.now)).toEqual(want);
    // Reversed, straight through the core (the loader keeps file order).
    const backward = m.boot("y");
    for (const f of [inc.file, base.file]) {
      for (const bytes of f.chunks) {
        const at = findDelta(bytes);
        if (at === undefined) throw new Error("no delta");
        const parsed = validateDelta({ ...decodeDelta(bytes, at.start, at.end), node: "a" }, backward.limits);
        if (!parsed.ok) throw new Error(parsed.error.message);
        importState(backward, parsed.value, m.now);
      }
    }
    expect(levels(backward, KEYS, m.now)).toEqual(want);
  });

  it("an old snapshot never raises a level that a replica knows lower", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    for (const k of KEYS) m.get("a").consume(k, CFG, 2, m.now);
    m.round(5_000);
    const old = snapshot(m.get("a"), m.now);
    for (const k of KEYS) m.get("a").consume(k, CFG, 6, m.now);
    m.round(5_000);
    const b = m.get("b");
    const known = levels(b, KEYS, m.now);
    expect(Math.max(...known)).toBeLessThan(CFG.rate.capacityUnits);
    loadReplicaSnapshot(b, [old.file], m.now);
    expect(levels(b, KEYS, m.now)).toEqual(known);
  });

  it("a whole cluster restarted from its snapshots keeps what it had consumed", () => {
    const m = new Mesh(["a", "b", "c"]);
    m.round(1_000);
    for (const [i, k] of KEYS.entries()) m.get(["a", "b", "c"][i % 3] as string).consume(k, CFG, 5, m.now);
    m.round(5_000);
    for (const [i, k] of KEYS.entries()) m.get(["a", "b", "c"][(i + 1) % 3] as string).consume(k, CFG, 4, m.now);
    m.round(5_000);
    const want = levels(m.get("a"), KEYS, m.now);
    expect(Math.max(...want)).toBeLessThan(CFG.rate.capacityUnits / 2);
    const files = new Map(["a", "b", "c"].map((n) => [n, snapshot(m.get(n), m.now).file]));
    for (const n of ["a", "b", "c"]) loadReplicaSnapshot(m.boot(n), [files.get(n) as LoadedFile], m.now);
    m.round(5_000);
    m.round(5_000);
    const later = m.now;
    for (const n of ["a", "b", "c"]) {
      // Nothing was forgotten: the level is at most what it was plus the refill since.
      const now = levels(m.get(n), KEYS, later);
      for (let i = 0; i < KEYS.length; i++) {
        expect(now[i]).toBeLessThanOrEqual(Math.min(CFG.rate.capacityUnits, (want[i] as number) + (CFG.rate.unitsPerMicro * 10_000 + 1)));
      }
    }
    expect(m.get("a").canonical()).toBe(m.get("b").canonical());
  });

  it("refuses a file whose delta does not validate, and joins nothing of it", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    for (const k of KEYS) m.get("a").consume(k, CFG, 2, m.now);
    const { file } = snapshot(m.get("a"), m.now);
    const bad = { ...file, chunks: [...file.chunks.slice(0, 1), new Uint8Array([0x12, 0x04, 0x0a, 0x02, 0x6e, 0x6f])] };
    const fresh = m.boot("z");
    const load = loadReplicaSnapshot(fresh, [bad], m.now);
    expect(load.refused?.file).toBe("base.tms");
    expect(load.refused?.reason).toMatch(/^chunk 1: delta\.incarnation: must be a 32-hex-digit incarnation id$/);
    expect(fresh.keyCount).toBe(0);
  });

  it("watermark rises alone are skippable; the next increment that counts carries them", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    m.get("a").consume("k", CFG, 3, m.now);
    for (let i = 0; i < 100; i++) m.round(20_000); // 2 s: k refilled, folded and collected
    const a = m.get("a");
    const source = replicaSnapshotSource(a);
    const from = source.position();
    for (let i = 0; i < 100; i++) m.round(5_000); // idle: both raise their watermarks
    expect(source.position()).toBeGreaterThan(from);
    expect(source.skippable?.(from)).toBe(true);
    const wmB = m.get("b").incarnationRecord(m.get("b").incarnation)?.wm ?? 0;
    a.consume("k2", CFG, 1, m.now); // a change that counts
    expect(source.skippable?.(from)).toBe(false);
    // The increment from the unmoved `from` holds the key and every watermark as of now.
    const { file } = snapshot(a, m.now, from, 1);
    const deltas = file.chunks.map((bytes) => {
      const at = findDelta(bytes);
      if (at === undefined) throw new Error("no delta");
      return decodeDelta(bytes, at.start, at.end);
    });
    expect(deltas.flatMap((d) => d.keys.map((k) => k.key))).toContain("k2");
    const records = deltas.flatMap((d) => d.records.map(([ix, wm]) => ({ id: d.incarnations[ix as number], wm })));
    expect(records.find((r) => r.id === m.get("b").incarnation)?.wm).toBe(wmB);
  });
});
