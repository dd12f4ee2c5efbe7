// Incarnation ids: every process start (and every renewal after a retirement) writes under a
// fresh id, so a restarted writer never counts from zero under a name peers already hold
// (trap 4). The id starts with its birth time so that a replicated horizon ("every incarnation
// born before H is gone") can forget dead ids without keeping a tombstone per id: the rule
// "drop what was born before H" is monotone in H, hence safe under any join order.

/** An incarnation id: 14 hex digits of birth time (microseconds) then 18 random hex digits. */
export type IncId = string;

const BIRTH_DIGITS = 14;
const RANDOM_DIGITS = 18;
const ID_PATTERN = /^[0-9a-f]{32}$/;

/**
 * Builds an id from a birth time and caller-supplied randomness (the core draws none).
 * `randomHex` must hold at least 18 hex digits; extra digits are ignored.
 */
export function makeIncarnationId(birthUs: number, randomHex: string): IncId {
  const birth = Math.max(0, Math.floor(birthUs)).toString(16).padStart(BIRTH_DIGITS, "0");
  const rnd = randomHex
    .toLowerCase()
    .replace(/[^0-9a-f]/g, "")
    .padEnd(RANDOM_DIGITS, "0")
    .slice(0, RANDOM_DIGITS);
  return `${birth.slice(-BIRTH_DIGITS)}${rnd}`;
}

export function isIncarnationId(value: unknown): value is IncId {
  return typeof value === "string" && ID_PATTERN.test(value);
}

/**
 * Birth time in microseconds, read back from the id. Parsed each time: the core keeps no
 * module-level cache (a memo shared by every replica in a process is state the replica does not
 * own; parsing 14 hex digits costs less than one map lookup of the join around it).
 */
export function birthOf(id: IncId): number {
  return Number.parseInt(id.slice(0, BIRTH_DIGITS), 16);
}

/** Whether a horizon has forgotten this incarnation. */
export function isForgotten(id: IncId, horizon: number): boolean {
  return birthOf(id) < horizon;
}
