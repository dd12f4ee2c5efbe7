// The config file's shape, defaults and bounds, validated once at start-up. zod reports every
// problem with its path (e.g. `policies.api.capacity`), which start-up turns into one message.

import { z } from "zod";
import { LEASE_BOUNDS, strictRateProblem } from "../core/escrow/index.ts";
import { LIMIT_BOUNDS, makeRate } from "../core/rate.ts";
import { parseDurationUs } from "./duration.ts";

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be HOST:PORT, e.g. 127.0.0.1:50051");

const duration = z.string().refine((s) => parseDurationUs(s) !== undefined, {
  message: 'must be a positive integer with a unit: us, ms, s, m, h or d (e.g. "1m")',
});

const inlineSchema = z.strictObject({
  /** Largest capacity an inline limit may ask for. */
  maxCapacity: z.number().int().min(1).max(LIMIT_BOUNDS.maxCapacity),
  /** Largest refill, in tokens per second, an inline limit may ask for. */
  maxRefillPerSecond: z.number().positive().max(LIMIT_BOUNDS.maxRefillTokens),
});

const policySchema = z
  .strictObject({
    capacity: z.number().int().min(1).max(LIMIT_BOUNDS.maxCapacity),
    refill: z.number().int().min(1).max(LIMIT_BOUNDS.maxRefillTokens),
    per: duration,
    /** Present when requests may carry their own limit for this policy. */
    inline: inlineSchema.optional(),
    /**
     * Replicated version of this limit: the higher version wins in the mesh. A live reload that
     * changes capacity, refill, per or effectiveAt must raise it (docs/crdt.md, "Live config").
     */
    version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
    /** When this version takes effect on every replica (RFC 3339); absent: at each key's next fold point. */
    effectiveAt: z
      .string()
      .refine((s) => /^\d{4}-\d\d-\d\dT/.test(s) && Number.isFinite(Date.parse(s)), {
        message: 'must be an RFC 3339 time, e.g. "2026-12-02T15:00:00Z"',
      })
      .optional(),
    /**
     * `local` (default): every replica admits from what it knows. `strict`: a replica admits only
     * within a share leased from the key's bank, never over the limit (docs/design.md, section 9).
     */
    mode: z.enum(["local", "strict"]).default("local"),
    /** Strict mode: how long a leased share may be used after it was asked for. */
    lease: duration
      .refine((s) => {
        const us = parseDurationUs(s) ?? 0;
        return us >= LEASE_BOUNDS.minUs && us <= LEASE_BOUNDS.maxUs;
      }, "must be between 10ms and 1h")
      .default("1s"),
    /** Strict mode in a mesh: the node name of the replica that banks this policy's keys (the same in every replica's file). */
    bank: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,128}$/, "node names are 1-128 of A-Z a-z 0-9 . _ -")
      .optional(),
    /**
     * Mesh admission of a key in demand on several replicas at once: `share` (the default) admits
     * from this replica's share of the bucket, sized by replicated demand, so replicas bursting
     * together admit about one bucket; `local` admits from the whole bucket on every replica,
     * up to n(C + r*d) in such a burst, with no probe after idleness (docs/design.md, "Modes").
     */
    contention: z.enum(["share", "local"]).default("share"),
  })
  .superRefine((p, ctx) => {
    const periodUs = parseDurationUs(p.per);
    if (periodUs === undefined) return;
    const rate = makeRate({ capacity: p.capacity, refillTokens: p.refill, refillPeriodUs: periodUs });
    if (!rate.ok)
      ctx.addIssue({ code: "custom", message: rate.error.message, path: [rate.error.field === "refillPeriodUs" ? "per" : "capacity"] });
    if (p.mode === "strict") {
      const problem = rate.ok ? strictRateProblem(rate.value) : undefined;
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem, path: ["capacity"] });
      // A request's own limit would split one key's shares under several limits.
      if (p.inline !== undefined) ctx.addIssue({ code: "custom", message: "mode strict does not take inline limits", path: ["inline"] });
    } else if (p.bank !== undefined) {
      ctx.addIssue({ code: "custom", message: "bank is for mode strict only", path: ["bank"] });
    }
  });

const nodeName = z.string().regex(/^[A-Za-z0-9._-]{1,128}$/, "node names are 1-128 of A-Z a-z 0-9 . _ -");

const fraction = z.number().min(0).max(1);

/** The audit log of decisions: absent means off. */
const auditSchema = z.strictObject({
  /** "stdout" (interleaved with the log, tagged `log: "audit"`), or a file path appended to. */
  destination: z.string().min(1).default("stdout"),
  /** Fractions of decisions written, by outcome: every denial by default, 1 in 100 allowed. */
  sample: z
    .strictObject({
      allowed: fraction.default(0.01),
      denied: fraction.default(1),
    })
    .prefault({}),
  /** `hash`: the first 16 hex digits of the key's SHA-256 (default); `plain`: the key as sent. */
  key: z.enum(["hash", "plain"]).default("hash"),
});

const meshSchema = z
  .strictObject({
    /** Stable, unique name of this replica (with TLS: its certificate's common name). */
    node: nodeName,
    /** Replicas of different clusters refuse each other. */
    cluster: z.string().min(1).max(128).default("tokenmesh"),
    region: z.string().min(1).max(128).default("local"),
    /** Address of the replica-to-replica (Merge) port. */
    peerListen: hostPort,
    /** Static peer addresses (HOST:PORT of their peerListen). */
    peers: z.array(hostPort).max(256).default([]),
    /** A DNS name resolving to every replica (e.g. a Kubernetes headless service), re-resolved periodically. */
    dns: z
      .strictObject({
        name: z.string().min(1).max(253),
        port: z.number().int().min(1).max(65535),
        every: duration.default("30s"),
      })
      .optional(),
    /** Mutual TLS with the cluster CA: PEM files. */
    tls: z.strictObject({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) }).optional(),
    /** Plaintext, unauthenticated peers: only when chosen explicitly (local runs). */
    insecure: z.boolean().default(false),
    /** How often coalesced deltas are sent to each peer. */
    flushInterval: duration.default("5ms"),
    /** An incarnation silent this long is retired (keep it below the partitions you want to survive). */
    retireAfter: duration.default("5s"),
    /** A new process admits after its first sync with a peer, or after this long without one. */
    warmupTimeout: duration.default("2s"),
    /**
     * Forward what peers sent to the other peers. On (the default) the mesh converges even when
     * some links are down; off saves traffic in a full mesh where every link is up.
     */
    relay: z.boolean().default(true),
    /**
     * Relays per region (docs/design.md, "Relays per region"): replicas of a region exchange with
     * each other, and a region's data crosses to each other region once, between the relays each
     * replica elects (the smallest reachable node name per region). Every peer's region comes
     * from its hello (its `mesh.region`). Replaces `relay` when on.
     */
    relays: z.boolean().default(false),
    /** Keys a single peer may introduce per second before its stream is cut as a flood. */
    maxNewKeysPerPeerPerSecond: z.number().int().min(1).max(10_000_000).default(200_000),
    /** A peer stream that sends no valid hello within this long is closed. */
    helloTimeout: duration.default("2s"),
    /** Connections to the peer port at once (in insecure mode none is authenticated: keep it near the mesh's size). */
    maxConnections: z.number().int().min(1).max(100_000).default(256),
    /** Largest replication message, in bytes. */
    maxMessageBytes: z
      .number()
      .int()
      .min(65536)
      .max(64 * 1024 * 1024)
      .default(4 * 1024 * 1024),
  })
  .superRefine((m, ctx) => {
    if (m.tls === undefined && !m.insecure) {
      ctx.addIssue({
        code: "custom",
        path: ["tls"],
        message: "peers must be authenticated: set mesh.tls (ca, cert, key), or mesh.insecure: true for a local run",
      });
    }
    if (m.tls !== undefined && m.insecure) {
      ctx.addIssue({ code: "custom", path: ["insecure"], message: "cannot be true together with mesh.tls" });
    }
  });

const configObject = z.strictObject({
  /** This replica's name on log and audit lines: default mesh.node, else the host name. */
  node: nodeName.optional(),
  /** Client-facing gRPC address. */
  listen: hostPort.default("127.0.0.1:50051"),
  /**
   * TLS for the client port (PEM files). With `clientCa`, clients must present a certificate it
   * signed (mutual TLS). Absent: plaintext, for loopback and trusted networks only.
   */
  tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1), clientCa: z.string().min(1).optional() }).optional(),
  /** HTTP/JSON: Connect (Consume, Query), /v1/check, /health and /ready; null turns it off. */
  httpListen: hostPort.nullable().default("127.0.0.1:8080"),
  /** Prometheus /metrics over HTTP; null turns it off. */
  metricsListen: hostPort.nullable().default("127.0.0.1:9464"),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  audit: auditSchema.optional(),
  limits: z
    .strictObject({
      /** Buckets held in memory; least recently used beyond it are evicted. */
      maxKeys: z.number().int().min(1).max(100_000_000).default(1_000_000),
      maxDecisionsPerRequest: z.number().int().min(1).max(100_000).default(1_000),
      maxBucketsPerDecision: z.number().int().min(1).max(16).default(16),
      maxKeyBytes: z.number().int().min(1).max(4096).default(256),
      maxPolicyNameBytes: z.number().int().min(1).max(256).default(64),
      /** Descriptors in one Envoy ShouldRateLimit request. */
      maxDescriptorsPerRequest: z.number().int().min(1).max(1_000).default(64),
      maxMessageBytes: z
        .number()
        .int()
        .min(1024)
        .max(64 * 1024 * 1024)
        .default(4 * 1024 * 1024),
      /** Concurrent streams (calls) one client connection may have open (HTTP/2 SETTINGS). */
      maxConcurrentStreams: z.number().int().min(1).max(1_000_000).default(1_000),
      /** Connections to the client port, in all and from one client address. */
      maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
      maxConnectionsPerClient: z.number().int().min(1).max(1_000_000).default(1_000),
      /**
       * RateLimiter calls are shed (RESOURCE_EXHAUSTED) while the event loop is this far behind and
       * busy; null: never. Half a second: a batch burst of a few hundred thousand decisions, or a
       * machine whose cores are busy elsewhere, does not trip it; a backlog that would starve
       * every caller for seconds does.
       */
      shedEventLoopLag: duration.nullable().default("500ms"),
    })
    .prefault({}),
  /** How long SIGTERM waits for in-flight calls before closing connections. */
  shutdownGrace: duration.default("10s"),
  /**
   * Envoy's rate limit service (envoy.service.ratelimit.v3) on the client port: domains in
   * envoyproxy/ratelimit's format, inline and/or from a directory of its YAML files.
   */
  envoy: z
    .strictObject({
      /** A directory of ratelimit config files (*.yaml, *.yml), relative to this config file. */
      configDirectory: z.string().min(1).optional(),
      /** The same documents inline: each one `{ domain, descriptors }`. */
      domains: z.array(z.unknown()).max(10_000).default([]),
      /** Add RateLimit and RateLimit-Policy to the headers Envoy sets on the response. */
      responseHeaders: z.boolean().default(false),
    })
    .optional(),
  /**
   * Where this replica keeps its state snapshot (created if missing; one process per directory).
   * Default `./data/<node>`; null turns persistence off.
   */
  dataDir: z.string().min(1).max(4096).nullable().optional(),
  /** How often the snapshot catches up with the state (and always once more at shutdown). */
  snapshotInterval: duration.refine((s) => (parseDurationUs(s) ?? 0) >= 10_000, { message: "must be at least 10ms" }).default("1s"),
  /** Replication: absent for a standalone replica. */
  mesh: meshSchema.optional(),
  policies: z
    .record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, "policy names are 1-64 of A-Z a-z 0-9 _ . : -"), policySchema)
    .refine((r) => Object.keys(r).length > 0, "at least one policy is required"),
});

/**
 * A strict policy in a mesh must name its bank: every replica has to agree on it without asking,
 * and neither peer addresses nor DNS answers name nodes the same way on every replica.
 */
export const configSchema = configObject.superRefine((c, ctx) => {
  if (c.mesh === undefined) return;
  for (const [name, p] of Object.entries(c.policies)) {
    if (p.mode === "strict" && p.bank === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["policies", name, "bank"],
        message:
          "mode strict in a mesh needs bank: <node name>, the same in every replica's file (it cannot be derived from peer addresses or DNS)",
      });
    }
  }
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type PolicyConfig = Config["policies"][string];
export type MeshConfig = NonNullable<Config["mesh"]>;
export type AuditConfig = NonNullable<Config["audit"]>;
export type EnvoyConfig = NonNullable<Config["envoy"]>;
