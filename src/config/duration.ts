// Human durations in the config file ("100ms", "10s", "1m", "1h", "1d") as integer microseconds.

const UNIT_US: Record<string, number> = {
  us: 1,
  ms: 1_000,
  s: 1_000_000,
  m: 60_000_000,
  h: 3_600_000_000,
  d: 86_400_000_000,
};

const PATTERN = /^(\d+)(us|ms|s|m|h|d)$/;

/** Parses "<integer><unit>"; returns undefined for anything else. */
export function parseDurationUs(text: string): number | undefined {
  const match = PATTERN.exec(text.trim());
  if (!match) return undefined;
  const micros = Number(match[1]) * (UNIT_US[match[2] as string] as number);
  return Number.isSafeInteger(micros) && micros > 0 ? micros : undefined;
}

export function formatDurationUs(us: number): string {
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const size = UNIT_US[unit] as number;
    if (us % size === 0) return `${us / size}${unit}`;
  }
  return `${us}us`;
}
