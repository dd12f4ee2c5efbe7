// The contract between the bench and its Node load driver (which runs in its own process, pinned
// to its own core): what to send, and what came back.

import type { KeySpace } from "../lib/keys.ts";
import type { LatencySummary } from "../lib/stats.ts";

export interface DriverSpec {
  /** 127.0.0.1:PORT */
  readonly address: string;
  readonly path: string;
  /** Separate TCP connections (one HTTP/2 session each). */
  readonly connections: number;
  /** Closed loop: requests kept in flight per connection. Open loop: ignored. */
  readonly streamsPerConnection: number;
  /** Open loop when set: calls started per second in total, on a fixed schedule. */
  readonly ratePerSecond: number | null;
  /** Time not measured at the start (JIT, connection set-up). */
  readonly warmupS: number;
  /** Measured time after the warm-up. */
  readonly durationS: number;
  /** Hard bound on calls started, warm-up included. */
  readonly maxRequests: number;
  readonly policy: string;
  readonly keySpace: KeySpace;
  readonly decisionsPerCall: number;
  readonly seed: number;
}

export interface DriverResult {
  readonly started: number;
  /** Calls answered with grpc-status 0 inside the measured window. */
  readonly ok: number;
  /** grpc-status other than 0 (by code), or "http-NNN", or "transport" for stream errors. */
  readonly failures: Readonly<Record<string, number>>;
  readonly measuredS: number;
  /** ok / measuredS */
  readonly callsPerSecond: number;
  /** Microseconds from each call's send to its close. */
  readonly latencyUs: LatencySummary;
  /** Open loop: worst delay of a send behind its schedule (the driver falling behind). */
  readonly maxSendLagUs: number;
  /** Open loop: share of sends more than 5 ms behind schedule. */
  readonly lateSendFraction: number;
  /** Open loop: calls not started because too many were in flight (the server fell behind). */
  readonly shed: number;
  /** CPU seconds the driver itself used (user + system), to show whether it was the bottleneck. */
  readonly driverCpuS: number;
}
