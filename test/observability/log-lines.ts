// Reads a process's stdout as the JSON lines pino writes, and checks the shape every line must
// have: the replica's name, an ISO 8601 time and the level as a word.

import { expect } from "vitest";

export type LogLine = Record<string, unknown>;

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];

export function parseLines(stdout: string): LogLine[] {
  return stdout
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });
}

export function expectEveryLineNames(lines: readonly LogLine[], node: string): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) {
    expect(line, JSON.stringify(line)).toMatchObject({ node, service: "tokenmesh" });
    expect(String(line.time), JSON.stringify(line)).toMatch(ISO_TIME);
    expect(LEVELS, JSON.stringify(line)).toContain(line.level);
  }
}
