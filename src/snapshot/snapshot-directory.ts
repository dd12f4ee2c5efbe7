// The data directory of one replica: a base snapshot and the increments written after it.
//
//   base.tms                 the whole state, as of when it was written (sequence 0)
//   increment-000001.tms ... what changed since the file before it (sequence 1, 2, ...)
//
// Every file names the random generation of its base; increments of another generation are
// leftovers of a compaction that crashed before deleting them, and are ignored. A state on
// disk is the join of the base and its increments, in any order (each is a lattice element:
// see core/crdt/snapshot.ts), but a file that is refused ends the series there: the files
// after it may claim watermarks over data that only the refused one held. A base is written
// again (compaction) once the increments add up to more bytes than it (and over 1 MiB), or to
// MAX_INCREMENTS files, so a load reads at most about twice the state.

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { readdir, unlink } from "node:fs/promises";
import { isLeftoverTemp, parseSnapshotFile, type SnapshotHeader, type Written, writeSnapshotFile } from "./snapshot-file.ts";

export const BASE_FILE = "base.tms";
const INCREMENT = /^increment-(\d{6,})\.tms$/;
const MAX_INCREMENTS = 100;
/** Below this, increments are not worth folding into a new base before MAX_INCREMENTS. */
const MIN_COMPACTION_BYTES = 1 << 20;

const incrementFile = (n: number): string => `increment-${String(n).padStart(6, "0")}.tms`;

/** Who may read a directory: a snapshot of another kind, node or cluster is refused. */
export interface SnapshotIdentity {
  readonly kind: SnapshotHeader["kind"];
  readonly node: string;
  readonly cluster: string;
}

export interface LoadedFile {
  readonly name: string;
  readonly header: SnapshotHeader;
  readonly chunks: Uint8Array[];
  readonly bytes: number;
}

/** Where a directory stands, so that a process can add increments to what it loaded. */
export interface SeriesPosition {
  readonly generation: string;
  readonly nextSequence: number;
  readonly baseBytes: number;
  readonly incrementBytes: number;
  readonly increments: number;
}

export interface ScanResult {
  /** The base, then its increments in order: every file checked, none refused. */
  readonly files: LoadedFile[];
  /** The first file refused (the series ends before it), and why. */
  readonly refused?: { readonly file: string; readonly reason: string };
  /** Present when nothing was refused: new increments may continue the series. */
  readonly position?: SeriesPosition;
}

function identityProblem(h: SnapshotHeader, id: SnapshotIdentity): string | undefined {
  if (h.kind !== id.kind) return `written by a ${h.kind} replica; this one is ${id.kind === "mesh" ? "a mesh replica" : "standalone"}`;
  if (id.kind === "mesh" && (h.node !== id.node || h.cluster !== id.cluster)) {
    return `written by node "${h.node}" of cluster "${h.cluster}"; this is node "${id.node}" of cluster "${id.cluster}"`;
  }
  return undefined;
}

/**
 * Reads and checks the directory (at start-up, before anything is admitted; synchronous on
 * purpose). Removes leftover temporary files. Never throws for a bad file: it is refused.
 */
export function scanSnapshotDirectory(dir: string, id: SnapshotIdentity): ScanResult {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { files: [] };
    throw err;
  }
  for (const name of names.filter(isLeftoverTemp)) unlinkSync(`${dir}/${name}`);
  const increments = names
    .map((name) => ({ name, n: Number(INCREMENT.exec(name)?.[1] ?? Number.NaN) }))
    .filter((f) => Number.isSafeInteger(f.n))
    .sort((a, b) => a.n - b.n);
  if (!names.includes(BASE_FILE)) {
    const first = increments[0];
    return first === undefined ? { files: [] } : { files: [], refused: { file: first.name, reason: `no ${BASE_FILE} to apply it to` } };
  }
  const read = (name: string): LoadedFile | { reason: string } => {
    const parsed = parseSnapshotFile(readFileSync(`${dir}/${name}`));
    if (!parsed.ok) return { reason: parsed.error };
    const problem = identityProblem(parsed.value.header, id);
    return problem === undefined ? { name, ...parsed.value } : { reason: problem };
  };
  const base = read(BASE_FILE);
  if ("reason" in base) return { files: [], refused: { file: BASE_FILE, reason: base.reason } };
  if (base.header.role !== "base") return { files: [], refused: { file: BASE_FILE, reason: `role is ${base.header.role}, not base` } };
  const files: LoadedFile[] = [base];
  let incrementBytes = 0;
  let next = 1;
  for (const { name } of increments) {
    const f = read(name);
    if ("reason" in f) return { files, refused: { file: name, reason: f.reason } };
    if (f.header.generation !== base.header.generation) continue; // left over from before the last base
    if (f.header.role !== "increment" || f.header.sequence !== next) {
      return { files, refused: { file: name, reason: `sequence ${f.header.sequence} (${f.header.role}), expected increment ${next}` } };
    }
    files.push(f);
    incrementBytes += f.bytes;
    next++;
  }
  const position = { generation: base.header.generation, nextSequence: next, baseBytes: base.bytes, incrementBytes, increments: next - 1 };
  return { files, position };
}

/** Writes the files of one directory: increments, and a new base when they add up. */
export class SnapshotDirectory {
  #position: SeriesPosition | undefined;

  constructor(
    readonly dir: string,
    readonly id: SnapshotIdentity,
    /** What was loaded, if the series may go on; undefined: the next write is a base. */
    position: SeriesPosition | undefined,
  ) {
    this.#position = position;
  }

  /** Whether the next write must be a base (none yet in this series, or compaction is due). */
  get needsBase(): boolean {
    const p = this.#position;
    return p === undefined || p.increments >= MAX_INCREMENTS || p.incrementBytes > Math.max(p.baseBytes, MIN_COMPACTION_BYTES);
  }

  /** Bytes on disk of the current series. */
  get bytes(): number {
    const p = this.#position;
    return p === undefined ? 0 : p.baseBytes + p.incrementBytes;
  }

  /** Forgets the series: the next write is a base (after a failed write). */
  restart(): void {
    this.#position = undefined;
  }

  async write(
    role: "base" | "increment",
    writer: string,
    items: number,
    writtenAtUs: number,
    chunks: Iterable<Uint8Array>,
  ): Promise<Written> {
    const p = this.#position;
    if (role === "increment" && p === undefined) throw new Error("an increment needs a base first");
    const generation = role === "base" || p === undefined ? randomBytes(8).toString("hex") : p.generation;
    const sequence = role === "base" || p === undefined ? 0 : p.nextSequence;
    const header: SnapshotHeader = { ...this.id, role, generation, sequence, writer, writtenAtUs, items };
    const written = await writeSnapshotFile(this.dir, role === "base" ? BASE_FILE : incrementFile(sequence), header, chunks);
    if (role === "base") {
      this.#position = { generation, nextSequence: 1, baseBytes: written.bytes, incrementBytes: 0, increments: 0 };
      // The new base is durable: the old increments are of another generation now.
      for (const name of await readdir(this.dir)) if (INCREMENT.test(name)) await unlink(`${this.dir}/${name}`).catch(() => {});
    } else if (p !== undefined) {
      this.#position = { ...p, nextSequence: sequence + 1, incrementBytes: p.incrementBytes + written.bytes, increments: p.increments + 1 };
    }
    return written;
  }
}
