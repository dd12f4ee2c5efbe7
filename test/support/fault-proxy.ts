// A fault-injecting TCP proxy between two replicas, owned by the test suite: forwards bytes from
// a loopback port to a target, and can delay traffic, cut every connection (a partition), go
// silent (a cut that closes nothing) and resume. Loopback only; closes everything on `close()`.

import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";

export interface FaultProxy {
  readonly port: number;
  /** Adds `ms` of one-way delay to every chunk in both directions (0 to remove). */
  setDelay(ms: number): void;
  /** Destroys open connections and refuses new ones until `resume()`. */
  cut(): void;
  /**
   * A silent cut: connections stay open (no FIN, no RST) and new ones are accepted, but no byte
   * gets through either way, as when a route is dropped or a firewall discards packets. Only a
   * ping that goes unanswered can tell.
   */
  silence(): void;
  /** Ends a cut or a silence (connections that were silenced are closed: bytes were lost on them). */
  resume(): void;
  /** Bytes forwarded so far, each direction summed. */
  bytes(): number;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<FaultProxy> {
  let delayMs = 0;
  let isCut = false;
  let isSilent = false;
  let forwarded = 0;
  const sockets = new Set<Socket>();
  const silenced = new Set<Socket>();

  const pipeWithDelay = (from: Socket, to: Socket): void => {
    from.on("data", (chunk: Buffer) => {
      if (isSilent) {
        silenced.add(from);
        return;
      }
      forwarded += chunk.length;
      if (delayMs === 0) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      // Chunks keep their order: every chunk waits the same delay from its arrival.
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, delayMs);
    });
    from.on("end", () => setTimeout(() => to.end(), delayMs));
  };

  const server: Server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    pipeWithDelay(client, upstream);
    pipeWithDelay(upstream, client);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;

  return {
    port,
    setDelay(ms) {
      delayMs = ms;
    },
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
    },
    silence() {
      isSilent = true;
      for (const s of sockets) silenced.add(s);
    },
    resume() {
      isCut = false;
      isSilent = false;
      for (const s of silenced) s.destroy();
      silenced.clear();
    },
    bytes: () => forwarded,
    async close() {
      isCut = true;
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, "close");
    },
  };
}
