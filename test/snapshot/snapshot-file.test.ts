// The snapshot file and directory: a file is accepted whole or refused with its reason (every
// truncation, every flipped byte, another format version), writes are atomic, and a directory
// loads its base and the increments of the same generation, up to the first refused file.

import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SnapshotDirectory, scanSnapshotDirectory } from "../../src/snapshot/snapshot-directory.ts";
import { FORMAT_VERSION, parseSnapshotFile, type SnapshotHeader, writeSnapshotFile } from "../../src/snapshot/snapshot-file.ts";

const header: SnapshotHeader = {
  kind: "standalone",
  role: "base",
  generation: "0011223344556677",
  sequence: 0,
  node: "n1",
  cluster: "",
  writer: "",
  writtenAtUs: 1_800_000_000_000_000,
  items: 2,
};
const chunks = [new Uint8Array([1, 2, 3, 4, 5]), new Uint8Array([9, 8, 7])];
const id = { kind: "standalone", node: "n1", cluster: "" } as const;

async function written(): Promise<{ dir: string; bytes: Buffer }> {
  const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapfile-"));
  await writeSnapshotFile(dir, "base.tms", header, chunks);
  return { dir, bytes: readFileSync(join(dir, "base.tms")) };
}

describe("snapshot file", () => {
  it("reads back what was written, and leaves no temporary file", async () => {
    const { dir, bytes } = await written();
    const r = parseSnapshotFile(bytes);
    expect(r.ok && r.value.header).toEqual(header);
    expect(r.ok && r.value.chunks.map((c) => [...c])).toEqual(chunks.map((c) => [...c]));
    expect(readdirSync(dir)).toEqual(["base.tms"]);
  });

  it("refuses every truncation, saying so", async () => {
    const { bytes } = await written();
    for (let n = 0; n < bytes.length; n++) {
      const r = parseSnapshotFile(bytes.subarray(0, n));
      expect(r.ok, `length ${n}`).toBe(false);
      if (!r.ok) expect(r.error, `length ${n}`).toMatch(/^(not a tokenmesh snapshot|truncated: )/);
    }
  });

  it("refuses every flipped byte", async () => {
    const { bytes } = await written();
    for (let i = 0; i < bytes.length; i++) {
      const bad = Buffer.from(bytes);
      bad[i] = (bad[i] as number) ^ 0xff;
      const r = parseSnapshotFile(bad);
      expect(r.ok, `byte ${i}`).toBe(false);
    }
  });

  it.each([
    [
      "another format version",
      (b: Buffer) => b.writeUInt32LE(FORMAT_VERSION + 1, 8),
      `format version ${FORMAT_VERSION + 1}, this build reads version 1`,
    ],
    ["a chunk's byte changed", (b: Buffer) => b.writeUInt8(0x55, b.length - 17), "checksum mismatch in chunk 1"],
    ["another file", (b: Buffer) => b.write("GIF89a..", 0, "latin1"), "not a tokenmesh snapshot (no TMSNAPSH magic at the start)"],
  ])("names the problem: %s", async (_what, spoil, reason) => {
    const { bytes } = await written();
    const bad = Buffer.from(bytes);
    spoil(bad);
    expect(parseSnapshotFile(bad)).toEqual({ ok: false, error: reason });
  });

  it("refuses bytes after the trailer", async () => {
    const { bytes } = await written();
    expect(parseSnapshotFile(Buffer.concat([bytes, Buffer.from([0])]))).toEqual({ ok: false, error: "1 bytes after the trailer" });
  });
});

describe("snapshot directory", () => {
  it("loads the base and its increments, and continues the series", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapdir-"));
    const d = new SnapshotDirectory(dir, id, undefined);
    expect(d.needsBase).toBe(true);
    await d.write("base", "", 1, 1, [new Uint8Array([1])]);
    await d.write("increment", "", 1, 2, [new Uint8Array([2])]);
    await d.write("increment", "", 1, 3, [new Uint8Array([3])]);
    writeFileSync(join(dir, ".increment-000003.tms.tmp"), "half a write");
    const scan = scanSnapshotDirectory(dir, id);
    expect(scan.refused).toBeUndefined();
    expect(scan.files.map((f) => [f.name, [...(f.chunks[0] as Uint8Array)]])).toEqual([
      ["base.tms", [1]],
      ["increment-000001.tms", [2]],
      ["increment-000002.tms", [3]],
    ]);
    expect(scan.position?.nextSequence).toBe(3);
    expect(readdirSync(dir).some((n) => n.endsWith(".tmp"))).toBe(false);
    // A new base deletes the old increments; a leftover of the old generation would be ignored.
    const again = new SnapshotDirectory(dir, id, scan.position);
    await again.write("base", "", 1, 4, [new Uint8Array([4])]);
    expect(readdirSync(dir).sort()).toEqual(["base.tms"]);
  });

  it("ends the series at the first refused increment", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapdir-"));
    const d = new SnapshotDirectory(dir, id, undefined);
    await d.write("base", "", 1, 1, [new Uint8Array([1])]);
    await d.write("increment", "", 1, 2, [new Uint8Array([2])]);
    await d.write("increment", "", 1, 3, [new Uint8Array([3])]);
    const first = join(dir, "increment-000001.tms");
    writeFileSync(first, readFileSync(first).subarray(0, 30));
    const scan = scanSnapshotDirectory(dir, id);
    expect(scan.files.map((f) => f.name)).toEqual(["base.tms"]);
    expect(scan.refused).toEqual({ file: "increment-000001.tms", reason: expect.stringMatching(/^truncated: /) });
    expect(scan.position).toBeUndefined();
  });

  it.each([
    [{ kind: "mesh", node: "n1", cluster: "c" }, "written by a standalone replica; this one is a mesh replica"],
    [{ kind: "standalone", node: "other", cluster: "" }, undefined],
  ] as const)("checks who wrote it: %j", async (reader, reason) => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapdir-"));
    await new SnapshotDirectory(dir, id, undefined).write("base", "", 1, 1, [new Uint8Array([1])]);
    expect(scanSnapshotDirectory(dir, reader).refused?.reason).toBe(reason);
  });

  it("refuses a mesh snapshot of another node or cluster", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tokenmesh-snapdir-"));
    const mesh = { kind: "mesh", node: "a", cluster: "prod" } as const;
    await new SnapshotDirectory(dir, mesh, undefined).write("base", "inc", 1, 1, [new Uint8Array([1])]);
    expect(scanSnapshotDirectory(dir, { ...mesh, node: "b" }).refused?.reason).toBe(
      'written by node "a" of cluster "prod"; this is node "b" of cluster "prod"',
    );
    expect(scanSnapshotDirectory(dir, mesh).files).toHaveLength(1);
  });
});
