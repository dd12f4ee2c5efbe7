// The peer port's listening socket, owned here rather than by grpc-js, so that what never
// reaches a Merge stream is still bounded and counted (tokenmesh_peer_rejected_total):
//
//   too_many_connections  more than mesh.maxConnections open at once (in insecure mode none is
//                         authenticated, so this is what bounds them); closed at once
//   tls                   with mesh.tls: a handshake that failed (a certificate of another CA,
//                         none at all, plaintext, or none within the hello timeout)
//   not_http2             bytes that are not the HTTP/2 client preface followed by a SETTINGS
//                         frame (RFC 9113 section 3.4), or no preface within the hello timeout;
//                         closed at once, before grpc-js sees them
//
// A connection that passes goes to the grpc-js server through its connection injector (a plain
// one: TLS, when configured, is terminated here with the same verification grpc-js would do, and
// the TLS socket handed on still answers grpc-js's getAuthContext with the verified certificate).

import { readFileSync } from "node:fs";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { type Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import type { TlsFiles } from "./peer-transport.ts";

export type PortRejection = "not_http2" | "tls" | "too_many_connections";

export interface PeerListenerOptions {
  readonly address: string;
  readonly tls: TlsFiles | undefined;
  readonly maxConnections: number;
  /** A connection must complete TLS and send the HTTP/2 preface within this long. */
  readonly prefaceTimeoutMs: number;
  readonly onRejected: (reason: PortRejection, detail: string, remote: string) => void;
}

export interface PeerListener {
  readonly port: number;
  close(): void;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
/** The preface, then the first frame's 9-byte header, which must be a SETTINGS frame. */
const CHECKED = PREFACE.length + 9;
const SETTINGS = 0x4;

const remoteOf = (s: Socket): string => `${s.remoteAddress ?? "?"}:${s.remotePort ?? "?"}`;

/** What is wrong with the first bytes of a connection, or undefined if they may be HTTP/2. */
function prefaceProblem(b: Buffer): string | undefined {
  const n = Math.min(b.length, PREFACE.length);
  if (!b.subarray(0, n).equals(PREFACE.subarray(0, n))) return "sent bytes that are not the HTTP/2 client preface";
  if (b.length >= CHECKED && (b[PREFACE.length + 3] !== SETTINGS || (b[PREFACE.length + 4] as number) & 1)) {
    return "sent a frame other than SETTINGS after the HTTP/2 preface";
  }
  return undefined;
}

export function listenForPeers(grpc: GrpcServer, o: PeerListenerOptions): Promise<PeerListener> {
  const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
  const open = new Set<Socket>();

  const admitted = (socket: Socket): boolean => {
    if (open.size >= o.maxConnections) {
      o.onRejected("too_many_connections", `over mesh.maxConnections (${o.maxConnections})`, remoteOf(socket));
      socket.destroy();
      return false;
    }
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    return true;
  };

  /** Reads the first bytes; hands the connection to grpc-js only if they are HTTP/2. */
  const checkPreface = (socket: Socket, remote: string): void => {
    let seen = Buffer.alloc(0);
    const timer = setTimeout(() => reject(`sent no HTTP/2 preface within ${o.prefaceTimeoutMs} ms`), o.prefaceTimeoutMs);
    const reject = (detail: string): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      o.onRejected("not_http2", detail, remote);
      socket.destroy();
    };
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const problem = prefaceProblem(seen);
      if (problem !== undefined) {
        reject(problem);
        return;
      }
      if (seen.length < CHECKED) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen); // node:http2 takes what was already read before reading the socket
      injector.injectConnection(socket);
    };
    socket.on("data", onData);
    socket.once("close", () => clearTimeout(timer));
  };

  let front: NetServer;
  if (o.tls === undefined) {
    front = createNetServer((socket) => {
      if (admitted(socket)) checkPreface(socket, remoteOf(socket));
    });
  } else {
    const tls = createTlsServer({
      ca: readFileSync(o.tls.ca),
      cert: readFileSync(o.tls.cert),
      key: readFileSync(o.tls.key),
      // As grpc-js's own TLS would: a client certificate from the cluster CA is required.
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ["h2"],
      handshakeTimeout: o.prefaceTimeoutMs,
    });
    tls.on("connection", (socket: Socket) => {
      admitted(socket);
    });
    tls.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      o.onRejected("tls", err.code ?? err.message, remoteOf(socket));
      socket.destroy();
    });
    tls.on("secureConnection", (socket: TLSSocket) => {
      const remote = remoteOf(socket);
      if (socket.alpnProtocol !== "h2") {
        o.onRejected("not_http2", `negotiated ${JSON.stringify(socket.alpnProtocol)} instead of h2 over TLS`, remote);
        socket.destroy();
        return;
      }
      checkPreface(socket, remote);
    });
    front = tls;
  }
  const at = o.address.lastIndexOf(":");
  const host = o.address.slice(0, at).replace(/^\[|\]$/g, "");
  return new Promise((resolve, reject) => {
    front.once("error", reject);
    front.listen(Number(o.address.slice(at + 1)), host, () => {
      front.off("error", reject);
      const bound = front.address();
      resolve({
        port: typeof bound === "object" && bound !== null ? bound.port : 0,
        close() {
          front.close();
          for (const s of open) s.destroy();
          injector.destroy();
        },
      });
    });
  });
}
