// The config fields of durable state and overload protection: defaults, the environment
// override, and the errors for values out of bounds (named by their path).

import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../src/config/load.ts";

const base = { policies: { api: { capacity: 1, refill: 1, per: "1s" } } };
const mesh = { node: "eu-1", peerListen: "127.0.0.1:7051", insecure: true };

describe("config: dataDir, snapshotInterval and the overload limits", () => {
  it("defaults to ./data/<node>, every second, with the overload bounds", () => {
    const c = resolveConfig({ ...base, mesh }, "t");
    expect(c.dataDir).toBe("./data/eu-1");
    expect(c.snapshotIntervalMs).toBe(1_000);
    expect(c.limits).toMatchObject({
      maxConcurrentStreams: 1_000,
      maxConnections: 10_000,
      maxConnectionsPerClient: 1_000,
      shedEventLoopLagMs: 500,
    });
    expect(c.mesh).toMatchObject({ helloTimeoutMs: 2_000, maxConnections: 256 });
  });

  it("turns persistence and shedding off with null, and TOKENMESH_DATA_DIR=off", () => {
    expect(resolveConfig({ ...base, dataDir: null, limits: { shedEventLoopLag: null } }, "t")).toMatchObject({
      dataDir: null,
      limits: { shedEventLoopLagMs: null },
    });
    expect(resolveConfig({ ...base, dataDir: "/var/lib/tokenmesh" }, "t", { TOKENMESH_DATA_DIR: "off" }).dataDir).toBeNull();
    expect(resolveConfig(base, "t", { TOKENMESH_DATA_DIR: "/mnt/state" }).dataDir).toBe("/mnt/state");
  });

  it.each([
    [{ snapshotInterval: "5ms" }, "snapshotInterval: must be at least 10ms"],
    [{ dataDir: "" }, "dataDir: "],
    [{ limits: { maxConcurrentStreams: 0 } }, "limits.maxConcurrentStreams: "],
    [{ mesh: { ...mesh, helloTimeout: "soon" } }, "mesh.helloTimeout: must be a positive integer with a unit"],
  ])("refuses %j naming the field", (extra, message) => {
    expect(() => resolveConfig({ ...base, ...extra }, "t")).toThrow(ConfigError);
    expect(() => resolveConfig({ ...base, ...extra }, "t")).toThrow(message);
  });
});
