// Public surface of the replicated bucket. The edge uses Replica (one per process) and the
// wire types; the lattice pieces are exported for tests, tools and the simulator.

export { ClockSync } from "./clock-sync.ts";
export type { ApplyResult } from "./delta-in.ts";
export { electRelays, type Lane, type PeerView, regionLanes } from "./forwarding.ts";
export { birthOf, type IncId, isIncarnationId, makeIncarnationId } from "./incarnation.ts";
export {
  type ConfigResult,
  compareConfig,
  type KeyConfig,
  makeKeyConfig,
} from "./key-config.ts";
export { foldKey, foldKeyInto, isCollectable } from "./key-fold.ts";
export { joinKey, joinKeyInto, normalizeKey } from "./key-join.ts";
export { cloneKeyState, type Entry, type KeyState, keyText, newKeyState, type Prefix } from "./key-state.ts";
export { liveFloor, newRegistry, type Registry, registryText } from "./registry.ts";
export { keyLevelAt, refilled, walk } from "./replay.ts";
export { Replica, type ReplicaInit } from "./replica.ts";
export { DEFAULT_OPTIONS, type ReplicaOptions, type ReplicaStats } from "./replica-state.ts";
export { type ExportOptions, exportState, finishImport, type ImportResult, importState, type StateExport } from "./snapshot.ts";
export { DEFAULT_LIMITS, type DeltaError, KnownLimits, type Limits, validateDelta } from "./validate.ts";
export type {
  Ack,
  CountRow,
  Delta,
  DeltaPrefix,
  DemandRow,
  EntryRow,
  IncarnationRecord,
  KeyDelta,
  KeyEntriesDelta,
  KeyPartDelta,
  Limit,
  UntrustedDelta,
  UntrustedKeyDelta,
  UntrustedPrefix,
} from "./wire.ts";
