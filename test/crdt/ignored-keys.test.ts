// A replica that ignores a key prefix (the edge's removed policy, "<policy>\u0000"): it drops
// what it holds under the prefix, skips peers' parts for such keys while the rest of the same
// delta joins, counts what it skipped, and joins the prefix again once it is allowed back. Peers
// that never ignored the prefix keep converging with each other, and every key outside it
// converges on all three.

import { describe, expect, it } from "vitest";
import { config, Mesh } from "./mesh.ts";

/** 10 tokens at 1 per second: consumption stays visible for the whole test (nothing refills). */
const SLOW = config(10, 1);
const GONE = "gone\u0000";
const gone = (k: string) => `${GONE}${k}`;
const kept = "kept\u0000k";
/** Shares the text "gone" but is another policy ("gone2"): the NUL ends the prefix. */
const lookalike = "gone2\u0000k";

/** The canonical text of one key's state, out of a replica's canonical text. */
const keyLine = (canonical: string, key: string) => canonical.split("\n").find((l) => l.startsWith(`${key}=`));
const level = (m: Mesh, n: string, key: string) => m.get(n).level(key, SLOW, m.now).level;

describe("ignored key prefixes (removed policies in a mesh)", () => {
  it("drops the prefix's keys only, and skips peers' parts for them while the rest of a delta joins", () => {
    const m = new Mesh(["a", "b", "c"]);
    m.round(1_000);
    const a = m.get("a");
    const b = m.get("b");
    for (const key of [gone("k1"), gone("k2"), kept, lookalike]) b.consume(key, SLOW, 2, m.now);
    m.round(5_000);
    expect(a.keyState(gone("k1"))).toBeDefined();

    const dropped = a.ignoreKeyPrefixes([GONE]);
    expect(dropped.sort()).toEqual([gone("k1"), gone("k2")]);
    expect(a.keyState(gone("k1"))).toBeUndefined();
    expect(a.keyState(kept)).toBeDefined();
    expect(a.keyState(lookalike)).toBeDefined();
    expect(a.ignoresKey(gone("x"))).toBe(true);
    expect(a.ignoresKey(lookalike)).toBe(false);

    // One delta from b carries an ignored key and a kept one: only the ignored part is skipped.
    b.consume(gone("k1"), SLOW, 3, m.now);
    b.consume(kept, SLOW, 3, m.now);
    m.now += 5_000;
    b.tick(m.now);
    const d = m.delta("b", "a");
    const sent = d?.keys.map((k) => k.key) ?? [];
    expect(sent).toContain(gone("k1"));
    expect(sent).toContain(kept);
    expect(m.deliver(d, "a")).toBe(true);
    expect(a.keyState(gone("k1"))).toBeUndefined();
    expect(a.stats.keysIgnored).toBe(sent.filter((k) => k.startsWith(GONE)).length);
    expect(level(m, "a", kept)).toBe(level(m, "b", kept));

    // Keep exchanging: b and c (which still serve the prefix) converge with each other, and
    // every key outside the prefix is the same on all three.
    for (let i = 0; i < 5; i++) m.round(5_000);
    expect(b.canonical()).toBe(m.get("c").canonical());
    for (const key of [kept, lookalike]) {
      expect(level(m, "a", key)).toBe(level(m, "b", key));
      expect(keyLine(a.canonical(), key)).toBeDefined();
      expect(keyLine(a.canonical(), key)).toBe(keyLine(b.canonical(), key));
    }
    expect(a.keyState(gone("k1"))).toBeUndefined();
    expect(a.keyState(gone("k2"))).toBeUndefined();
    expect(a.stats.keysIgnored).toBeGreaterThanOrEqual(1);
    // The registry (watermarks, retirements, horizon) still converged: the same live floor.
    expect(a.canonical().split("\n")[0]).toBe(b.canonical().split("\n")[0]);
  });

  it("joins the prefix again once allowed back: what peers kept comes back with their next delta", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    const a = m.get("a");
    const b = m.get("b");
    b.consume(gone("k"), SLOW, 4, m.now);
    m.round(5_000);
    a.ignoreKeyPrefixes([GONE]);
    b.consume(gone("k"), SLOW, 1, m.now);
    m.round(5_000);
    expect(a.keyState(gone("k"))).toBeUndefined();
    // Locally the re-added key starts full...
    expect(a.ignoreKeyPrefixes([])).toEqual([]);
    expect(level(m, "a", gone("k"))).toBe(SLOW.rate.capacityUnits);
    // ...until b, which kept the key all along, writes it again: a then learns b's whole state
    // (it asks for the tail it lacks), 4 + 1 + 1 tokens taken.
    b.consume(gone("k"), SLOW, 1, m.now);
    for (let i = 0; i < 4; i++) m.round(5_000);
    expect(level(m, "a", gone("k"))).toBe(level(m, "b", gone("k")));
    expect(a.canonical()).toBe(b.canonical());
    expect(level(m, "a", gone("k"))).toBeLessThanOrEqual(
      SLOW.rate.capacityUnits - 6 * SLOW.rate.unitsPerToken + SLOW.rate.capacityUnits / 10,
    );
  });

  it("joins the prefix again once allowed back: its own first write brings back what a peer kept", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    const a = m.get("a");
    const b = m.get("b");
    a.ignoreKeyPrefixes([GONE]);
    b.consume(gone("k"), SLOW, 10, m.now); // b drains it while a ignores the prefix
    for (let i = 0; i < 3; i++) m.round(5_000); // b folds; nothing of the key changes after that
    a.ignoreKeyPrefixes([]);
    for (let i = 0; i < 3; i++) m.round(5_000);
    // b writes nothing more (it would deny), so a still believes the key full and admits once...
    expect(level(m, "a", gone("k"))).toBe(SLOW.rate.capacityUnits);
    expect(a.consume(gone("k"), SLOW, 2, m.now).allowed).toBe(true);
    // ...and b answers that write with what a lacks: both then hold b's drain plus a's 2.
    for (let i = 0; i < 4; i++) m.round(5_000);
    expect(a.canonical()).toBe(b.canonical());
    expect(level(m, "a", gone("k"))).toBeLessThan(-SLOW.rate.unitsPerToken);
    expect(a.consume(gone("k"), SLOW, 1, m.now).allowed).toBe(false);
  });

  it("a replica that re-adds a key it wrote before continues its own running total (no double charge, no loss)", () => {
    const m = new Mesh(["a", "b"]);
    m.round(1_000);
    const a = m.get("a");
    const b = m.get("b");
    a.consume(gone("k"), SLOW, 3, m.now);
    m.round(5_000);
    a.ignoreKeyPrefixes([GONE]);
    b.ignoreKeyPrefixes([GONE]);
    expect(a.keyState(gone("k"))).toBeUndefined();
    expect(b.keyState(gone("k"))).toBeUndefined();
    a.ignoreKeyPrefixes([]);
    b.ignoreKeyPrefixes([]);
    // Both dropped it: the key starts full everywhere, and a's new write charges 2, not 5.
    a.consume(gone("k"), SLOW, 2, m.now);
    for (let i = 0; i < 3; i++) m.round(5_000);
    expect(a.canonical()).toBe(b.canonical());
    const l = level(m, "b", gone("k"));
    expect(l).toBeLessThanOrEqual(SLOW.rate.capacityUnits - 2 * SLOW.rate.unitsPerToken + SLOW.rate.capacityUnits / 10);
    expect(l).toBeGreaterThan(SLOW.rate.capacityUnits - 3 * SLOW.rate.unitsPerToken);
  });
});
