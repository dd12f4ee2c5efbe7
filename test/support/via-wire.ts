// A core Delta through the real Peer codec, as a peer would receive it: encoded to bytes,
// decoded to the UntrustedDelta that `Replica.applyDelta` validates. In-process tests use it
// instead of handing the sender's objects to the receiver (which shared arrays between
// replicas and never ran the codec).

import type { Delta, UntrustedDelta } from "../../src/core/crdt/index.ts";
import { decodeDelta, encodeDeltaRequest, findDelta } from "../../src/mesh/delta-wire.ts";

export function viaWire(d: Delta): UntrustedDelta {
  const bytes = encodeDeltaRequest(d);
  const at = findDelta(bytes);
  if (at === undefined) throw new Error("encoded request holds no delta");
  return { ...decodeDelta(bytes, at.start, at.end), node: d.node };
}
