// docker-compose.yml, checked without a Docker engine: every replica mounts a config the loader
// accepts (with that service's environment) where the image's CMD reads it, keeps its data in a
// volume where the image declares it, has a node name of its own, publishes the ports its config
// listens on, and can find the others by the DNS name its config asks for.

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { loadConfigFile } from "../../src/config/load.ts";
import { readDockerfile } from "../support/dockerfile.ts";
import { REPO_ROOT } from "../support/process.ts";

interface ComposeService {
  readonly build?: unknown;
  readonly image?: string;
  readonly environment?: Record<string, string>;
  readonly ports?: string[];
  readonly volumes?: string[];
  readonly networks?: Record<string, { aliases?: string[] } | null>;
}

interface ComposeFile {
  readonly services: Record<string, ComposeService>;
  readonly volumes?: Record<string, unknown>;
}

const compose = parseYaml(readFileSync(join(REPO_ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as ComposeFile;
const services = Object.entries(compose.services);
const runtime = readDockerfile().stages.at(-1);
const imageConfig = runtime?.cmd?.at(-1) ?? "";
const port = (address: string | null): number => Number(address?.slice(address.lastIndexOf(":") + 1));

describe("docker-compose.yml", () => {
  it("runs three replicas of the image built from this repo, each with a node name of its own", () => {
    expect(services).toHaveLength(3);
    for (const [, s] of services) expect(s.build).toBe(".");
    const nodes = services.map(([, s]) => s.environment?.TOKENMESH_NODE);
    expect(new Set(nodes).size).toBe(3);
  });

  it.each(services)("%s mounts a config tokenmesh accepts where the image reads it, and a data volume", async (name, s) => {
    const mount = s.volumes?.find((v) => v.split(":")[1] === imageConfig);
    expect(mount).toBeDefined();
    const [file, , mode] = (mount as string).split(":");
    expect(mode).toBe("ro");
    expect(existsSync(join(REPO_ROOT, file as string))).toBe(true);
    const config = await loadConfigFile(join(REPO_ROOT, file as string), { ...s.environment });
    expect(config.mesh?.node).toBe(name);

    const data = s.volumes?.find((v) => v.split(":")[1] === "/var/lib/tokenmesh")?.split(":")[0];
    expect(runtime?.volumes).toContain("/var/lib/tokenmesh");
    expect(Object.keys(compose.volumes ?? {})).toContain(data);

    // Published ports land on the ports the config listens on.
    const inside = (s.ports ?? []).map((p) => Number(p.split(":")[1]));
    expect(inside).toEqual([port(config.listen), port(config.metricsListen), port(config.httpListen)]);

    // The DNS name the mesh resolves is an alias every replica holds on a shared network.
    const dns = config.mesh?.dns;
    expect(dns?.port).toBe(port(config.mesh?.peerListen ?? ""));
    for (const [, other] of services) {
      const aliases = Object.values(other.networks ?? {}).flatMap((n) => n?.aliases ?? []);
      expect(aliases).toContain(dns?.name);
    }
  });
});
