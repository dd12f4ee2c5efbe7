// tokenmesh_build_info's labels: the version from package.json and the commit from the
// environment, a BUILD_COMMIT file written by a build, or git in a checkout; "unknown" otherwise.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot, resolveBuildInfo } from "../../src/metrics/build-info.ts";
import { REPO_ROOT } from "../support/process.ts";

const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;

/** A directory shaped like an installed build: package.json, optionally BUILD_COMMIT, a nested module dir. */
function fakeInstall(commitFile?: string): string {
  const root = mkdtempSync(join(tmpdir(), "tokenmesh-build-"));
  writeFileSync(join(root, "package.json"), JSON.stringify({ name: "tokenmesh", version: "9.8.7" }));
  if (commitFile !== undefined) writeFileSync(join(root, "BUILD_COMMIT"), commitFile);
  mkdirSync(join(root, "dist", "metrics"), { recursive: true });
  return root;
}

describe("build info", () => {
  it("in this checkout: package.json's version and git's commit", async () => {
    expect(packageRoot()).toBe(REPO_ROOT.replace(/\/$/, ""));
    const info = resolveBuildInfo({});
    expect(info.version).toBe(version);
    const head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: REPO_ROOT }).toString().trim();
    expect(await info.commit).toBe(head);
  });

  it("TOKENMESH_COMMIT wins over everything; a value unfit for a label is ignored", async () => {
    const root = fakeInstall("abc123\n");
    expect(await resolveBuildInfo({ TOKENMESH_COMMIT: "deadbeef01" }, root).commit).toBe("deadbeef01");
    expect(await resolveBuildInfo({ TOKENMESH_COMMIT: 'x"} 1\nevil' }, root).commit).toBe("abc123");
  });

  it("a build output finds its package root from below and reads BUILD_COMMIT", async () => {
    const root = fakeInstall("0123456789ab\n");
    expect(packageRoot(join(root, "dist", "metrics"))).toBe(root);
    const info = resolveBuildInfo({}, root);
    expect(info.version).toBe("9.8.7");
    expect(await info.commit).toBe("0123456789ab");
  });

  it('says "unknown" with no commit source, and without a readable package.json', async () => {
    expect(await resolveBuildInfo({}, fakeInstall()).commit).toBe("unknown");
    expect(packageRoot(tmpdir())).toBeUndefined();
    const none = resolveBuildInfo({}, mkdtempSync(join(tmpdir(), "tokenmesh-empty-")));
    expect(none.version).toBe("unknown");
    expect(await none.commit).toBe("unknown");
  });
});
