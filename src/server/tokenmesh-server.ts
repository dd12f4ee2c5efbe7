// Wires one tokenmesh process: the RateLimiter service, health, reflection and metrics. Nothing
// happens at import time; `start()` binds the ports and `shutdown()` drains in-flight calls.

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { ServerCredentials } from "@grpc/grpc-js";
import { createServer, type Server } from "nice-grpc";
import { HealthDefinition, HealthServiceImpl, HealthState } from "nice-grpc-server-health";
import { ServerReflectionService } from "nice-grpc-server-reflection";
import type { Logger } from "pino";
import { type Policy, policySnapshot, type ResolvedConfig } from "../config/load.ts";
import { scheduledSnapshot } from "../config/policy-schedule.ts";
import { domainBucketPolicies, domainRates } from "../config/rate-limit-config.ts";
import { rateLimitService, rateLimitServiceDefinition } from "../envoy/rls-service.ts";
import { RateLimitService } from "../gen/envoy/service/ratelimit/v3/rls_pb.ts";
import { RateLimiter } from "../gen/tokenmesh/v1/rate_limiter_pb.ts";
import { closeHttp, createHttpDoor, listenHttp } from "../http/http-server.ts";
import { BucketStore } from "../limiter/bucket-store.ts";
import { type BucketBackend, Limiter } from "../limiter/limiter.ts";
import { DecisionAudit } from "../log/decision-audit.ts";
import type { Resolve } from "../mesh/discovery.ts";
import { registerMeshMetrics } from "../mesh/mesh-metrics.ts";
import { createReplica, type MeshNode, policyMax, startMesh } from "../mesh/mesh-node.ts";
import { ReplicaBackend } from "../mesh/replica-backend.ts";
import { StrictEscrow } from "../mesh/strict-escrow.ts";
import { resolveBuildInfo } from "../metrics/build-info.ts";
import { startMetricsEndpoint } from "../metrics/http-endpoint.ts";
import { Metrics } from "../metrics/metrics.ts";
import { openBucketPersistence, openReplicaPersistence } from "../snapshot/persistence.ts";
import { registerSnapshotMetrics } from "../snapshot/snapshot-metrics.ts";
import type { SnapshotScheduler } from "../snapshot/snapshot-scheduler.ts";
import { type Clock, systemClock } from "./clock.ts";
import { ConfigReloader } from "./config-reload.ts";
import { DecisionService } from "./decision-service.ts";
import { observeCalls } from "./middleware.ts";
import { OverloadControls } from "./overload-controls.ts";
import { rateLimiterServerDefinition } from "./rate-limiter-definition.ts";
import { rateLimiterService } from "./rate-limiter-service.ts";
import { reflectionService } from "./reflection.ts";
import { realScheduler, type Scheduler } from "./scheduler.ts";

export interface ServerOptions {
  readonly config: ResolvedConfig;
  readonly log: Logger;
  readonly clock?: Clock;
  /** Protocol range override for the mesh (upgrade tests). */
  readonly protocolVersions?: { readonly min: number; readonly max: number };
  /** DNS resolver for mesh.dns (tests inject one; the default asks the system). */
  readonly resolve?: Resolve;
  /** The file the config came from: given, SIGHUP (via `reload`) and changes of it reload it live. */
  readonly configPath?: string;
  /** Timers of the periodic loops (mesh flush, event-loop watch, warm-up poll); real ones by default. */
  readonly scheduler?: Scheduler;
}

export interface RunningServer {
  /** Client port actually bound (useful with port 0). */
  readonly port: number;
  readonly metricsPort: number | undefined;
  /** HTTP/JSON port actually bound, when httpListen is set. */
  readonly httpPort: number | undefined;
  readonly limiter: Limiter;
  readonly metrics: Metrics;
  /** Present when the config has a mesh section. */
  readonly mesh: MeshNode | undefined;
  /** The one decision path every door uses. */
  readonly decisions: DecisionService;
  /** Stops accepting calls, waits up to the grace period for in-flight ones, then closes. */
  shutdown(): Promise<void>;
  /** Present when started with `configPath`: reloads the file live. */
  readonly reloader: ConfigReloader | undefined;
}

/** Credentials for the client port: TLS (mutual when a client CA is given) or plaintext. */
function clientCredentials(tls: ResolvedConfig["tls"]): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  const ca = tls.clientCa === undefined ? null : readFileSync(tls.clientCa);
  return ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(tls.cert), private_key: readFileSync(tls.key) }], ca !== null);
}

/**
 * Every limit a request can name, for the mesh's bound on peers' counts: the policies and the
 * Envoy domains' buckets (named here by their rule label; only the rates matter).
 */
function everyLimit(config: ResolvedConfig): ReadonlyMap<string, Policy> {
  const all = new Map(config.policies);
  for (const [i, rate] of domainRates(config.envoy.domains).entries()) all.set(`rls#${i}`, { name: `rls#${i}`, rate });
  return all;
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return { host: address.slice(0, at).replace(/^\[|\]$/g, ""), port: Number(address.slice(at + 1)) };
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { config, log } = options;
  const clock = options.clock ?? systemClock();
  // Opened first: an audit path that cannot be written stops start-up before any port is bound.
  const audit = config.audit === undefined ? undefined : new DecisionAudit(config.audit, { node: config.node, log, random: Math.random });
  let mesh: MeshNode | undefined;
  let backend: BucketBackend;
  let snapshots: SnapshotScheduler | undefined;
  const persistence = (kind: "mesh" | "standalone", dataDir: string) => ({
    dataDir,
    intervalMs: config.snapshotIntervalMs,
    identity: { kind, node: config.node, cluster: config.mesh?.cluster ?? "" },
    clock,
    log,
  });
  if (config.mesh === undefined) {
    const store = new BucketStore(config.limits.maxKeys);
    if (config.dataDir !== null) snapshots = openBucketPersistence(persistence("standalone", config.dataDir), store);
    backend = store;
  } else {
    const replica = createReplica(config.mesh, everyLimit(config), clock());
    const escrow = new StrictEscrow(config.mesh.node, `${config.mesh.node}/${randomBytes(9).toString("hex")}`, clock());
    const replicaBackend = new ReplicaBackend(
      replica,
      config.limits.maxKeys,
      (inc) => mesh?.stats.nodeOfIncarnation.get(inc),
      () => mesh?.wake(),
      escrow,
    );
    // Loaded before the mesh starts: peers then get what the snapshot held, and nothing is admitted before it.
    if (config.dataDir !== null) {
      snapshots = openReplicaPersistence(persistence("mesh", config.dataDir), replica, (key) => replicaBackend.touch(key));
    }
    mesh = await startMesh(
      {
        mesh: config.mesh,
        clock,
        log,
        ...(options.protocolVersions === undefined ? {} : { versions: options.protocolVersions }),
        ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
        ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
        escrow,
      },
      replica,
    );
    mesh.onKey((key) => replicaBackend.touch(key));
    backend = replicaBackend;
  }
  const limiter = new Limiter(backend);
  const metrics = new Metrics(
    { keysHeld: () => limiter.store.size, evictions: () => limiter.store.evictions, ready: () => mesh?.replica.ready ?? true },
    { policies: config.policies.keys(), build: resolveBuildInfo() },
  );
  metrics.knowMethods(RateLimiter.methods.map((m) => ({ grpc_service: RateLimiter.typeName, grpc_method: m.name })));
  if (mesh !== undefined) registerMeshMetrics(metrics.registry, mesh);
  if (snapshots !== undefined) registerSnapshotMetrics(metrics.registry, snapshots.stats, clock);
  const health = HealthState();

  const overload = new OverloadControls(config.limits, log, options.scheduler);
  const server: Server = createServer({
    "grpc.max_receive_message_length": config.limits.maxMessageBytes,
    "grpc.max_send_message_length": config.limits.maxMessageBytes,
    ...overload.serverOptions(),
  }).use(observeCalls(metrics, log));
  // Every request reads one snapshot; a live reload swaps it whole and every door follows.
  let snapshot = policySnapshot(config);
  const replicaBackend = backend instanceof ReplicaBackend ? backend : undefined;
  replicaBackend?.usePolicies(config.policies.values());
  const reloader =
    options.configPath === undefined
      ? undefined
      : new ConfigReloader(
          options.configPath,
          config,
          {
            apply: (next) => {
              replicaBackend?.usePolicies(next.policies.values());
              const nowUs = clock();
              const current = snapshot.policiesAt(nowUs);
              // A removed policy's buckets go at once. Envoy rules' bucket policies share the id
              // space with policy names, so a name one of them still serves is not dropped.
              const inForce = new Set([...next.policies.keys(), ...domainBucketPolicies(next.envoy.domains)]);
              const removed = new Set([...current.keys()].filter((name) => !inForce.has(name)));
              if (backend instanceof BucketStore) backend.dropPolicies(removed);
              // A mesh replica also stops joining peers' data for them (a peer may not have reloaded yet).
              const dropped = replicaBackend?.forgetRemovedPolicies(removed, inForce) ?? 0;
              if (dropped > 0) log.info({ keys: dropped }, "dropped the keys of removed policies");
              // The mesh's core switches limits at their tEff itself; a standalone replica's
              // snapshot keeps the old limit until `effectiveAt`.
              snapshot = replicaBackend === undefined ? scheduledSnapshot(current, next, nowUs) : policySnapshot(next);
            },
            ...(config.mesh === undefined ? {} : { bound: policyMax(everyLimit(config)) }),
          },
          log,
          metrics,
        );
  reloader?.watch();
  const decisions = new DecisionService({
    limiter,
    policies: () => snapshot,
    limits: config.limits,
    clock,
    metrics,
    warmingUp: () => mesh !== undefined && !mesh.replica.ready,
    ...(audit === undefined ? {} : { audit }),
    guard: overload.guard,
  });
  server.add(rateLimiterServerDefinition, rateLimiterService(decisions));
  server.add(rateLimitServiceDefinition, rateLimitService(decisions, { responseHeaders: config.envoy.responseHeaders }));
  server.add(HealthDefinition, HealthServiceImpl(health));
  server.add(ServerReflectionService, reflectionService([RateLimiter, RateLimitService]));
  const served = [RateLimiter.typeName, RateLimitService.typeName];

  let port: number;
  try {
    port = await server.listen(config.listen, clientCredentials(config.tls));
  } catch (err) {
    overload.stop();
    await mesh?.close();
    throw err;
  }
  overload.listening(port, metrics.registry);
  health.setStatus("healthy");
  snapshots?.start();
  // A warming mesh replica reports NOT_SERVING for both rate limit services until it admits.
  let stopWarmup: (() => void) | undefined;
  const announceReady = (): boolean => {
    if (!decisions.readiness().ready) return false;
    for (const name of served) health.setStatus("healthy", name);
    return true;
  };
  if (!announceReady()) {
    for (const name of served) health.setStatus("unhealthy", name);
    stopWarmup = (options.scheduler ?? realScheduler()).every(20, () => {
      if (announceReady()) stopWarmup?.();
    });
  }

  const stopEarly = async (): Promise<void> => {
    stopWarmup?.();
    overload.stop();
    await server.shutdown();
    await mesh?.close();
  };
  let httpServer: HttpServer | undefined;
  let httpPort: number | undefined;
  if (config.httpListen !== null) {
    const { host, port: hport } = splitHostPort(config.httpListen);
    httpServer = createHttpDoor({ decisions, log, maxMessageBytes: config.limits.maxMessageBytes, backlog: overload.backlog });
    try {
      httpPort = await listenHttp(httpServer, host, hport);
    } catch (err) {
      await stopEarly();
      throw err;
    }
  }

  let metricsServer: HttpServer | undefined;
  let metricsPort: number | undefined;
  if (config.metricsListen !== null) {
    const { host, port: mport } = splitHostPort(config.metricsListen);
    try {
      metricsServer = await startMetricsEndpoint(metrics.registry, host, mport);
    } catch (err) {
      if (httpServer !== undefined) await closeHttp(httpServer);
      await stopEarly();
      throw err;
    }
    const bound = metricsServer.address();
    metricsPort = typeof bound === "object" && bound !== null ? bound.port : undefined;
  }
  const listenHost = splitHostPort(config.listen).host;
  log.info(
    {
      address: `${listenHost}:${port}`,
      metricsPort,
      httpPort,
      peerPort: mesh?.peerPort,
      policies: [...config.policies.keys()],
    },
    "tokenmesh serving",
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    stopping ??= (async () => {
      stopWarmup?.();
      reloader?.close();
      decisions.drain();
      health.setStatus("unhealthy");
      for (const name of served) health.setStatus("unhealthy", name);
      const http = httpServer;
      const grace = setTimeout(() => {
        log.warn({ graceMs: config.shutdownGraceMs }, "grace period over: closing remaining calls");
        server.forceShutdown();
        http?.closeAllConnections();
      }, config.shutdownGraceMs);
      try {
        await Promise.all([server.shutdown(), http === undefined ? undefined : closeHttp(http)]);
      } finally {
        clearTimeout(grace);
      }
      overload.stop();
      await mesh?.close();
      // After the last call was answered: a SIGTERM loses none of the state.
      await snapshots?.close();
      await audit?.close();
      if (metricsServer !== undefined) {
        const m = metricsServer;
        const closed = new Promise<void>((resolve) => m.close(() => resolve()));
        m.closeAllConnections(); // keep-alive scrapers would otherwise hold close() open
        await closed;
      }
      log.info("tokenmesh stopped");
    })();
    return stopping;
  };

  return { port, metricsPort, httpPort, limiter, metrics, mesh, decisions, shutdown, reloader };
}
