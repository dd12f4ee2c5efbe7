// The handshake's rules, table-driven: version negotiation (a rolling upgrade across one version
// connects; two versions apart is refused), cluster, identity format, self and duplicate names,
// and the certificate's common name.

import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { HelloSchema } from "../../src/gen/tokenmesh/v1/peer_pb.ts";
import { checkHello, type LocalIdentity } from "../../src/mesh/handshake.ts";

const INC_A = "0660e96f10d5b45e75258949e88b4509";
const INC_B = "0660e96f10729302ca2b4ffb0961444a";
const local: LocalIdentity = { cluster: "prod", region: "eu", node: "a", incarnation: INC_A, versions: { min: 1, max: 1 } };
const hello = (over: Partial<Record<string, unknown>> = {}) =>
  create(HelloSchema, {
    minProtocolVersion: 1,
    maxProtocolVersion: 1,
    cluster: "prod",
    region: "us",
    node: "b",
    incarnation: INC_B,
    ...over,
  });

describe("checkHello", () => {
  it("accepts a well-formed peer and agrees on the highest common version", () => {
    expect(checkHello(hello(), local, undefined)).toEqual({ ok: true, value: { node: "b", region: "us", incarnation: INC_B, version: 1 } });
    const upgraded = { ...local, versions: { min: 1, max: 2 } };
    // New build (1..2) meets old build (1..1): they speak 1. Two new builds speak 2.
    expect(checkHello(hello(), upgraded, undefined)).toMatchObject({ ok: true, value: { version: 1 } });
    expect(checkHello(hello({ maxProtocolVersion: 2 }), upgraded, undefined)).toMatchObject({ ok: true, value: { version: 2 } });
  });

  it.each([
    {
      name: "two versions apart",
      over: { minProtocolVersion: 3, maxProtocolVersion: 3 },
      code: "FAILED_PRECONDITION",
      message: /^hello\.protocol_version: peer speaks 3\.\.3, this replica 1\.\.1/,
    },
    {
      name: "inverted range",
      over: { minProtocolVersion: 2, maxProtocolVersion: 1 },
      code: "FAILED_PRECONDITION",
      message: /^hello\.protocol_version/,
    },
    {
      name: "other cluster",
      over: { cluster: "staging" },
      code: "PERMISSION_DENIED",
      message: /^hello\.cluster: peer is in cluster "staging", this replica in "prod"$/,
    },
    { name: "bad node name", over: { node: "b c" }, code: "INVALID_ARGUMENT", message: /^hello\.node: must be 1-128/ },
    { name: "empty region", over: { region: "" }, code: "INVALID_ARGUMENT", message: /^hello\.region/ },
    {
      name: "bad incarnation",
      over: { incarnation: "xyz" },
      code: "INVALID_ARGUMENT",
      message: /^hello\.incarnation: must be 32 hex digits$/,
    },
    { name: "another process with our name", over: { node: "a" }, code: "FAILED_PRECONDITION", message: /node names must be unique/ },
  ])("refuses $name", ({ over, code, message }) => {
    const r = checkHello(hello(over), local, undefined);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe(code);
      expect(r.error.message).toMatch(message);
    }
  });

  it("recognises its own address and marks it so the link stops", () => {
    expect(checkHello(hello({ node: "a", incarnation: INC_A }), local, undefined)).toMatchObject({ ok: false, error: { self: true } });
  });

  it("requires the node name to match the TLS certificate", () => {
    expect(checkHello(hello(), local, "b").ok).toBe(true);
    expect(checkHello(hello(), local, "mallory")).toMatchObject({
      ok: false,
      error: { code: "PERMISSION_DENIED", message: 'hello.node: "b" does not match the peer certificate\'s common name "mallory"' },
    });
  });
});
