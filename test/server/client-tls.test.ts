// TLS on the client port: a client that trusts the server's CA gets answers (through nice-grpc,
// the published TypeScript client and the CLI); a plaintext client does not; with a client CA
// configured, only clients with a certificate it signed get in.

import { ChannelCredentials } from "@grpc/grpc-js";
import { ClientError, createChannel, createClient, Status } from "nice-grpc";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLimiter } from "../../clients/typescript/src/index.ts";
import { resolveConfig } from "../../src/config/load.ts";
import { type RunningServer, startServer } from "../../src/server/tokenmesh-server.ts";
import { runCli } from "../support/process.ts";
import { rateLimiterDefinition } from "../support/server.ts";
import { makeTestPki, type TestPki } from "../support/test-certs.ts";

const request = { decisions: [{ buckets: [{ policy: "api", key: "tls" }] }] };

async function serve(tls: Record<string, string>): Promise<RunningServer> {
  const config = resolveConfig(
    {
      listen: "127.0.0.1:0",
      metricsListen: null,
      httpListen: null,
      logLevel: "silent",
      dataDir: null,
      tls,
      policies: { api: { capacity: 100, refill: 1, per: "1s" } },
    },
    "tls",
  );
  return startServer({ config, log: pino({ level: "silent" }) });
}

async function call(port: number, credentials: ChannelCredentials): Promise<Status> {
  const channel = createChannel(`127.0.0.1:${port}`, credentials);
  try {
    await createClient(rateLimiterDefinition, channel).consume(request, { signal: AbortSignal.timeout(3_000) });
    return Status.OK;
  } catch (err) {
    return err instanceof ClientError ? err.code : Status.UNKNOWN;
  } finally {
    channel.close();
  }
}

describe("TLS on the client port", () => {
  let pki: TestPki;
  let server: RunningServer;
  let mutual: RunningServer;
  let caPath: string;
  let clientFiles: { cert: string; key: string };
  beforeAll(async () => {
    pki = makeTestPki();
    const serverFiles = pki.replica("server");
    const client = pki.replica("client");
    caPath = serverFiles.ca;
    clientFiles = { cert: client.cert, key: client.key };
    server = await serve({ cert: serverFiles.cert, key: serverFiles.key });
    mutual = await serve({ cert: serverFiles.cert, key: serverFiles.key, clientCa: serverFiles.ca });
  });
  afterAll(async () => {
    await server.shutdown();
    await mutual.shutdown();
  });

  it("answers a client that trusts its CA, and not a plaintext one", async () => {
    expect(await call(server.port, ChannelCredentials.createSsl(pki.read(caPath)))).toBe(Status.OK);
    expect(await call(server.port, ChannelCredentials.createInsecure())).toBe(Status.UNAVAILABLE);
  });

  it("with a client CA, requires a client certificate it signed", async () => {
    expect(await call(mutual.port, ChannelCredentials.createSsl(pki.read(caPath)))).toBe(Status.UNAVAILABLE);
    const withCert = ChannelCredentials.createSsl(pki.read(caPath), pki.read(clientFiles.key), pki.read(clientFiles.cert));
    expect(await call(mutual.port, withCert)).toBe(Status.OK);
  });

  it("works from the TypeScript client package", async () => {
    const limiter = createLimiter({ address: `127.0.0.1:${server.port}`, tls: { rootCerts: pki.read(caPath) } });
    try {
      const r = await limiter.consume({ policy: "api", key: "ts-client" });
      expect(r.allowed).toBe(true);
    } finally {
      await limiter.close();
    }
  });

  it("works from the CLI with --tls-ca (and mutual TLS with --tls-cert/--tls-key)", async () => {
    const plain = await runCli(["consume", "--address", `127.0.0.1:${server.port}`, "--policy", "api", "--key", "cli", "--tls-ca", caPath]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^allowed {2}api\/cli/);
    const args = ["consume", "--address", `127.0.0.1:${mutual.port}`, "--policy", "api", "--key", "cli", "--tls-ca", caPath];
    expect((await runCli(args)).code).toBe(2);
    expect((await runCli([...args, "--tls-cert", clientFiles.cert, "--tls-key", clientFiles.key])).code).toBe(0);
  });
});
