// Where a decision's time goes at one call in flight: the same sequential Consume made through
// each layer of the client stack, against one tokenmesh replica in its own process, so the cost
// of each layer is the difference between two neighbouring rows.
//
//   bare http2      node:http2 with a pre-encoded body (no gRPC library at all)
//   raw h2 frames   HTTP/2 frames written by hand on a node:net socket, answers taken from the
//                   DATA frames, headers and trailers not decoded: the lower bound of a
//                   hand-written HTTP/2 framing on the client (an experiment, not a client)
//   grpc-js         @grpc/grpc-js makeUnaryRequest with the protobuf-es codecs
//   health          grpc.health.v1 Check through nice-grpc: the "bare health check"
//   nice-grpc       createClient (per-call AbortController, Metadata, async wrappers)
//   limiter         createLimiter with batching off, then with the default batching (the
//                   published client: on nice-grpc before issue 13, on node:http2 since)
//
// Variants run in alternating rounds (A B C ... A B C) and each row is the median over rounds,
// with the client's and the server's CPU per call (from process.cpuUsage and /proc). Pin it to
// the other core than the server for figures like the bench's:
//   taskset -c 1 npx tsx clients/typescript/bench/call-latency.ts [--calls 2000] [--rounds 3]
//     [--only VARIANT]...          (repeatable: variant names contain commas)
//     [--server tokenmesh|floor|floor-nice]   (floor: bench/baselines/floor-server.ts, plain
//                                   grpc-js; floor-nice: the same through nice-grpc)
//     [--server-cpu-prof DIR]      (a V8 CPU profile of the server, written when it exits;
//                                   summarise with bench/tools/profile-summary.ts)
// The server is pinned to CPU 0 with taskset.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { ConsumeRequestSchema, ConsumeResponseSchema, RateLimiter } from "../../../src/gen/tokenmesh/v1/rate_limiter_pb.ts";
import { niceDefinition } from "../../../src/grpc/service-definition.ts";
import { createLimiter } from "../src/index.ts";

const { values } = parseArgs({
  options: {
    calls: { type: "string", default: "2000" },
    rounds: { type: "string", default: "3" },
    only: { type: "string", multiple: true },
    server: { type: "string", default: "tokenmesh" },
    "server-cpu-prof": { type: "string" },
  },
});
const calls = Number(values.calls);
const rounds = Number(values.rounds);
const repoRoot = resolve(import.meta.dirname, "../../..");
const PATH = "/tokenmesh.v1.RateLimiter/Consume";

const keyOf = (i: number): string => `k${String((i * 7919) % 10_000).padStart(7, "0")}`;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === "object" && address !== null ? address.port : 0;
}

type Call = (i: number) => Promise<unknown>;
interface Variant {
  readonly name: string;
  open(address: string): Promise<{ call: Call; close(): void | Promise<void> }>;
}

function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

const requestBytes = (i: number): Uint8Array =>
  toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, { decisions: [{ buckets: [{ policy: "bench", key: keyOf(i) }] }] }));

const variants: readonly Variant[] = [
  {
    name: "bare http2",
    async open(address) {
      const session = http2.connect(`http://${address}`);
      await new Promise<void>((r, j) => session.once("connect", () => r()).once("error", j));
      const headers = { ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers" };
      const call: Call = (i) =>
        new Promise((r, j) => {
          const stream = session.request(headers);
          const chunks: Buffer[] = [];
          stream.on("data", (c: Buffer) => chunks.push(c));
          stream.on("trailers", (t) => (t["grpc-status"] === "0" ? undefined : j(new Error(`grpc-status ${String(t["grpc-status"])}`))));
          stream.on("end", () => r(Buffer.concat(chunks)));
          stream.on("error", j);
          stream.end(frame(requestBytes(i)));
        });
      return { call, close: () => void session.close() };
    },
  },
  {
    // An experiment, not a client: what a hand-written HTTP/2 framing on a bare socket could
    // reach at best. Pre-encoded HPACK (literals, no table), huge windows set once, and the answer
    // taken at the end of its gRPC message; the response headers and trailers are skipped, not
    // decoded (a real client must HPACK-decode them for grpc-status), so this is a lower bound.
    name: "raw h2 frames (lower bound)",
    async open(address) {
      const [host, portText] = address.split(":") as [string, string];
      const socket = netConnect({ host, port: Number(portText), noDelay: true });
      await new Promise<void>((r, j) => socket.once("connect", () => r()).once("error", j));
      const frameOf = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
        const out = Buffer.allocUnsafe(9 + payload.length);
        out.writeUIntBE(payload.length, 0, 3);
        out[3] = type;
        out[4] = flags;
        out.writeUInt32BE(stream, 5);
        payload.copy(out, 9);
        return out;
      };
      const settings = Buffer.alloc(6);
      settings.writeUInt16BE(4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
      settings.writeUInt32BE(2 ** 31 - 1, 2);
      const window = Buffer.alloc(4);
      window.writeUInt32BE(2 ** 31 - 1 - 65_535, 0);
      socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frameOf(4, 0, 0, settings), frameOf(8, 0, 0, window)]));
      const literal = (nameIndex: number, value: string): Buffer => Buffer.from([nameIndex, value.length, ...Buffer.from(value)]);
      const block = Buffer.concat([
        Buffer.from([0x83, 0x86]), // :method POST, :scheme http (static table)
        literal(0x04, PATH),
        literal(0x01, address),
        Buffer.from([0x0f, 0x10, 16, ...Buffer.from("application/grpc")]), // content-type, index 31
        Buffer.from([0x00, 2, ...Buffer.from("te"), 8, ...Buffer.from("trailers")]),
      ]);
      let nextStream = 1;
      let pending: { stream: number; chunks: Buffer[]; got: number; resolve: (b: Buffer) => void } | undefined;
      let buffered: Buffer = Buffer.alloc(0);
      socket.on("data", (chunk: Buffer) => {
        buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
        while (buffered.length >= 9) {
          const length = buffered.readUIntBE(0, 3);
          if (buffered.length < 9 + length) break;
          const type = buffered[3] as number;
          const flags = buffered[4] as number;
          const stream = buffered.readUInt32BE(5) & 0x7fffffff;
          const payload = buffered.subarray(9, 9 + length);
          buffered = buffered.subarray(9 + length);
          if (type === 4 && (flags & 1) === 0) socket.write(frameOf(4, 1, 0, Buffer.alloc(0))); // SETTINGS ack
          if (type === 6 && (flags & 1) === 0) socket.write(frameOf(6, 1, 0, Buffer.from(payload))); // PING ack
          if (type === 0 && pending !== undefined && stream === pending.stream) {
            pending.chunks.push(Buffer.from(payload));
            pending.got += payload.length;
            const all = Buffer.concat(pending.chunks);
            if (all.length >= 5 && all.length >= 5 + all.readUInt32BE(1)) {
              const done = pending;
              pending = undefined;
              done.resolve(all.subarray(5));
            }
          }
        }
      });
      const call: Call = (i) =>
        new Promise<Buffer>((resolve) => {
          const stream = nextStream;
          nextStream += 2;
          pending = { stream, chunks: [], got: 0, resolve };
          socket.write(Buffer.concat([frameOf(1, 0x4, stream, block), frameOf(0, 0x1, stream, frame(requestBytes(i)))]));
        });
      // The one check it makes: the server answered a well-formed ConsumeResponse (one result).
      const first = fromBinary(ConsumeResponseSchema, (await call(0)) as Buffer);
      if (first.results.length !== 1) throw new Error(`raw h2 frames: expected 1 result, got ${first.results.length}`);
      return { call, close: () => void socket.destroy() };
    },
  },
  {
    name: "grpc-js",
    async open(address) {
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      const call: Call = (i) =>
        new Promise((r, j) =>
          client.makeUnaryRequest(
            PATH,
            (bytes: Uint8Array) => Buffer.from(bytes),
            (b: Buffer) => fromBinary(ConsumeResponseSchema, b),
            requestBytes(i),
            (err, value) => (err ? j(err) : r(value)),
          ),
        );
      return { call, close: () => client.close() };
    },
  },
  {
    name: "health (nice-grpc)",
    async open(address) {
      const channel = createChannel(address);
      const client = createClient(HealthDefinition, channel);
      return { call: () => client.check({ service: "" }), close: () => channel.close() };
    },
  },
  {
    name: "nice-grpc",
    async open(address) {
      const channel = createChannel(address);
      const client = createClient(niceDefinition(RateLimiter), channel);
      const call: Call = (i) => client.consume({ decisions: [{ buckets: [{ policy: "bench", key: keyOf(i) }] }] });
      return { call, close: () => channel.close() };
    },
  },
  {
    name: "limiter, batch: false",
    async open(address) {
      const limiter = createLimiter({ address, batch: false, deadlineMs: 5000 });
      return { call: (i) => limiter.consume({ policy: "bench", key: keyOf(i) }), close: () => limiter.close() };
    },
  },
  {
    name: "limiter, default",
    async open(address) {
      const limiter = createLimiter({ address, deadlineMs: 5000 });
      return { call: (i) => limiter.consume({ policy: "bench", key: keyOf(i) }), close: () => limiter.close() };
    },
  },
];

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? (s[s.length >> 1] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
const percentile = (sorted: Float64Array, p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;

interface Figures {
  p50: number;
  p99: number;
  cpuUs: number;
  serverCpuUs: number;
}

/** CPU seconds (user + system) of a process so far, from /proc (ticks of 10 ms). */
function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(v: Variant, address: string, serverPid: number): Promise<Figures> {
  const opened = await v.open(address);
  for (let i = 0; i < 200; i++) await opened.call(i); // connect, JIT
  const lat = new Float64Array(calls);
  const cpu0 = process.cpuUsage();
  const server0 = cpuSecondsOf(serverPid);
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await opened.call(i);
    lat[i] = (performance.now() - t) * 1000;
  }
  const cpu = process.cpuUsage(cpu0);
  const serverCpuUs = ((cpuSecondsOf(serverPid) - server0) * 1e6) / calls;
  await opened.close();
  lat.sort();
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), cpuUs: (cpu.user + cpu.system) / calls, serverCpuUs };
}

async function main(): Promise<void> {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), "tokenmesh-call-latency-"));
  const config = join(dir, "config.yaml");
  await writeFile(
    config,
    `listen: 127.0.0.1:${port}\nmetricsListen: null\nhttpListen: null\nlogLevel: info\npolicies:\n  bench: { capacity: 1000000000, refill: 1000000000, per: 1s }\n`,
  );
  const floorScripts: Record<string, string> = {
    floor: "bench/baselines/floor-server.ts",
    "floor-nice": "bench/baselines/floor-nice-server.ts",
  };
  const floorScript = floorScripts[values.server];
  const floor = floorScript !== undefined;
  if (!floor && values.server !== "tokenmesh") throw new TypeError(`--server must be tokenmesh, floor or floor-nice, got ${values.server}`);
  const profile = values["server-cpu-prof"] === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", resolve(values["server-cpu-prof"])];
  const serverArgs = floor
    ? [...profile, "--import", "tsx", join(repoRoot, floorScript)]
    : [...profile, join(repoRoot, "bin/tokenmesh.mjs"), "serve", "--config", config];
  const child = spawn("taskset", ["-c", "0", process.execPath, ...serverArgs], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
  const address = await new Promise<string>((r, j) => {
    child.stdout.on("data", (d: Buffer) => {
      const text = d.toString();
      if (text.includes("tokenmesh serving")) r(`127.0.0.1:${port}`);
      const ready = /READY (\{.*\})/.exec(text);
      if (ready !== null) r(`127.0.0.1:${(JSON.parse(ready[1] as string) as { port: number }).port}`);
    });
    child.once("exit", (code) => j(new Error(`server exited ${code}`)));
  });
  // The floors serve only RateLimiter (no health service).
  const offered = floor ? variants.filter((v) => !v.name.startsWith("health")) : variants;
  const chosen = values.only === undefined ? offered : offered.filter((v) => values.only?.includes(v.name));
  const got = new Map<string, Figures[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const v of chosen) got.set(v.name, [...(got.get(v.name) ?? []), await measure(v, address, child.pid as number)]);
    }
  } finally {
    // Waited for: the server writes its CPU profile as it exits.
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    if (child.exitCode === null) await exited;
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`${calls} sequential calls per variant against ${values.server}, ${rounds} rounds, medians (us)`);
  console.log("| variant | p50 | p99 | client CPU/call | server CPU/call |\n|---|---|---|---|---|");
  for (const v of chosen) {
    const ms = got.get(v.name) ?? [];
    const f = (pick: (m: Figures) => number): string => median(ms.map(pick)).toFixed(0);
    console.log(`| ${v.name} | ${f((m) => m.p50)} | ${f((m) => m.p99)} | ${f((m) => m.cpuUs)} | ${f((m) => m.serverCpuUs)} |`);
  }
}

await main();
