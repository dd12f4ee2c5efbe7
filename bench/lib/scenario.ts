// What a scenario is: the loads it needs measured, and how it turns their medians into rows.
//
// Scenarios do not start servers themselves. They name loads (target + load spec); the runner
// merges the loads of all scenarios of a phase and runs them in alternating rounds (A B C A B C,
// each target started fresh per round), because the machine drifts 15-30% from minute to
// minute and only figures taken side by side in the same rounds can be compared.

import type { LoadSpec, Measurement } from "./load.ts";
import type { Row } from "./report.ts";
import type { TargetName } from "./targets.ts";
import type { Tools } from "./tools.ts";

export interface BenchSettings {
  readonly quick: boolean;
  readonly rounds: number;
  /** Measured seconds of one saturating or fixed-rate run. */
  readonly runS: number;
  readonly warmupS: number;
  /** Seconds of the low-load (one call in flight) latency run. */
  readonly lowLoadS: number;
  /** Directory for V8 CPU profiles of tokenmesh, when asked for. */
  readonly cpuProfDir: string | undefined;
  readonly seed: number;
}

/** A load to run on a fresh target in every round; `id`s are shared between scenarios. */
export interface LoadNeed {
  readonly id: string;
  readonly target: TargetName;
  readonly spec: LoadSpec;
}

/** Measurements by load id, one per round, in round order. */
export type Results = ReadonlyMap<string, readonly Measurement[]>;

export interface ScenarioContext {
  readonly tools: Tools;
  readonly settings: BenchSettings;
  /** Results of earlier phases (phase 2 may size its load from phase 1). */
  readonly results: Results;
  log(message: string): void;
}

export interface Scenario {
  readonly id: string;
  /** 1 unless the scenario's loads depend on phase-1 results. */
  readonly phase: 1 | 2 | 3;
  /** Scenarios whose loads this one's loads are sized from: run too, even with --only. */
  readonly needs?: readonly string[];
  /** Loads to run in the shared alternating rounds. */
  loads?(ctx: ScenarioContext): readonly LoadNeed[];
  /** A scenario that does not fit rounds (e.g. filling a million keys) runs itself. */
  run?(ctx: ScenarioContext): Promise<readonly Row[]>;
  /** Rows from the round results (called after the scenario's phase). */
  rows?(ctx: ScenarioContext): readonly Row[];
}
