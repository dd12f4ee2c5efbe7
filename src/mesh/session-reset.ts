// What to resend when an outbound stream (re)opens. If the peer is the incarnation we streamed
// to before, it holds what it acknowledged: resend from its last ack (deltas sent after it may
// be lost with the old connection). If it is a new incarnation (it restarted), it holds nothing
// of ours: resend everything. This is the acknowledged delta-interval rule of Almeida, Shoker
// and Baquero (JPDC 2018, Algorithm 2) applied at reconnect.

import type { Replica } from "../core/crdt/index.ts";
import { resetOut } from "../core/crdt/peer-session.ts";

export function prepareOutboundSession(replica: Replica, node: string, sameIncarnationAsBefore: boolean, nowUs: number): void {
  const session = replica.s.sessions.get(node);
  if (session === undefined) return; // first contact: the first delta covers everything
  if (sameIncarnationAsBefore) {
    session.sent = session.acked;
    session.lastProgressAt = nowUs;
  } else {
    resetOut(session, nowUs);
  }
}
