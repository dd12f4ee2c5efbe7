// A mesh replica's snapshot: its replicated state as Delta messages, in the very encoding peers
// exchange (mesh/delta-wire.ts), and read back through the same validation (`validateDelta`) and
// join as a peer's delta (core/crdt/snapshot.ts). A snapshot can therefore only add
// consumption the mesh may not know yet: an old one is joined below what peers hold.

import {
  type Delta,
  exportState,
  finishImport,
  type IncId,
  importState,
  type Replica,
  type UntrustedDelta,
  validateDelta,
} from "../core/crdt/index.ts";
import { decodeDelta, encodeDeltaRequest, findDelta } from "../mesh/delta-wire.ts";
import type { LoadedFile } from "./snapshot-directory.ts";
import type { SnapshotExport, SnapshotSource } from "./snapshot-scheduler.ts";

/** Keys per chunk: a chunk is built and encoded in one go, so this bounds one event-loop turn. */
const KEYS_PER_CHUNK = 2048;

export function replicaSnapshotSource(replica: Replica): SnapshotSource {
  return {
    kind: "mesh",
    position: () => replica.sequence,
    // An idle mesh only raises watermarks: no file for those (replica-state.ts, bumpWatermark).
    skippable: (from) => replica.onlyWatermarksSince(from),
    begin(from: number, nowUs: number): SnapshotExport {
      const e = exportState(replica, nowUs, { from, maxKeys: KEYS_PER_CHUNK, maxIncs: replica.limits.maxIncsPerDelta });
      function* chunks(): Generator<Uint8Array> {
        for (const d of e.chunks()) yield encodeDeltaRequest(d);
      }
      return { to: e.to, writer: e.writer, items: e.keys, chunks: chunks() };
    },
  };
}

export interface ReplicaLoad {
  /** Files joined (a prefix of the series). */
  readonly files: number;
  readonly keys: readonly string[];
  /** Incarnations of earlier processes retired at load. */
  readonly retired: number;
  readonly held: number;
  readonly dropped: number;
  /** The first file whose content did not validate, and why (the files after it are left out). */
  readonly refused?: { readonly file: string; readonly reason: string };
}

/** Decodes and validates one file's chunks; joins nothing. */
function parseFile(replica: Replica, f: LoadedFile): Delta[] | string {
  const out: Delta[] = [];
  for (let i = 0; i < f.chunks.length; i++) {
    const bytes = f.chunks[i] as Uint8Array;
    let raw: UntrustedDelta;
    try {
      const at = findDelta(bytes);
      if (at === undefined) return `chunk ${i}: holds no delta`;
      raw = { ...decodeDelta(bytes, at.start, at.end), node: f.header.node };
    } catch (err) {
      return `chunk ${i}: ${(err as Error).message}`;
    }
    const parsed = validateDelta(raw, replica.limits);
    if (!parsed.ok) return `chunk ${i}: delta.${parsed.error.field}: ${parsed.error.message}`;
    out.push(parsed.value);
  }
  return out;
}

/**
 * Joins the checked files into `replica`, which must not admit yet. Every file is decoded and
 * validated before anything is joined; one that fails ends the series there.
 */
export function loadReplicaSnapshot(replica: Replica, files: readonly LoadedFile[], nowUs: number): ReplicaLoad {
  const parsed: Delta[][] = [];
  const writers: IncId[] = [];
  let refused: ReplicaLoad["refused"];
  for (const f of files) {
    const p = parseFile(replica, f);
    if (typeof p === "string") {
      refused = { file: f.name, reason: p };
      break;
    }
    parsed.push(p);
    if (f.header.writer !== "") writers.push(f.header.writer);
  }
  const keys: string[] = [];
  let held = 0;
  let dropped = 0;
  for (const file of parsed) {
    for (const d of file) {
      const r = importState(replica, d, nowUs);
      held += r.held;
      dropped += r.dropped;
      for (const k of d.keys) keys.push(k.key);
    }
  }
  const retired = finishImport(replica, writers, nowUs);
  return { files: parsed.length, keys, retired, held, dropped, ...(refused === undefined ? {} : { refused }) };
}
