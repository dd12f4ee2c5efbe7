// The limit of one key as replicated state: last-writer-wins by (version, content), with an
// effective time (trap 10). The old limit holds before `tEff`, the new one after, and the level
// at `tEff` is clamped to the new capacity on every replica alike, because the switch is a
// function of the state, not of one replica's current level.

import { type LimitSpec, makeRate, type Rate } from "../rate.ts";
import { fail, ok, type Result } from "../result.ts";

export interface KeyConfig {
  /** Monotone version chosen by whoever edits the policy; larger wins. */
  readonly version: number;
  /** Virtual time (stamp clock, microseconds) from which this limit applies. */
  readonly tEff: number;
  readonly rate: Rate;
}

export type ConfigResult = Result<KeyConfig>;

export function makeKeyConfig(spec: LimitSpec, version = 0, tEff = 0): ConfigResult {
  if (!Number.isSafeInteger(version) || version < 0)
    return fail("version", `config version must be a non-negative integer, got ${version}`);
  if (!Number.isSafeInteger(tEff) || tEff < 0) return fail("tEff", `config tEff must be a non-negative integer, got ${tEff}`);
  const made = makeRate(spec);
  if (!made.ok) return fail(made.error.field, `config ${made.error.field}: ${made.error.message}`);
  return ok({ version, tEff, rate: made.value });
}

/** Canonical text of a config; also the content tie-break of the last-writer-wins order. */
export function configText(c: KeyConfig): string {
  return `${c.version}/${c.tEff}/${c.rate.capacity}/${c.rate.refillTokens}/${c.rate.refillPeriodUs}`;
}

/** Whether the fields that make up `configText` are equal (the text need not be built). */
function sameContent(a: KeyConfig, b: KeyConfig): boolean {
  return (
    a.tEff === b.tEff &&
    a.rate.capacity === b.rate.capacity &&
    a.rate.refillTokens === b.rate.refillTokens &&
    a.rate.refillPeriodUs === b.rate.refillPeriodUs
  );
}

/**
 * Total order: version, then content. Positive when `a` wins. Called on every access, so the
 * common cases (the same object, or equal content) answer without building text; only a tie
 * of versions with different content compares the canonical text, which is the order itself.
 */
export function compareConfig(a: KeyConfig, b: KeyConfig): number {
  if (a === b) return 0;
  if (a.version !== b.version) return a.version - b.version;
  if (sameContent(a, b)) return 0;
  const ta = configText(a);
  const tb = configText(b);
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

export function maxConfig(a: KeyConfig, b: KeyConfig): KeyConfig {
  return compareConfig(a, b) >= 0 ? a : b;
}

/** Equal configs: equal canonical text (version and the four content fields). */
export function sameConfig(a: KeyConfig, b: KeyConfig): boolean {
  return a === b || (a.version === b.version && sameContent(a, b));
}
