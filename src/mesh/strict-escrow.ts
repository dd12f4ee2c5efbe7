// Strict mode at the edge (docs/design.md, section 9): this process's holders (one per strict
// key it serves) and, for the policies it banks, the banks. Each flush a holder asks its bank
// and a bank answers the fresh asks; both travel as MergeRequests on the sender's own outbound
// stream (or stay in-process when this replica is the bank). Every message from a peer is
// checked by the core before it is used; a bad one ends that peer's stream.

import type { Policy, StrictPolicy } from "../config/load.ts";
import type { BucketAccess } from "../core/decision.ts";
import {
  type DenyReason,
  type EscrowGrant,
  type EscrowRequest,
  KeyBank,
  KeyHolder,
  validateGrant,
  validateRequest,
} from "../core/escrow/index.ts";
import type { Rate } from "../core/rate.ts";
import { fail, ok, type Result } from "../core/result.ts";
import type { StrictAccess } from "../limiter/limiter.ts";
import type { MergeRequestInit } from "./peer-transport.ts";

/** Sends one message on the outbound stream to `node`; false when that stream is not up. */
export type EscrowSend = (node: string, message: MergeRequestInit) => boolean;

interface HeldKey {
  readonly holder: KeyHolder;
  readonly bank: string;
  readonly rate: Rate;
  lastUsedUs: number;
}

/** A holder unused for this many leases is dropped (its share has long run out). */
const IDLE_LEASES = 10;

export class StrictEscrow {
  readonly #holders = new Map<string, HeldKey>();
  readonly #banks = new Map<string, KeyBank>();
  #policies = new Map<string, Policy>();
  #send: EscrowSend = () => false;
  /** Counts for metrics and tests. */
  readonly counts = { requestsSent: 0, grantsSent: 0, grantsApplied: 0, unsent: 0 };

  /**
   * `holderId`: `node/<fresh id>`, new at each process start, so a restarted replica is a new
   * holder. `startedAtUs`: this process's start; its banks grant nothing until L + margin after it.
   */
  constructor(
    readonly node: string,
    readonly holderId: string,
    private readonly startedAtUs: number,
  ) {}

  /** The policies in force (at start and on every reload). */
  usePolicies(policies: Iterable<Policy>): void {
    const next = new Map<string, Policy>();
    for (const p of policies) next.set(p.name, p);
    this.#policies = next;
  }

  /** Wires the outbound streams (the mesh, once its links exist). */
  attach(send: EscrowSend): void {
    this.#send = send;
  }

  /** Whether any strict key is active: the flush loop must keep its interval while one is. */
  get active(): boolean {
    return this.#holders.size > 0 || this.#banks.size > 0;
  }

  /** A strict bucket of a decision: admits from the held share, writes spends into `crdt` too. */
  access(id: string, rate: Rate, cost: number, strict: StrictPolicy, crdt: BucketAccess, nowUs: number): StrictAccess {
    let held = this.#holders.get(id);
    if (held === undefined || held.rate !== rate) {
      held = { holder: new KeyHolder(rate, strict.leaseUs, nowUs), bank: strict.bank ?? this.node, rate, lastUsedUs: nowUs };
      this.#holders.set(id, held);
    }
    held.lastUsedUs = nowUs;
    held.holder.noteDemand(cost);
    return new StrictKeyAccess(held.holder, crdt, rate, cost, nowUs);
  }

  /** One flush: every holder asks, then every bank here answers what it was asked. */
  flush(nowUs: number): void {
    for (const [id, held] of this.#holders) {
      if (held.lastUsedUs + IDLE_LEASES * held.holder.leaseUs < nowUs) {
        this.#holders.delete(id);
        continue;
      }
      const ask = held.holder.request(nowUs);
      const req: EscrowRequest = { holder: this.holderId, key: id, seq: ask.seq, demandPerSecond: ask.demandPerSecond };
      if (held.bank === this.node) this.#takeRequest(req, nowUs);
      else this.#deliver(held.bank, { message: { case: "escrowRequest", value: { ...req, seq: BigInt(req.seq) } } }, "requestsSent");
    }
    for (const [id, bank] of this.#banks) {
      for (const g of bank.grants(nowUs)) {
        const to = g.holder.slice(0, g.holder.indexOf("/"));
        if (g.holder === this.holderId) this.#takeGrant(g, nowUs);
        else {
          const value = {
            holder: g.holder,
            key: g.key,
            seq: BigInt(g.seq),
            rateParts: g.rateParts,
            capacityTokens: BigInt(g.capacityTokens),
          };
          this.#deliver(to, { message: { case: "escrowGrant", value } }, "grantsSent");
        }
      }
      if (bank.idle(nowUs)) this.#banks.delete(id);
    }
  }

  #deliver(node: string, message: MergeRequestInit, counter: "requestsSent" | "grantsSent"): void {
    if (this.#send(node, message)) this.counts[counter]++;
    else this.counts.unsent++;
  }

  /** A peer's escrow message; an error names the field and ends that peer's stream. */
  receive(
    from: string,
    m:
      | { readonly case: "escrowRequest"; readonly value: { holder: string; key: string; seq: bigint; demandPerSecond: number } }
      | {
          readonly case: "escrowGrant";
          readonly value: { holder: string; key: string; seq: bigint; rateParts: number; capacityTokens: bigint };
        },
    nowUs: number,
  ): Result<void> {
    if (m.case === "escrowRequest") {
      const v = validateRequest({ ...m.value, seq: Number(m.value.seq) }, from);
      if (!v.ok) return fail(`escrow_request.${v.error.field}`, v.error.message);
      const strict = this.#strictOf(v.value.key);
      if (strict === undefined) return fail("escrow_request.key", `names no strict policy in force here: ${JSON.stringify(v.value.key)}`);
      if (strict.bank !== this.node) return fail("escrow_request.key", `this replica (${this.node}) is not its bank (${strict.bank})`);
      this.#takeRequest(v.value, nowUs);
      return ok(undefined);
    }
    const held = this.#holders.get(m.value.key);
    // A grant for a key this replica no longer serves (dropped as idle, or a reload) is late, not hostile.
    if (held === undefined) return ok(undefined);
    const v = validateGrant(
      { ...m.value, bank: from, seq: Number(m.value.seq), capacityTokens: Number(m.value.capacityTokens) },
      { bank: held.bank, holder: this.holderId, rate: held.rate },
    );
    if (!v.ok) return fail(`escrow_grant.${v.error.field}`, v.error.message);
    return this.#takeGrant(v.value, nowUs);
  }

  #strictOf(id: string): (StrictPolicy & { rate: Rate }) | undefined {
    const p = this.#policies.get(id.slice(0, id.indexOf("\u0000")));
    return p?.strict === undefined ? undefined : { ...p.strict, bank: p.strict.bank ?? this.node, rate: p.rate };
  }

  #takeRequest(req: EscrowRequest, nowUs: number): void {
    let bank = this.#banks.get(req.key);
    if (bank === undefined) {
      const strict = this.#strictOf(req.key);
      if (strict === undefined) return;
      bank = new KeyBank(this.node, req.key, strict.rate, strict.leaseUs, this.startedAtUs);
      this.#banks.set(req.key, bank);
    }
    bank.request(req, nowUs);
  }

  #takeGrant(g: EscrowGrant, nowUs: number): Result<void> {
    const held = this.#holders.get(g.key);
    if (held === undefined) return ok(undefined);
    const r = held.holder.applyGrant(g, nowUs);
    if (!r.ok) return fail(`escrow_grant.${r.error.field}`, r.error.message);
    if (r.value === "applied") this.counts.grantsApplied++;
    return ok(undefined);
  }

  /** The share this replica holds of `id` now (zeros when none): Query and metrics. */
  heldShare(id: string, nowUs: number): { rateParts: number; capacityTokens: number; heldTokens: number } {
    const held = this.#holders.get(id);
    if (held === undefined) return { rateParts: 0, capacityTokens: 0, heldTokens: 0 };
    const s = held.holder.share(nowUs);
    return { rateParts: s.rateParts, capacityTokens: s.capacityTokens, heldTokens: held.holder.heldTokens(nowUs) };
  }
}

/** One strict bucket of a decision: the held share decides; a spend is also CRDT consumption. */
class StrictKeyAccess implements StrictAccess {
  readonly #level: number;
  readonly #reason: DenyReason | undefined;
  readonly heldTokens: number;

  constructor(
    private readonly holder: KeyHolder,
    private readonly crdt: BucketAccess,
    readonly rate: Rate,
    readonly cost: number,
    private readonly nowUs: number,
  ) {
    const judged = holder.peek(cost, nowUs);
    this.#level = holder.levelUnits(nowUs);
    this.#reason = judged.allowed ? undefined : judged.reason;
    this.heldTokens = judged.heldTokens;
  }

  get denyReason(): DenyReason | undefined {
    return this.#reason;
  }

  level(): number {
    return this.#level;
  }

  debit(units: number): void {
    // decide() debits only after level() covered the cost, so the take always succeeds.
    if (this.holder.take(units, this.nowUs)) this.crdt.debit(units);
  }
}
