// Prometheus counters of calls refused for being late or for load, and of refused client
// connections, read from the guard's and the gate's plain counts when scraped. Every label value
// is exported at 0 from the start, so alerts on increase() see the first event.

import { Counter, type Registry } from "prom-client";
import type { CallGuardStats } from "./call-guard.ts";
import type { ConnectionGate } from "./connection-gate.ts";

function counter<L extends string>(registry: Registry, name: string, help: string, label: L, read: () => Record<string, number>): void {
  const seen = new Map<string, number>();
  const c = new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      for (const [value, n] of Object.entries(read())) {
        const before = seen.get(value) ?? 0;
        if (n > before) this.inc({ [label]: value } as Record<L, string>, n - before);
        seen.set(value, n);
      }
    },
  });
  for (const value of Object.keys(read())) c.inc({ [label]: value } as Record<L, string>, 0);
}

export function registerOverloadMetrics(registry: Registry, guard: CallGuardStats, gate: ConnectionGate | undefined): void {
  counter(
    registry,
    "tokenmesh_expired_calls_total",
    "RateLimiter calls that took no tokens because their deadline had passed (reason=deadline, counting the time the event loop was behind) or they were cancelled (reason=cancelled) before their decision was applied.",
    "reason",
    () => guard.expired,
  );
  let shedSeen = 0;
  new Counter({
    name: "tokenmesh_shed_calls_total",
    help: "RateLimiter calls answered RESOURCE_EXHAUSTED because the event loop was behind by more than limits.shedEventLoopLag.",
    registers: [registry],
    collect() {
      if (guard.shed > shedSeen) this.inc(guard.shed - shedSeen);
      shedSeen = guard.shed;
    },
  });
  if (gate !== undefined) {
    counter(
      registry,
      "tokenmesh_client_connections_refused_total",
      "Connections to the client port closed at once: over limits.maxConnections, or over limits.maxConnectionsPerClient from one address.",
      "reason",
      () => gate.refused,
    );
  }
}
