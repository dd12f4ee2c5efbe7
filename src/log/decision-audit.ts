// The audit log of decisions, for teams that must show who was throttled when: one JSON line per
// bucket of a sampled decision (time, node, policy, key or its hash, cost, outcome), on stdout
// beside the process log or appended to a file. Off unless the config has an `audit` section.
//
// Sampling is per decision and per outcome (by default every denial, 1 in 100 allowed), so the
// log stays small at high rates and the lines that matter are all there. A key's hash is the
// first 16 hex digits of its SHA-256: it lets an operator check a given key (hash it and grep)
// without writing keys to disk; it is not secret for keys that can be guessed.

import { createHash } from "node:crypto";
import { mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { type Logger, pino } from "pino";
import type { AuditConfig } from "../config/schema.ts";
import type { ValidDecision } from "../limiter/limiter.ts";
import { lineFormat } from "./logger.ts";

export interface AuditDeps {
  readonly node: string;
  /** The process log: the audit goes through its stream when the destination is stdout. */
  readonly log: Logger;
  /** Uniform in [0, 1), for sampling (injected so tests can fix it). */
  readonly random: () => number;
}

export class AuditOpenError extends Error {
  override readonly name = "AuditOpenError";
}

export const keyHash = (key: string): string => createHash("sha256").update(key).digest("hex").slice(0, 16);

type SonicBoom = ReturnType<typeof pino.destination>;

export class DecisionAudit {
  readonly #out: Logger;
  readonly #file: SonicBoom | undefined;
  readonly #config: AuditConfig;
  readonly #random: () => number;

  /** Opens the destination now, so a path that cannot be written fails start-up with its reason. */
  constructor(config: AuditConfig, deps: AuditDeps) {
    this.#config = config;
    this.#random = deps.random;
    if (config.destination === "stdout") {
      // A child of the process log shares its stream (no interleaved partial lines) but keeps
      // its own level, so `logLevel: warn` does not silence the audit.
      this.#out = deps.log.child({ log: "audit" }, { level: "info" });
      return;
    }
    let fd: number;
    try {
      mkdirSync(dirname(config.destination), { recursive: true });
      fd = openSync(config.destination, "a");
    } catch (err) {
      throw new AuditOpenError(`audit.destination: cannot open ${config.destination} for appending: ${(err as Error).message}`);
    }
    const file = pino.destination({ fd, sync: false });
    // A full disk must not crash the limiter: say so once in the process log, keep serving.
    let reported = false;
    file.on("error", (err: Error) => {
      if (reported) return;
      reported = true;
      deps.log.error({ err: err.message, destination: config.destination }, "audit log write failed; later failures are not logged");
    });
    this.#file = file;
    this.#out = pino({ ...lineFormat(deps.node), level: "info" }, file).child({ log: "audit" });
  }

  /** Called once per consumed decision, after it was decided. */
  record(decision: ValidDecision, allowed: boolean): void {
    const rate = allowed ? this.#config.sample.allowed : this.#config.sample.denied;
    if (rate <= 0 || (rate < 1 && this.#random() >= rate)) return;
    const outcome = allowed ? "allowed" : "denied";
    for (const target of decision) {
      const key = target.id.slice(target.policy.length + 1); // ids are `policy NUL key`
      const who = this.#config.key === "plain" ? { key } : { keyHash: keyHash(key) };
      this.#out.info({ policy: target.policy, ...who, cost: target.cost, outcome, sample: rate }, "decision");
    }
  }

  /** Flushes and closes a file destination (stdout belongs to the process log). */
  async close(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    await new Promise<void>((resolve) => {
      file.once("close", () => resolve());
      file.once("error", () => resolve());
      file.end();
    });
  }
}
