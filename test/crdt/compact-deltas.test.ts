// Compact deltas: a key part whose header (config, prefix, K, horizon) did not change since the
// interval start travels as entries only; a resend from an older start carries the header
// again; a receiver that does not hold the key applies nothing of it and asks for it whole.

import { describe, expect, it } from "vitest";
import type { Delta, WireKey } from "../../src/core/crdt/index.ts";
import { config, Mesh } from "./mesh.ts";

const KEY = "api\u0000k";

function part(d: Delta | undefined, key = KEY): WireKey {
  const k = d?.keys.find((x) => x.key === key);
  if (k === undefined) throw new Error(`no part for ${key}`);
  return k;
}

/** Two replicas that both hold KEY (a debited it, b received it whole and acknowledged). */
function synced(): Mesh {
  const m = new Mesh(["a", "b"], { relay: false });
  m.round(1_000);
  const cfg = config();
  expect(m.get("a").consume(KEY, cfg, 1, m.now).allowed).toBe(true);
  const first = m.delta("a", "b");
  expect(part(first).headerOmitted).not.toBe(true);
  expect(part(first).prefix).toBeDefined();
  expect(m.deliver(first, "b")).toBe(true);
  expect(m.get("b").keyCount).toBe(1);
  return m;
}

describe("compact deltas", () => {
  it("sends entries only when only entries changed since `from`", () => {
    const m = synced();
    m.now += 10;
    expect(m.get("a").consume(KEY, config(), 1, m.now).allowed).toBe(true);
    const d = m.delta("a", "b");
    const k = part(d);
    expect(k.headerOmitted).toBe(true);
    expect(k.config).toBeUndefined();
    expect(k.prefix).toBeUndefined();
    expect(k.K).toBeUndefined();
    expect(k.entries.length).toBeGreaterThan(0);
    expect(m.deliver(d, "b")).toBe(true);
    // b joined the entries under its own header: both answer the same.
    expect(m.get("b").canonical()).toBe(m.get("a").canonical());
  });

  it("includes the header again on a resend from an older `from`", () => {
    const m = new Mesh(["a", "b"], { relay: false });
    m.round(1_000);
    const cfg = config();
    m.get("a").consume(KEY, cfg, 1, m.now);
    const lost = m.delta("a", "b"); // whole, never delivered
    expect(part(lost).prefix).toBeDefined();
    m.now += 10;
    m.get("a").consume(KEY, cfg, 1, m.now);
    // Continues from what was sent: the header went in the lost delta, so entries only.
    expect(part(m.delta("a", "b")).headerOmitted).toBe(true);
    // No ack: after the resend timeout the next delta restarts from the last ack (below the
    // header change) and carries the header again.
    m.now += 600_000;
    m.get("a").consume(KEY, cfg, 1, m.now);
    const resend = m.delta("a", "b");
    expect(resend?.from).toBe(lost?.from);
    const k = part(resend);
    expect(k.headerOmitted).not.toBe(true);
    expect(k.prefix).toBeDefined();
    expect(k.config).toBeDefined();
    expect(m.deliver(resend, "b")).toBe(true);
    expect(m.get("b").keyCount).toBe(1);
  });

  it("a receiver without the key applies nothing of a header-less part, asks for it whole, then converges", () => {
    const m = synced();
    // b forgets the key (an eviction at the edge); a does not know.
    m.get("b").dropKey(KEY, m.now);
    expect(m.get("b").keyCount).toBe(0);
    m.now += 10;
    m.get("a").consume(KEY, config(), 1, m.now);
    const d = m.delta("a", "b");
    expect(part(d).headerOmitted).toBe(true);
    const res = m.get("b").applyDelta(d, m.now);
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    // Not applied (no header to join under), and asked for whole.
    expect(m.get("b").keyCount).toBe(0);
    expect(res.ack.missing).toContain(KEY);
    m.get("a").applyAck(res.ack, m.now);
    const whole = m.delta("a", "b");
    const k = part(whole);
    expect(k.headerOmitted).not.toBe(true);
    expect(k.prefix).toBeDefined();
    expect(k.partial).toBe(false);
    expect(m.deliver(whole, "b")).toBe(true);
    expect(m.get("b").keyCount).toBe(1);
    // Converged: same state everywhere, no further asks.
    for (let i = 0; i < 5; i++) m.round(5_000);
    expect(m.get("b").canonical()).toBe(m.get("a").canonical());
  });

  it("keeps asking in later acks when the ask is lost", () => {
    const m = synced();
    m.get("b").dropKey(KEY, m.now);
    m.now += 10;
    m.get("a").consume(KEY, config(), 1, m.now);
    const res = m.get("b").applyDelta(m.delta("a", "b"), m.now);
    expect(res.ok && res.ack.missing).toContain(KEY); // this ack is lost
    m.now += 10;
    m.get("a").consume("api\u0000other", config(), 1, m.now);
    const next = m.get("b").applyDelta(m.delta("a", "b"), m.now);
    expect(next.ok).toBe(true);
    if (!next.ok) return;
    expect(next.ack.missing).toContain(KEY);
    m.get("a").applyAck(next.ack, m.now);
    expect(m.deliver(m.delta("a", "b"), "b")).toBe(true);
    for (let i = 0; i < 5; i++) m.round(5_000);
    expect(m.get("b").canonical()).toBe(m.get("a").canonical());
  });
});
