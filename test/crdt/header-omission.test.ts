// Key parts without their header (KeyDelta.header_omitted, src/core/crdt/header-omission.ts),
// driven by hand on two real replicas through the real codec: the sender leaves the header out
// only once the peer acknowledged it and only on a stream that negotiated it; the receiver joins
// such a part into a key that holds the sender's header and asks for any other key whole; a
// part that claims to have no header yet carries one, or carries nothing, is refused whole.

import { describe, expect, it } from "vitest";
import { type Delta, type KeyPartDelta, type KeyState, keyText, type UntrustedDelta } from "../../src/core/crdt/index.ts";
import { versionViolation } from "../../src/mesh/handshake.ts";
import { viaWire } from "../support/via-wire.ts";
import { config, Mesh } from "./mesh.ts";

const CFG = config();

const entriesOnly = (d: Delta | undefined): boolean[] => (d?.keys ?? []).map((k: KeyPartDelta) => k.headerOmitted === true);

/** Whether a and b hold the same state of `key` (canonical text). */
function same(m: Mesh, key: string): boolean {
  const text = (n: string): string => keyText(m.get(n).keyState(key) as KeyState);
  return m.get("b").holdsKey(key) && text("a") === text("b");
}

/** a writes k once and b acknowledges it: b holds a's header of k. */
function acknowledged(omit: boolean): Mesh {
  const m = new Mesh(["a", "b"]);
  m.round(1_000);
  m.get("a").omitHeadersTo("b", omit, m.now);
  m.get("a").consume("k", CFG, 1, m.now);
  m.now += 5_000;
  const first = m.delta("a", "b");
  expect(entriesOnly(first)).toEqual([false]);
  expect(m.deliver(first, "b")).toBe(true);
  return m;
}

describe("key parts without their header", () => {
  it("go once the peer acknowledged the header, and join to the sender's state", () => {
    const m = acknowledged(true);
    m.get("a").consume("k", CFG, 2, m.now);
    m.now += 5_000;
    const next = m.delta("a", "b");
    expect(entriesOnly(next)).toEqual([true]);
    expect(m.deliver(next, "b")).toBe(true);
    expect(same(m, "k")).toBe(true);
  });

  it("never go on a stream that did not negotiate them (an old peer)", () => {
    const m = acknowledged(false);
    for (let i = 0; i < 3; i++) {
      m.get("a").consume("k", CFG, 1, m.now);
      m.now += 5_000;
      const d = m.delta("a", "b");
      expect(entriesOnly(d)).toEqual([false]);
      expect(m.deliver(d, "b")).toBe(true);
    }
  });

  it("a receiver that dropped the key asks for it whole, and gets it whole", () => {
    const m = acknowledged(true);
    m.get("b").dropKey("k", m.now);
    m.get("a").consume("k", CFG, 1, m.now);
    m.now += 5_000;
    const d = m.delta("a", "b") as Delta;
    expect(entriesOnly(d)).toEqual([true]);
    const res = m.get("b").applyDelta(viaWire(d), m.now);
    expect(res.ok && res.value.missing).toEqual(["k"]);
    // Nothing of the key was made from a part without its limit.
    expect(m.get("b").holdsKey("k")).toBe(false);
    if (res.ok) m.get("a").applyAck(res.value, m.now);
    m.now += 5_000;
    const again = m.delta("a", "b");
    expect(entriesOnly(again)).toEqual([false]);
    expect(m.deliver(again, "b")).toBe(true);
    expect(same(m, "k")).toBe(true);
  });

  it("a receiver that started the key again on its own asks for it whole", () => {
    const m = acknowledged(true);
    const b = m.get("b");
    b.dropKey("k", m.now);
    b.consume("k", CFG, 1, m.now); // a new record: it holds no header from a
    m.get("a").consume("k", CFG, 1, m.now);
    m.now += 5_000;
    const res = b.applyDelta(viaWire(m.delta("a", "b") as Delta), m.now);
    expect(res.ok && res.value.missing).toEqual(["k"]);
  });

  it("refuses, whole, a part marked header_omitted that carries a header or no entries", () => {
    const m = acknowledged(true);
    m.get("a").consume("k", CFG, 1, m.now);
    m.get("a").consume("j", CFG, 1, m.now);
    m.now += 5_000;
    const d = viaWire(m.delta("a", "b") as Delta);
    const b = m.get("b");
    const before = b.canonical();
    const whole = d.keys.find((k) => k.headerOmitted !== true);
    const bare = d.keys.find((k) => k.headerOmitted === true);
    expect(whole && bare).toBeTruthy();
    const cases: [UntrustedDelta, string][] = [
      [{ ...d, keys: d.keys.map((k) => (k === whole ? { ...k, headerOmitted: true } : k)) }, "headerOmitted"],
      [{ ...d, keys: d.keys.map((k) => (k === bare ? { ...k, entries: [] } : k)) }, "entries"],
    ];
    for (const [bad, field] of cases) {
      const res = b.applyDelta(bad, m.now);
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.error.field).toMatch(new RegExp(`^keys\\[\\d\\]\\.${field}$`));
      expect(b.canonical()).toBe(before);
    }
  });

  it("a protocol 1 stream refuses them; protocol 2 takes them", () => {
    expect(versionViolation([{ headerOmitted: false }, { headerOmitted: true }], 1)).toMatch(/^keys\[1\]\.header_omitted: .*protocol 1/);
    expect(versionViolation([{ headerOmitted: false }], 1)).toBeUndefined();
    expect(versionViolation([{ headerOmitted: true }], 2)).toBeUndefined();
  });
});
