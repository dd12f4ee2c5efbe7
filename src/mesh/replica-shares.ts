// Each writer's part in one key, for Query's include_replicas: per incarnation the running total
// known here (the largest of its folded count, its known count and its entries' totals), and how
// far its watermark trails this replica's stamping clock.

import type { Replica } from "../core/crdt/index.ts";
import type { ReplicaShareInfo } from "../limiter/limiter.ts";

export function replicaShares(
  replica: Replica,
  key: string,
  nowUs: number,
  nodeOf: (incarnation: string) => string | undefined,
): ReplicaShareInfo[] {
  const consumed = replica.consumedBy(key);
  if (consumed === undefined) return [];
  const stamp = replica.stamp(nowUs);
  const self = replica.incarnation;
  return [...consumed.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([incarnation, n]) => {
      const record = replica.incarnationRecord(incarnation);
      const local = incarnation === self;
      return {
        node: local ? replica.node : (nodeOf(incarnation) ?? ""),
        incarnation,
        consumed: n,
        lagUs: local || record === undefined ? 0 : Math.max(0, stamp - record.wm),
        retired: record !== undefined && record.retired >= 0,
        local,
      };
    });
}
