// The process log: JSON lines on stdout (pino) that an operator can read and a collector can
// index without per-replica parsing rules. Every line names the replica (`node`), carries an ISO
// 8601 time and the level as a word, so lines from several replicas can be merged and filtered.

import { type DestinationStream, type Logger, type LoggerOptions, pino } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** The line format shared by the process log and the audit log. */
export function lineFormat(node: string): LoggerOptions {
  return {
    base: { service: "tokenmesh", node, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
}

/**
 * The logger `serve` runs with. Writes synchronously (pino's default for stdout): the hot path
 * logs nothing at `info`, and a line written just before exit is never lost.
 */
export function createLogger(options: { readonly node: string; readonly level: LogLevel }, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = { ...lineFormat(options.node), level: options.level };
  return destination === undefined ? pino(settings) : pino(settings, destination);
}
