// The client port's defences against late calls and overload, wired in one place so that the
// server (whatever front doors it grows) calls three things: the grpc-js options (streams per
// connection, the deadline interceptor), the guard its handlers consult, and the connection gate
// once the port is bound.

import type { ChannelOptions } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { ResolvedLimits } from "../config/load.ts";
import { type BacklogSource, deadlineInterceptor } from "./call-deadline.ts";
import { CallGuard } from "./call-guard.ts";
import { ConnectionGate } from "./connection-gate.ts";
import { EventLoopWatch } from "./event-loop-watch.ts";
import { LoadShedder } from "./load-shedder.ts";
import { registerOverloadMetrics } from "./overload-metrics.ts";
import { realScheduler, type Scheduler } from "./scheduler.ts";

export class OverloadControls {
  readonly watch: EventLoopWatch;
  readonly guard: CallGuard;
  /** What moves a late call's deadline back, read as its headers arrive (none when turned off). */
  readonly backlog: BacklogSource | undefined;
  #gate: ConnectionGate | undefined;

  constructor(
    private readonly limits: ResolvedLimits,
    private readonly log: Logger,
    scheduler: Scheduler = realScheduler({ unref: true }),
  ) {
    this.watch = new EventLoopWatch().start(scheduler);
    // `shedEventLoopLag: null` turns off all that reads the loop's lag: shedding, and moving
    // deadlines back after a stall. A server sharing its loop with other work (an in-process
    // test, an embedding app) cannot tell that work's stalls from a backlog of calls.
    this.backlog = limits.shedEventLoopLagMs === null ? undefined : this.watch;
    const shedder = limits.shedEventLoopLagMs === null ? undefined : new LoadShedder(this.watch, limits.shedEventLoopLagMs);
    this.guard = new CallGuard(shedder);
  }

  /** Options for the client port's grpc-js server. */
  serverOptions(): ChannelOptions {
    return { "grpc.max_concurrent_streams": this.limits.maxConcurrentStreams, interceptors: [deadlineInterceptor(this.backlog)] };
  }

  /** Starts bounding connections to the bound client port, and registers the metrics. */
  listening(port: number, registry: Registry): void {
    this.#gate = new ConnectionGate(port, this.limits, this.log).start();
    registerOverloadMetrics(registry, this.guard.stats, this.#gate);
  }

  stop(): void {
    this.watch.stop();
    this.#gate?.stop();
  }
}
