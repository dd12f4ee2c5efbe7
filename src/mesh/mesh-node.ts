// The replication edge of one process: the Peer server (inbound Merge streams), one outbound
// link per discovered peer, and the flush timer that drives the core (watermarks, folds,
// retirements) and sends coalesced deltas. `start` wires it; `close` undoes it.

import { randomBytes } from "node:crypto";
import { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Policy, ResolvedMesh } from "../config/load.ts";
import { DEFAULT_LIMITS, Replica } from "../core/crdt/index.ts";
import type { Clock } from "../server/clock.ts";
import { realScheduler, type Scheduler } from "../server/scheduler.ts";
import { PeerDiscovery, type Resolve } from "./discovery.ts";
import { FlushLoop } from "./flush-loop.ts";
import type { LocalIdentity } from "./handshake.ts";
import { handleInbound } from "./inbound-stream.ts";
import { MeshStats } from "./mesh-stats.ts";
import { OutboundLink } from "./outbound-link.ts";
import { listenForPeers } from "./peer-listener.ts";
import { peerCredentials, peerKeepalive, peerServiceDefinition } from "./peer-transport.ts";
import { RejectionLog } from "./rejection-log.ts";
import { RelayRouter } from "./relay-router.ts";
import type { StrictEscrow } from "./strict-escrow.ts";

export interface MeshOptions {
  readonly mesh: ResolvedMesh;
  readonly clock: Clock;
  readonly log: Logger;
  readonly resolve?: Resolve;
  readonly random?: () => number;
  /** Protocol range override, for upgrade tests. */
  readonly versions?: { readonly min: number; readonly max: number };
  /** Timers of the flush loop and DNS refresh (real timers by default). */
  readonly scheduler?: Scheduler;
  /** Strict mode's holders and banks: their messages ride the Merge streams, their asks the flush. */
  readonly escrow?: StrictEscrow;
}

export interface MeshNode {
  readonly replica: Replica;
  readonly stats: MeshStats;
  readonly peerPort: number;
  /** Wires keys that peers send into the edge's key bound. */
  onKey(listener: (key: string) => void): void;
  /** A local access or change: the flush loop goes back to its interval if it was asleep. */
  wake(): void;
  /** The flush loop (whether it sleeps: tests). */
  readonly flushLoop: FlushLoop;
  links(): readonly OutboundLink[];
  close(): Promise<void>;
}

/**
 * Peers' counts are bounded by content against the largest limit any policy allows (trap 11).
 * Headroom of 10x lets a rolling config change raise a limit without the replicas that still
 * run the old config cutting off the ones that run the new one.
 */
const POLICY_HEADROOM = 10;

const PEER_STREAMS_PER_CONNECTION = 8;

export function policyMax(policies: ReadonlyMap<string, Policy>): { capacity: number; tokensPerSecond: number } {
  let capacity = 1;
  let tokensPerSecond = 0;
  for (const p of policies.values()) {
    capacity = Math.max(capacity, p.rate.capacity, p.inline?.maxCapacity ?? 0);
    tokensPerSecond = Math.max(tokensPerSecond, (p.rate.refillTokens * 1e6) / p.rate.refillPeriodUs, p.inline?.maxRefillPerSecond ?? 0);
  }
  return { capacity: capacity * POLICY_HEADROOM, tokensPerSecond: tokensPerSecond * POLICY_HEADROOM };
}

export function createReplica(mesh: ResolvedMesh, policies: ReadonlyMap<string, Policy>, nowUs: number): Replica {
  return new Replica({
    node: mesh.node,
    // Readiness waits for a first sync when any peer may exist.
    peers: mesh.peers.length > 0 || mesh.dns !== undefined ? ["(any)"] : [],
    nowUs,
    randomHex: () => randomBytes(9).toString("hex"),
    retireAfterUs: mesh.retireAfterUs,
    warmupTimeoutUs: mesh.warmupTimeoutUs,
    // With relays per region the lanes decide what is forwarded (relay-router.ts); until a
    // peer's hello names its region, only changes made here go to it.
    relay: mesh.relays ? false : mesh.relay,
    limits: { ...DEFAULT_LIMITS, policyMax: policyMax(policies) },
    // Keys of no policy (Envoy rules' buckets) share too; policies choose per policy (usePolicies).
    contention: "share",
  });
}

export async function startMesh(options: MeshOptions, replica: Replica): Promise<MeshNode> {
  const { mesh, clock, log } = options;
  const scheduler = options.scheduler ?? realScheduler();
  const stats = new MeshStats();
  // Created first: links and inbound streams wake it; started once the links exist.
  const links = new Map<string, OutboundLink>();
  const escrow = options.escrow;
  // Strict keys ask and answer every flush, after the deltas; while any is active the loop keeps its interval.
  const escrowTarget =
    escrow === undefined
      ? undefined
      : {
          flush: (now: number) => escrow.flush(now),
          get holdsUnsent() {
            return escrow.active;
          },
        };
  escrow?.attach((node, message) => {
    for (const link of links.values()) if (link.peer?.node === node) return link.sendEscrow(message);
    return false;
  });
  const flushLoop = new FlushLoop({
    replica,
    links: () => (escrowTarget === undefined ? links.values() : [...links.values(), escrowTarget]),
    clock,
    scheduler,
    flushMs: Math.max(1, Math.round(mesh.flushIntervalUs / 1000)),
  });
  const wake = (): void => flushLoop.wake();
  const credentials = peerCredentials(mesh.tls);
  const local = (): LocalIdentity => ({
    cluster: mesh.cluster,
    region: mesh.region,
    node: mesh.node,
    incarnation: replica.incarnation,
    ...(options.versions === undefined ? {} : { versions: options.versions }),
  });
  let keyListener: (key: string) => void = () => {};

  const server = new Server({
    "grpc.max_receive_message_length": mesh.maxMessageBytes,
    "grpc.max_send_message_length": mesh.maxMessageBytes,
    // A peer link uses one Merge stream per connection; a few more allow a reconnect's overlap.
    "grpc.max_concurrent_streams": PEER_STREAMS_PER_CONNECTION,
    // The accepting side pings too, so a stream from a peer behind a silent cut is closed (and
    // its session state let go) instead of waiting for bytes that will not come.
    "grpc.keepalive_time_ms": peerKeepalive(mesh.retireAfterUs).timeMs,
    "grpc.keepalive_timeout_ms": peerKeepalive(mesh.retireAfterUs).timeoutMs,
  });
  const rejections = new RejectionLog(log);
  const inbound = new Set<Parameters<typeof handleInbound>[0]>();
  server.addService(peerServiceDefinition, {
    merge: (call: Parameters<typeof handleInbound>[0]) => {
      inbound.add(call);
      call.on("close", () => inbound.delete(call));
      handleInbound(call, {
        replica,
        local,
        clock,
        stats,
        log,
        secure: credentials.secure,
        onKey: (k) => keyListener(k),
        maxNewKeysPerSecond: mesh.maxNewKeysPerPeerPerSecond,
        helloTimeoutMs: mesh.helloTimeoutMs,
        rejections,
        wake,
        ...(escrow === undefined ? {} : { escrow }),
      });
    },
  });
  const listener = await listenForPeers(server, {
    address: mesh.peerListen,
    tls: mesh.tls,
    maxConnections: mesh.maxConnections,
    prefaceTimeoutMs: mesh.helloTimeoutMs,
    onRejected: (reason, detail, remote) => {
      stats.reject(reason);
      rejections.report(reason, { peer: remote, reason, message: detail }, "peer connection refused");
    },
  });
  const peerPort = listener.port;

  const router = mesh.relays ? new RelayRouter(replica, { node: mesh.node, region: mesh.region }) : undefined;
  const linkDeps = {
    replica,
    local,
    clock,
    stats,
    log,
    credentials: credentials.channel,
    secure: credentials.secure,
    maxMessageBytes: mesh.maxMessageBytes,
    keepalive: peerKeepalive(mesh.retireAfterUs),
    maxInFlight: 8,
    random: options.random ?? Math.random,
    // Capped at 0.5 s: after a partition heals, the mesh must reconnect well within C/r + 1 s.
    backoff: { baseMs: 50, maxMs: 500 },
    lastIncarnation: new Map<string, string>(),
    wake,
    onPeerChange: (raw: number): void => {
      if (router === undefined) return;
      const before = new Map(router.relays);
      if (router.update(links.values(), raw)) wake();
      for (const [region, relay] of router.relays) {
        if (before.get(region) !== relay) log.info({ region, relay, self: mesh.node }, "relay elected");
      }
    },
  };
  const discovery = new PeerDiscovery(
    { statics: mesh.peers, ...(mesh.dns === undefined ? {} : { dns: mesh.dns }), self: mesh.peerListen },
    options.resolve,
  );
  const refreshPeers = async (): Promise<void> => {
    const wanted = new Set(await discovery.addresses());
    for (const [address, link] of links) {
      if (!wanted.has(address)) {
        link.close();
        links.delete(address);
        linkDeps.onPeerChange(clock());
      }
    }
    for (const address of wanted) {
      if (links.has(address) || closed) continue;
      const link = new OutboundLink(address, linkDeps);
      links.set(address, link);
      link.start();
    }
  };
  let closed = false;
  await refreshPeers();
  const stopDns = mesh.dns === undefined ? undefined : scheduler.every(mesh.dns.everyMs, () => void refreshPeers());
  flushLoop.start();
  log.info({ peerPort, peers: [...links.keys()], secure: credentials.secure }, "mesh started");

  return {
    replica,
    stats,
    peerPort,
    onKey(listener) {
      keyListener = listener;
    },
    wake,
    flushLoop,
    links: () => [...links.values()],
    async close() {
      closed = true;
      flushLoop.stop();
      stopDns?.();
      for (const link of links.values()) link.close();
      // Peers' streams into us never end on their own: end them so shutdown does not wait.
      for (const call of inbound) call.end();
      listener.close();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
