// Renders deploy/kubernetes overlays with the machine's `kubectl kustomize` and validates each
// rendered object against the Kubernetes API schemas (kubernetes-models, with the
// cert-manager and Prometheus operator models for their custom resources).
//
// No kubectl, or one whose kustomize is older than v4 (Debian's kubernetes-client 1.20 bundles
// kustomize v2.0.3, which cannot read current kustomization files), is a failure with the
// reason, never a skip: CI must not pass without having rendered the manifests.

import { execFileSync, spawnSync } from "node:child_process";
import { Certificate, Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { StatefulSet } from "kubernetes-models/apps/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from "kubernetes-models/v1";
import { parseAllDocuments } from "yaml";

export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string> };
  readonly [field: string]: unknown;
}

type Model = new (data: never) => { validate(): void };

/** The kinds the manifests may use, each with its schema. A new kind needs its model here. */
const MODELS: Readonly<Record<string, Model>> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/StatefulSet": StatefulSet,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "cert-manager.io/v1/Issuer": Issuer,
  "cert-manager.io/v1/Certificate": Certificate,
};

/** Why this machine cannot render the manifests, or undefined when it can. */
export function kubectlProblem(): string | undefined {
  const probe = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" });
  if (probe.error !== undefined || probe.status !== 0) {
    return "kubectl is not on PATH: the Kubernetes manifests cannot be rendered. Install kubectl 1.21 or later (kustomize v4+); Debian's kubernetes-client (1.20) is too old";
  }
  const kustomize = /Kustomize Version: v(\d+)\./.exec(probe.stdout);
  if (kustomize === null || Number(kustomize[1]) < 4) {
    return `kubectl's kustomize is older than v4 (${probe.stdout.trim().split("\n").join("; ")}): install kubectl 1.21 or later`;
  }
  return undefined;
}

/** `kubectl kustomize DIR`, as a list of objects. */
export function render(dir: string): KubeObject[] {
  const problem = kubectlProblem();
  if (problem !== undefined) throw new Error(problem);
  const text = execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return parseAllDocuments(text)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

/** Schema problems of one rendered object ([] when it is valid). */
export function schemaProblems(object: KubeObject): string[] {
  const key = `${object.apiVersion}/${object.kind}`;
  const model = MODELS[key];
  if (model === undefined) return [`${key} ${object.metadata.name}: no schema model for this kind (add one to test/support/kustomize.ts)`];
  const { apiVersion: _apiVersion, kind: _kind, ...data } = object;
  try {
    new model(data as never).validate();
    return [];
  } catch (err) {
    return [`${key} ${object.metadata.name}: ${(err as Error).message}`];
  }
}

/** The one object of a kind (and name, when given); throws naming what is missing. */
export function only<T = KubeObject>(objects: readonly KubeObject[], kind: string, name?: string): KubeObject & T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? "" : ` ${name}`}, found ${found.length}`);
  return found[0] as KubeObject & T;
}
