// What to resend when an outbound stream (re)opens: the replica decides (Replica.outboundReopened);
// this edge only tells it whether the peer is the incarnation it streamed to before.

import type { Replica } from "../core/crdt/index.ts";

export function prepareOutboundSession(replica: Replica, node: string, sameIncarnationAsBefore: boolean, nowUs: number): void {
  replica.outboundReopened(node, sameIncarnationAsBefore, nowUs);
}
