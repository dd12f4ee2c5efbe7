// Where the peers are: static addresses from the config, plus every address a DNS name resolves
// to (the Kubernetes headless-service pattern), re-resolved periodically. A failed lookup keeps
// the last answer: a DNS hiccup must not disconnect the mesh.

import { lookup } from "node:dns/promises";

export interface DiscoverySource {
  readonly statics: readonly string[];
  readonly dns?: { readonly name: string; readonly port: number };
  /** This replica's own peer address, never dialed. */
  readonly self: string;
}

export type Resolve = (name: string) => Promise<readonly string[]>;

export const systemResolve: Resolve = async (name) => (await lookup(name, { all: true })).map((a) => a.address);

const withPort = (ip: string, port: number): string => (ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`);

export class PeerDiscovery {
  #lastDns: readonly string[] = [];

  constructor(
    private readonly source: DiscoverySource,
    private readonly resolve: Resolve = systemResolve,
  ) {}

  /** The current set of peer addresses (sorted, without this replica's own). */
  async addresses(): Promise<string[]> {
    const { dns, statics, self } = this.source;
    if (dns !== undefined) {
      try {
        this.#lastDns = (await this.resolve(dns.name)).map((ip) => withPort(ip, dns.port));
      } catch {
        // keep the last answer
      }
    }
    return [...new Set([...statics, ...this.#lastDns])].filter((a) => a !== self).sort();
  }
}
