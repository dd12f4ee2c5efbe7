// The command line's own answers: --version and --help (top level and per command) exit 0; an
// unknown option is named and answered with that command's usage; an address that cannot reach
// a server (a bare port, no port) is explained before anything is dialled; `tokenmesh health`
// reports the server's grpc.health.v1 status with its exit code.

import { readFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { COMMANDS } from "../../src/cli/command-line.ts";
import { main } from "../../src/cli/main.ts";
import { REPO_ROOT, runCli } from "../support/process.ts";
import { startTestServer, type TestServer } from "../support/server.ts";

const { version } = JSON.parse(readFileSync(`${REPO_ROOT}package.json`, "utf8")) as { version: string };

/** Runs the CLI's main() in this process and collects what it printed. */
async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("tokenmesh --version and --help", () => {
  it("prints the version from the real entry script and exits 0", async () => {
    const r = await runCli(["--version"]);
    expect(r).toMatchObject({ code: 0, stdout: `tokenmesh ${version}\n`, stderr: "" });
  });

  it("prints the command list from the real entry script and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    for (const command of COMMANDS) expect(r.stdout).toContain(`  ${command}`);
  });

  it.each(COMMANDS)("%s --help prints that command's usage on stdout and exits 0", async (command) => {
    const r = await cli(command, "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: tokenmesh ${command}\\b`));
    expect(r.stderr).toBe("");
  });

  it("-h works like --help, even beside options the command needs", async () => {
    const r = await cli("consume", "-h");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--policy P");
  });

  it("with no command, says so and prints the command list on stderr with exit 2", async () => {
    const r = await cli();
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("which command?");
    expect(r.stderr).toContain("commands:");
  });
});

describe("bad arguments", () => {
  it.each(COMMANDS)("%s names an unknown option and prints its usage, exit 2", async (command) => {
    const r = await cli(command, "--colour", "red");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^tokenmesh: ${command}: .*'--colour'`));
    expect(r.stderr).toContain(`usage: tokenmesh ${command}`);
    expect(r.stdout).toBe("");
  });

  it("names an unknown command", async () => {
    const r = await cli("consum", "--policy", "p");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "consum" (commands: serve, local-mesh, consume, query, should-rate-limit, health)');
  });

  it("names an unknown top-level option", async () => {
    const r = await cli("--verbose");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option --verbose");
  });

  it("an option that needs a value says so", async () => {
    const r = await cli("consume", "--policy", "p", "--key");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--key");
    expect(r.stderr).toContain("usage: tokenmesh consume");
  });

  it.each([
    [
      ["consume", "--policy", "p", "--key", "k", "--address", "50051"],
      "--address 50051 is a port without a host: did you mean 127.0.0.1:50051?",
    ],
    [["query", "--policy", "p", "--key", "k", "--address", "localhost"], "--address localhost has no port: did you mean localhost:50051?"],
    [["health", "--address", "7051"], "--address 7051 is a port without a host: did you mean 127.0.0.1:7051?"],
    [["consume", "--policy", "p", "--key", "k", "--cost", "two"], "--cost must be a whole number of at least 0, got two"],
    [["health", "--timeout-ms", "0"], "--timeout-ms must be a whole number of at least 1, got 0"],
    [["consume", "--policy", "p", "--key", "k", "--tls-cert", "c.pem"], "--tls-cert and --tls-key need --tls-ca (the server's CA)"],
    [["consume", "--policy", "p"], "consume needs --policy and --key"],
    [["serve"], "serve needs --config FILE"],
    [["local-mesh"], "local-mesh needs one or more config files"],
  ])("%j is explained before anything connects", async (argv, message) => {
    const r = await cli(...argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain("UNIMPLEMENTED");
  });
});

describe("tokenmesh health", () => {
  let server: TestServer;
  let address: string;
  beforeAll(async () => {
    server = await startTestServer({ policies: { api: { capacity: 1, refill: 1, per: "1s" } } });
    address = `127.0.0.1:${server.server.port}`;
  });
  afterAll(async () => {
    await server.close();
  });

  it("prints SERVING and exits 0 for the process", async () => {
    const r = await cli("health", "--address", address);
    expect(r).toMatchObject({ code: 0, stdout: "SERVING\n" });
  });

  it("asks about one service with --service", async () => {
    const r = await cli("health", "--address", address, "--service", "tokenmesh.v1.RateLimiter");
    expect(r).toMatchObject({ code: 0, stdout: "SERVING  tokenmesh.v1.RateLimiter\n" });
  });

  it("exits 2 naming the status for a service the server does not have", async () => {
    const r = await cli("health", "--address", address, "--service", "nope.v1.Nothing");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tokenmesh health: NOT_FOUND/);
  });

  it("exits 2 when nothing listens", async () => {
    const r = await cli("health", "--address", "127.0.0.1:1", "--timeout-ms", "500");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tokenmesh health: (UNAVAILABLE|DEADLINE_EXCEEDED|CANCELLED|AbortError)/);
  });

  it("exits 1 with NOT_SERVING for the RateLimiter while a mesh replica warms up", async () => {
    // Its only peer never answers and the warm-up lasts a minute: the process is up, not admitting.
    const warming = await startTestServer({
      policies: { api: { capacity: 1, refill: 1, per: "1s" } },
      mesh: { node: "r1", peerListen: "127.0.0.1:0", peers: ["127.0.0.1:1"], insecure: true, warmupTimeout: "1m" },
    });
    try {
      const at = `127.0.0.1:${warming.server.port}`;
      expect(await cli("health", "--address", at)).toMatchObject({ code: 0, stdout: "SERVING\n" });
      expect(await cli("health", "--address", at, "--service", "tokenmesh.v1.RateLimiter")).toMatchObject({
        code: 1,
        stdout: "NOT_SERVING  tokenmesh.v1.RateLimiter\n",
      });
    } finally {
      await warming.close();
    }
  });
});
