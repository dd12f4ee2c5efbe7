// TOKENMESH_NODE names the replica (mesh.node) from the environment, so one config file serves
// every pod of a StatefulSet (deploy/kubernetes passes the pod's name) or service of a compose file.

import { describe, expect, it } from "vitest";
import { ConfigError, resolveConfig } from "../../src/config/load.ts";

const policies = { api: { capacity: 10, refill: 1, per: "1s" } };
const mesh = { peerListen: "0.0.0.0:7051", insecure: true };

function problems(raw: unknown, env: NodeJS.ProcessEnv): readonly string[] {
  try {
    resolveConfig(raw, "test.yaml", env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("TOKENMESH_NODE", () => {
  it("supplies mesh.node when the file leaves it out", () => {
    const config = resolveConfig({ policies, mesh }, "test.yaml", { TOKENMESH_NODE: "tokenmesh-2" });
    expect(config.mesh?.node).toBe("tokenmesh-2");
  });

  it("overrides the file's mesh.node", () => {
    const config = resolveConfig({ policies, mesh: { ...mesh, node: "from-file" } }, "test.yaml", { TOKENMESH_NODE: "tokenmesh-0" });
    expect(config.mesh?.node).toBe("tokenmesh-0");
  });

  it("is validated like the field itself", () => {
    expect(problems({ policies, mesh }, { TOKENMESH_NODE: "not a name!" })).toEqual([
      "mesh.node: node names are 1-128 of A-Z a-z 0-9 . _ -",
    ]);
  });

  it("without it, a mesh config must name its node", () => {
    expect(problems({ policies, mesh }, {})).toEqual([expect.stringMatching(/^mesh\.node: /)]);
  });

  it("is refused for a standalone config, which has no node", () => {
    expect(problems({ policies }, { TOKENMESH_NODE: "tokenmesh-0" })).toEqual([
      "TOKENMESH_NODE: set, but the config has no mesh section (only a mesh replica has a node name)",
    ]);
  });
});
