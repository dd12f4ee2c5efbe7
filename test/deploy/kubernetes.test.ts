// deploy/kubernetes, checked without a cluster: every overlay renders with `kubectl kustomize`,
// every object validates against its API schema, the config in the ConfigMap passes tokenmesh's
// own validation for every pod's node name, and the objects agree with each other and with the
// image: ports, names, the per-pod certificates (common name = node name), probes, volumes.

import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ICertificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1";
import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import type { IStatefulSet } from "kubernetes-models/apps/v1";
import type { INetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import type { IPodDisruptionBudget } from "kubernetes-models/policy/v1";
import type { IConfigMap, IService } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { type ResolvedConfig, resolveConfig } from "../../src/config/load.ts";
import { readDockerfile } from "../support/dockerfile.ts";
import { type KubeObject, kubectlProblem, only, render, schemaProblems } from "../support/kustomize.ts";
import { REPO_ROOT } from "../support/process.ts";

const KUSTOMIZE = join(REPO_ROOT, "deploy/kubernetes");
const OVERLAYS = readdirSync(join(KUSTOMIZE, "overlays"));
const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
const runtime = readDockerfile().stages.at(-1);
const imageConfig = runtime?.cmd?.at(-1) ?? "";

const port = (address: string): number => Number(address.slice(address.lastIndexOf(":") + 1));
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Expands $(VAR) references the way the kubelet does, from the variables defined before. */
function expand(value: string, vars: Record<string, string>): string {
  return value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => vars[name] ?? whole);
}

/** Each pod's node name: TOKENMESH_NODE as the kubelet would set it for pod NAME-i. */
function nodeNames(sts: IStatefulSet): string[] {
  const container = sts.spec?.template.spec?.containers[0];
  return Array.from({ length: sts.spec?.replicas ?? 1 }, (_, i) => {
    const vars: Record<string, string> = {};
    for (const e of container?.env ?? []) {
      if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") vars[e.name] = `${sts.metadata?.name}-${i}`;
      else vars[e.name] = expand(e.value ?? "", vars);
    }
    return vars.TOKENMESH_NODE ?? "";
  });
}

interface Rendered {
  readonly objects: KubeObject[];
  readonly sts: IStatefulSet;
  readonly config: (node: string) => ResolvedConfig;
  readonly nodes: string[];
}

function renderOverlay(overlay: string): Rendered {
  const objects = render(join(KUSTOMIZE, "overlays", overlay));
  const sts = only<IStatefulSet>(objects, "StatefulSet");
  const volume = sts.spec?.template.spec?.volumes?.find((v) => v.configMap !== undefined);
  const configMap = only<IConfigMap>(objects, "ConfigMap", volume?.configMap?.name);
  const text = configMap.data?.["config.yaml"] ?? "";
  return {
    objects,
    sts,
    nodes: nodeNames(sts),
    config: (node) => resolveConfig(parseYaml(text), `${overlay} ConfigMap`, { TOKENMESH_NODE: node }),
  };
}

describe("kubectl", () => {
  it("is on this machine with kustomize v4 or later (needed to render deploy/kubernetes)", () => {
    expect(kubectlProblem()).toBeUndefined();
  });
});

describe.each(OVERLAYS)("deploy/kubernetes/overlays/%s", (overlay) => {
  const get = (() => {
    let cached: Rendered | undefined;
    return () => {
      cached ??= renderOverlay(overlay);
      return cached;
    };
  })();

  it("renders objects that validate against their Kubernetes schemas", () => {
    const { objects } = get();
    expect(objects.length).toBeGreaterThan(5);
    expect(objects.flatMap(schemaProblems)).toEqual([]);
  });

  it("holds a config tokenmesh accepts for every pod, with unique node names", () => {
    const { nodes, config } = get();
    expect(new Set(nodes).size).toBe(nodes.length);
    for (const node of nodes) expect(config(node).mesh?.node).toBe(node);
  });

  it("mounts that config where the image's CMD reads it, and the data volume where the image declares it", () => {
    const { sts } = get();
    const pod = sts.spec?.template.spec;
    const mounts = pod?.containers[0]?.volumeMounts ?? [];
    const configVolume = pod?.volumes?.find((v) => v.configMap !== undefined)?.name;
    expect(mounts.find((m) => m.name === configVolume)?.mountPath).toBe(dirname(imageConfig));
    expect(imageConfig.endsWith("/config.yaml")).toBe(true);
    const data = sts.spec?.volumeClaimTemplates?.[0]?.metadata?.name;
    expect(mounts.find((m) => m.name === data)?.mountPath).toBe("/var/lib/tokenmesh");
    expect(runtime?.volumes).toContain("/var/lib/tokenmesh");
    expect(pod?.containers[0]?.image).toBe(`registry.example.com/tokenmesh:${version}`);
  });

  it("finds peers through a headless service that publishes not-ready replicas, on the peer port", () => {
    const { objects, sts, config } = get();
    const mesh = config(get().nodes[0] as string).mesh;
    const peers = only<IService>(objects, "Service", sts.spec?.serviceName);
    expect(peers.spec?.clusterIP).toBe("None");
    expect(peers.spec?.publishNotReadyAddresses).toBe(true);
    expect(matches(peers.spec?.selector, sts.spec?.template.metadata?.labels)).toBe(true);
    expect(mesh?.dns?.name).toBe(peers.metadata?.name);
    expect(mesh?.dns?.port).toBe(port(mesh?.peerListen ?? ""));
    expect(peers.spec?.ports?.find((p) => p.name === "peer")?.port).toBe(port(mesh?.peerListen ?? ""));
  });

  it("serves clients through a Service on the gRPC and HTTP ports, probed on the HTTP door's /ready and /health", () => {
    const { objects, sts, config } = get();
    const resolved = config(get().nodes[0] as string);
    const listen = port(resolved.listen);
    const http = port(resolved.httpListen ?? "");
    const clients = objects.filter((o): o is KubeObject & IService => o.kind === "Service" && (o as IService).spec?.clusterIP !== "None");
    expect(clients.map((s) => s.spec?.ports?.map((p) => p.port))).toEqual([[listen, http]]);
    const container = sts.spec?.template.spec?.containers[0];
    const portNamed = (name: unknown) => container?.ports?.find((p) => p.name === name)?.containerPort;
    expect(container?.readinessProbe?.httpGet?.path).toBe("/ready");
    expect(portNamed(container?.readinessProbe?.httpGet?.port)).toBe(http);
    expect(container?.livenessProbe?.httpGet?.path).toBe("/health");
    expect(portNamed(container?.livenessProbe?.httpGet?.port)).toBe(http);
    expect(portNamed("grpc")).toBe(listen);
    expect(container?.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(container?.resources?.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
  });

  it("gives each pod its own certificate, whose common name is its node name, at the config's TLS paths", () => {
    const { objects, sts, nodes, config } = get();
    const pod = sts.spec?.template.spec;
    const tlsMount = pod?.containers[0]?.volumeMounts?.find((m) => m.subPathExpr === "$(POD_NAME)");
    const projected = pod?.volumes?.find((v) => v.name === tlsMount?.name)?.projected?.sources ?? [];
    const certificates = objects.filter(
      (o): o is KubeObject & ICertificate => o.kind === "Certificate" && (o as ICertificate).spec?.isCA !== true,
    );
    nodes.forEach((node, i) => {
      const podName = `${sts.metadata?.name}-${i}`;
      const tls = config(node).mesh?.tls;
      const source = projected.find((s) => s.secret?.items?.every((item) => item.path.startsWith(`${podName}/`)));
      const cert = certificates.find((c) => c.spec?.secretName === source?.secret?.name);
      expect(cert?.spec?.commonName).toBe(node);
      expect(cert?.spec?.usages).toEqual(expect.arrayContaining(["server auth", "client auth"]));
      // The config's files are this pod's directory of the projected volume, seen through subPathExpr.
      const files = Object.fromEntries(
        (source?.secret?.items ?? []).map((item) => [`${tlsMount?.mountPath}/${item.path.slice(podName.length + 1)}`, item.key]),
      );
      expect(files[tls?.cert ?? ""]).toBe("tls.crt");
      expect(files[tls?.key ?? ""]).toBe("tls.key");
      expect(files[tls?.ca ?? ""]).toBe("ca.crt");
      expect(only(objects, "Issuer", cert?.spec?.issuerRef.name).kind).toBe("Issuer");
    });
  });

  it("opens the peer port only to other replicas (and listed networks), with a disruption budget and a ServiceMonitor", () => {
    const { objects, sts } = get();
    const labels = sts.spec?.template.metadata?.labels;
    const policy = only<INetworkPolicy>(objects, "NetworkPolicy");
    expect(matches(policy.spec?.podSelector?.matchLabels, labels)).toBe(true);
    const peerRules = (policy.spec?.ingress ?? []).filter((r) => r.ports?.some((p) => p.port === "peer" || p.port === 7051));
    expect(peerRules).toHaveLength(1);
    for (const from of peerRules[0]?.from ?? []) {
      expect(from.podSelector === undefined ? from.ipBlock?.cidr : matches(from.podSelector.matchLabels, labels)).toBeTruthy();
      expect(from.namespaceSelector).toBeUndefined();
    }
    expect(peerRules[0]?.from?.length).toBeGreaterThan(0);
    const pdb = only<IPodDisruptionBudget>(objects, "PodDisruptionBudget");
    expect(matches(pdb.spec?.selector?.matchLabels, labels)).toBe(true);
    expect(pdb.spec?.maxUnavailable).toBe(1);
    const monitor = only<IServiceMonitor>(objects, "ServiceMonitor");
    const scraped = objects.filter(
      (o) => o.kind === "Service" && matches(monitor.spec.selector.matchLabels, o.metadata.labels),
    ) as IService[];
    expect(scraped.map((s) => s.metadata?.name)).toEqual([sts.spec?.serviceName]);
    expect(scraped[0]?.spec?.ports?.map((p) => p.name)).toContain(monitor.spec.endpoints?.[0]?.port);
  });
});

describe("the two-region overlays", () => {
  it("set distinct regions, keep node names unique across both, and list the other region's replicas as peers", () => {
    const a = renderOverlay("region-a");
    const b = renderOverlay("region-b");
    const ca = a.config(a.nodes[0] as string).mesh;
    const cb = b.config(b.nodes[0] as string).mesh;
    expect(ca?.region).not.toBe(cb?.region);
    expect(new Set([...a.nodes, ...b.nodes]).size).toBe(a.nodes.length + b.nodes.length);
    expect(ca?.peers).toHaveLength(b.nodes.length);
    expect(ca?.peers.every((p) => p.includes(`.${cb?.region}.`))).toBe(true);
    expect(cb?.peers.every((p) => p.includes(`.${ca?.region}.`))).toBe(true);
    expect(ca?.cluster).toBe(cb?.cluster);
  });
});

describe("deploy/kubernetes/base", () => {
  it("renders on its own, valid, for overlays of your own", () => {
    expect(render(join(KUSTOMIZE, "base")).flatMap(schemaProblems)).toEqual([]);
  });
});
