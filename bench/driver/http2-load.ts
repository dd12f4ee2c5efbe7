// A gRPC load loop on bare node:http2: pre-framed bodies, status read from the trailers, nothing
// decoded. A grpc-js client spends about three times the server's CPU per call and cannot load
// a server on this machine; bare HTTP/2 streams cost the client much less.

import http2 from "node:http2";
import { consumeTemplate } from "../lib/bodies.ts";
import { keySampler } from "../lib/keys.ts";
import { summarise } from "../lib/stats.ts";
import type { DriverResult, DriverSpec } from "./spec.ts";

/** Open loop: a send this far behind its schedule counts as late (the driver fell behind). */
const LATE_MS = 5;

/** Open loop gives up on calls beyond this many in flight rather than queue without bound. */
const MAX_IN_FLIGHT = 4096;

const HEADERS = (path: string): http2.OutgoingHttpHeaders => ({
  ":method": "POST",
  ":path": path,
  "content-type": "application/grpc",
  te: "trailers",
});

function connect(address: string): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://${address}`);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

export async function runLoad(spec: DriverSpec): Promise<DriverResult> {
  const sessions = await Promise.all(Array.from({ length: spec.connections }, () => connect(spec.address)));
  const template = consumeTemplate(spec.policy, spec.decisionsPerCall);
  const draw = keySampler(spec.keySpace, spec.seed);
  const headers = HEADERS(spec.path);
  const latencies = new Float64Array(spec.maxRequests);
  const failures: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const measureFrom = t0 + spec.warmupS * 1000;
  const stopAt = measureFrom + spec.durationS * 1000;
  let started = 0;
  let inFlight = 0;
  let ok = 0;
  let recorded = 0;
  let shed = 0;
  // Open loop: latency counts from the actual send, and the worst lag of a send behind its
  // schedule is reported, so a driver that fell behind is visible instead of hidden in the tail.
  let maxLagMs = 0;
  let lateSends = 0;
  let measuredSends = 0;
  let stopping = false;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const fail = (key: string): void => {
    failures[key] = (failures[key] ?? 0) + 1;
  };

  function send(sessionIndex: number, scheduledAt: number, onDone: (() => void) | null): void {
    const sentAt = performance.now();
    if (sentAt >= measureFrom) {
      const lag = sentAt - scheduledAt;
      if (lag > maxLagMs) maxLagMs = lag;
      if (lag > LATE_MS) lateSends++;
      measuredSends++;
    }
    started++;
    inFlight++;
    const session = sessions[sessionIndex] as http2.ClientHttp2Session;
    const stream = session.request(headers);
    let status: string | undefined;
    stream.on("response", (h) => {
      const code = h[":status"];
      if (code !== 200) status = `http-${code}`;
      else if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]); // trailers-only answer
    });
    stream.on("trailers", (t) => {
      if (status === undefined) status = String(t["grpc-status"]);
    });
    stream.on("error", () => {
      status = "transport";
    });
    stream.on("close", () => {
      inFlight--;
      const now = performance.now();
      if (scheduledAt >= measureFrom && now <= stopAt) {
        if (status === "0") {
          ok++;
          if (recorded < latencies.length) latencies[recorded++] = (now - sentAt) * 1000;
        } else fail(status ?? "no-status");
      } else if (status !== "0") fail(status ?? "no-status");
      if (onDone !== null) onDone();
      if (stopping && inFlight === 0) finish();
    });
    stream.resume(); // bodies are not decoded: the status is the check
    stream.end(template.fill(draw));
  }

  const mayStart = (): boolean => !stopping && started < spec.maxRequests && performance.now() < stopAt;

  if (spec.ratePerSecond === null) {
    for (let s = 0; s < sessions.length; s++) {
      const loop = (): void => {
        if (mayStart()) send(s, performance.now(), loop);
        else stopping = true;
      };
      for (let k = 0; k < spec.streamsPerConnection; k++) loop();
    }
  } else {
    const rate = spec.ratePerSecond;
    let scheduled = 0;
    let next = 0;
    const tick = setInterval(() => {
      if (!mayStart()) {
        stopping = true;
        clearInterval(tick);
        if (inFlight === 0) finish();
        return;
      }
      // Call k is due at t0 + k/rate: send every call whose time has come (k <= elapsed * rate),
      // not one period after it (which made every send at low rates count as late).
      const due = Math.floor(((performance.now() - t0) / 1000) * rate) + 1;
      while (scheduled < due && started < spec.maxRequests) {
        const at = t0 + (scheduled / rate) * 1000;
        scheduled++;
        if (inFlight >= MAX_IN_FLIGHT) {
          shed++;
          continue;
        }
        send(next, at, null);
        next = (next + 1) % sessions.length;
      }
    }, 1);
  }
  // Tells the bench when the measured window opens, so it samples the server's CPU over it alone.
  const marker = setTimeout(() => process.stdout.write("MEASURING\n"), spec.warmupS * 1000);
  const endMarker = setTimeout(() => process.stdout.write("MEASURED\n"), (spec.warmupS + spec.durationS) * 1000);
  const bound = setTimeout(() => finish(), (spec.warmupS + spec.durationS) * 1000 + 10_000);
  await done;
  clearTimeout(bound);
  clearTimeout(marker);
  clearTimeout(endMarker);
  const measuredS = Math.min(performance.now(), stopAt) - measureFrom;
  const cpu = process.cpuUsage(cpu0);
  for (const s of sessions) s.destroy();
  return {
    started,
    ok,
    failures,
    measuredS: measuredS / 1000,
    callsPerSecond: ok / (measuredS / 1000),
    latencyUs: summarise(latencies.subarray(0, recorded)),
    shed,
    maxSendLagUs: maxLagMs * 1000,
    lateSendFraction: spec.ratePerSecond === null || measuredSends === 0 ? 0 : lateSends / measuredSends,
    driverCpuS: (cpu.user + cpu.system) / 1e6,
  };
}
