// What a RateLimiter handler checks besides the request itself: on arrival, whether the call is
// still wanted (its deadline not passed, not cancelled) and whether the replica is shedding
// load; and again just before tokens are taken, because a call may wait behind others. A call
// refused here takes no token and is counted (tokenmesh_expired_calls_total{reason},
// tokenmesh_shed_calls_total). Transport-free: a door passes what it knows of the call.

import { type CallTiming, callExpiry, type Expiry } from "./call-deadline.ts";
import { Status, TokenmeshError } from "./errors.ts";
import type { LoadShedder } from "./load-shedder.ts";

export interface CallGuardStats {
  readonly expired: Record<Expiry, number>;
  shed: number;
}

export class CallGuard {
  readonly stats: CallGuardStats = { expired: { deadline: 0, cancelled: 0 }, shed: 0 };

  constructor(
    private readonly shedder: LoadShedder | undefined,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** On arrival: throws if the call is no longer wanted, or if load is being shed. */
  admit(call: CallTiming | undefined): void {
    this.charge(call);
    const behind = this.shedder?.shed();
    if (behind !== undefined) {
      this.stats.shed++;
      throw new TokenmeshError(
        Status.RESOURCE_EXHAUSTED,
        "server",
        `overloaded: the event loop is ${Math.round(behind)} ms behind (limits.shedEventLoopLag is ${this.shedder?.maxLagMs} ms); retry after a backoff`,
      );
    }
  }

  /** Just before tokens are taken: throws if the call is no longer wanted. */
  charge(call: CallTiming | undefined): void {
    const why = callExpiry(call, this.nowMs());
    if (why === undefined) return;
    this.stats.expired[why]++;
    if (why === "cancelled")
      throw new TokenmeshError(Status.CANCELLED, "call", "cancelled by the client before its decision was applied; no tokens were taken");
    throw new TokenmeshError(Status.DEADLINE_EXCEEDED, "call", "deadline passed before its decision was applied; no tokens were taken");
  }
}
