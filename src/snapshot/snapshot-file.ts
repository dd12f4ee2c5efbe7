// One snapshot file: a header and a series of chunks, each checksummed, written atomically.
//
//   magic     8 bytes  "TMSNAPSH"
//   version   u32 LE   FORMAT_VERSION
//   header    u32 LE length, that many bytes of JSON (SnapshotHeader), u32 LE CRC-32 of them
//   chunks    per chunk: u32 LE length (> 0), u32 LE CRC-32, the bytes
//   trailer   u32 LE 0, u32 LE number of chunks, u32 LE CRC-32 of every chunk's bytes in order
//
// A file is accepted whole or refused with the reason: wrong magic or version, a header or
// chunk whose checksum does not match, a length past the end, no trailer (a truncated file),
// bytes after it. Writing goes to a temporary name in the same directory, is fsynced, renamed
// over the final name and the directory fsynced (rename is atomic on POSIX file systems), so a
// crash leaves either the old file or the new one, never a mix; a leftover temporary is removed
// at the next start. CRC-32 (zlib's) catches corruption, not tampering: the data directory is
// trusted like the config file, and what is read back is still validated like a peer's delta.

import { open, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { Result } from "../core/result.ts";

export const FORMAT_VERSION = 1;
const MAGIC = Buffer.from("TMSNAPSH", "latin1");
/** A chunk may not claim more than this (a corrupt length must not allocate gigabytes). */
const MAX_CHUNK_BYTES = 256 * 1024 * 1024;

export interface SnapshotHeader {
  /** What the chunks hold: a mesh replica's deltas, or a standalone replica's buckets. */
  readonly kind: "mesh" | "standalone";
  /** A base holds the whole state; an increment what changed since the previous file. */
  readonly role: "base" | "increment";
  /** Random id of the base this file belongs to: increments of another base are ignored. */
  readonly generation: string;
  /** 0 for the base, then 1, 2, ... for its increments. */
  readonly sequence: number;
  readonly node: string;
  /** Mesh cluster (a snapshot of another cluster is refused); empty for a standalone replica. */
  readonly cluster: string;
  /** Mesh incarnation that wrote it (retired when a later process loads it); empty otherwise. */
  readonly writer: string;
  /** Wall clock of the write, microseconds since the epoch. */
  readonly writtenAtUs: number;
  /** Items (keys or buckets) the file was meant to carry; informative. */
  readonly items: number;
}

/** A file's checked contents: its header, its chunks, and its size in bytes. */
export interface SnapshotContents {
  readonly header: SnapshotHeader;
  readonly chunks: Uint8Array[];
  readonly bytes: number;
}

/** The contents, or why the file is refused. */
export type ReadResult = Result<SnapshotContents, string>;

const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(n >>> 0, 0);
  return b;
};

/** Parses and checks a whole file's bytes. Never throws. */
export function parseSnapshotFile(buf: Buffer): ReadResult {
  if (buf.length < MAGIC.length + 8 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    return { ok: false, error: "not a tokenmesh snapshot (no TMSNAPSH magic at the start)" };
  }
  let pos = MAGIC.length;
  const version = buf.readUInt32LE(pos);
  pos += 4;
  if (version !== FORMAT_VERSION) return { ok: false, error: `format version ${version}, this build reads version ${FORMAT_VERSION}` };
  const need = (n: number, what: string): string | undefined =>
    n > buf.length - pos ? `truncated: ${what} needs ${n} bytes at offset ${pos}, the file has ${buf.length}` : undefined;
  const headerLen = buf.readUInt32LE(pos);
  pos += 4;
  const short = need(headerLen + 4, "the header");
  if (short !== undefined) return { ok: false, error: short };
  const headerBytes = buf.subarray(pos, pos + headerLen);
  pos += headerLen;
  if (crc32(headerBytes) !== buf.readUInt32LE(pos)) return { ok: false, error: "header checksum mismatch" };
  pos += 4;
  const header = parseHeader(headerBytes);
  if (typeof header === "string") return { ok: false, error: `header: ${header}` };
  const chunks: Uint8Array[] = [];
  let all = 0;
  for (;;) {
    const lenShort = need(4, `chunk ${chunks.length}`);
    if (lenShort !== undefined) return { ok: false, error: `${lenShort} (no trailer: the write did not finish)` };
    const len = buf.readUInt32LE(pos);
    pos += 4;
    if (len === 0) break;
    if (len > MAX_CHUNK_BYTES) return { ok: false, error: `chunk ${chunks.length} claims ${len} bytes, limit ${MAX_CHUNK_BYTES}` };
    const chunkShort = need(len + 4, `chunk ${chunks.length}`);
    if (chunkShort !== undefined) return { ok: false, error: chunkShort };
    const sum = buf.readUInt32LE(pos);
    pos += 4;
    const bytes = buf.subarray(pos, pos + len);
    pos += len;
    if (crc32(bytes) !== sum) return { ok: false, error: `checksum mismatch in chunk ${chunks.length}` };
    all = crc32(bytes, all);
    chunks.push(bytes);
  }
  const trailerShort = need(8, "the trailer");
  if (trailerShort !== undefined) return { ok: false, error: trailerShort };
  const count = buf.readUInt32LE(pos);
  const total = buf.readUInt32LE(pos + 4);
  pos += 8;
  if (count !== chunks.length) return { ok: false, error: `trailer counts ${count} chunks, the file has ${chunks.length}` };
  if (total !== all) return { ok: false, error: "trailer checksum mismatch" };
  if (pos !== buf.length) return { ok: false, error: `${buf.length - pos} bytes after the trailer` };
  return { ok: true, value: { header, chunks, bytes: buf.length } };
}

function parseHeader(bytes: Uint8Array): SnapshotHeader | string {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
  if (typeof raw !== "object" || raw === null) return "not an object";
  const h = raw as Record<string, unknown>;
  if (h.kind !== "mesh" && h.kind !== "standalone") return `kind must be "mesh" or "standalone", got ${JSON.stringify(h.kind)}`;
  if (h.role !== "base" && h.role !== "increment") return `role must be "base" or "increment", got ${JSON.stringify(h.role)}`;
  for (const name of ["generation", "node", "cluster", "writer"] as const) {
    if (typeof h[name] !== "string" || (h[name] as string).length > 256) return `${name} must be a string of at most 256 characters`;
  }
  for (const name of ["sequence", "writtenAtUs", "items"] as const) {
    if (!Number.isSafeInteger(h[name]) || (h[name] as number) < 0) return `${name} must be a non-negative integer`;
  }
  return h as unknown as SnapshotHeader;
}

/** Result of a write: the bytes it put on disk. */
export interface Written {
  readonly bytes: number;
  readonly chunks: number;
}

/**
 * Writes `chunks` under `name` in `dir` atomically (temporary file, fsync, rename, fsync of the
 * directory). The chunks are pulled one at a time and each is written before the next is asked
 * for, so a caller building them lazily gives the event loop a turn between two of them.
 */
export async function writeSnapshotFile(dir: string, name: string, header: SnapshotHeader, chunks: Iterable<Uint8Array>): Promise<Written> {
  const final = join(dir, name);
  const temp = join(dir, `.${name}.tmp`);
  const file = await open(temp, "w", 0o600);
  let bytes = 0;
  let count = 0;
  const put = async (parts: Uint8Array[]): Promise<void> => {
    const wanted = parts.reduce((n, p) => n + p.length, 0);
    const { bytesWritten } = await file.writev(parts);
    // A short write (a full disk) must not be renamed into place as if it were whole.
    if (bytesWritten !== wanted) throw new Error(`short write: ${bytesWritten} of ${wanted} bytes`);
    bytes += wanted;
  };
  try {
    const head = Buffer.from(JSON.stringify(header), "utf8");
    await put([MAGIC, u32(FORMAT_VERSION), u32(head.length), head, u32(crc32(head))]);
    let all = 0;
    for (const chunk of chunks) {
      if (chunk.length === 0) continue; // a zero length is the end marker
      all = crc32(chunk, all);
      await put([u32(chunk.length), u32(crc32(chunk)), chunk]);
      count++;
    }
    await put([u32(0), u32(count), u32(all)]);
    await file.sync();
  } catch (err) {
    await file.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  }
  await file.close();
  await rename(temp, final);
  await syncDirectory(dir);
  return { bytes, chunks: count };
}

/** fsync of a directory, so that a rename in it survives a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** Temporary files a crashed write left behind. */
export function isLeftoverTemp(name: string): boolean {
  return name.startsWith(".") && name.endsWith(".tmp");
}
