// A Prometheus histogram whose observations are plain number increments, for the one series
// every gRPC call observes (tokenmesh_request_duration_seconds).
//
// prom-client's `Histogram.observe(labels, value)` validates the label object, builds a hash
// string from it and looks it up on every call: a few percent of a call's server CPU at one call
// in flight, more than the decision itself. Here a caller takes its series once
// (`series(labels)`, for a label set it keeps) and each observation finds its bucket and adds to
// three numbers. prom-client still renders it: the registry reads `get()` on a scrape, and the
// values it returns have the same shape and order as prom-client's own histogram (buckets
// cumulative with `le` first, then +Inf, `_sum` and `_count`), so the exposition is unchanged.

import type { Histogram, LabelValues, Registry } from "prom-client";

/** One label set's counts: what an observation writes to. */
export class HistogramSeries {
  /** Observations per bucket (not cumulative); the last slot is over the highest bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: readonly number[],
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Hot path. A value that is not a finite number is not counted (prom-client would throw). */
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.counts[i] = (this.counts[i] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

interface ExportedValue {
  readonly value: number;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly metricName: string;
  /** prom-client's buckets carry `exemplar: null` when exemplars are off; kept for an equal JSON form. */
  readonly exemplar?: null;
}

export interface CallHistogramConfig<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  /** Upper bounds, ascending. */
  readonly buckets: readonly number[];
  readonly registry: Registry;
}

export class CallHistogram<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly #labelNames: readonly L[];
  readonly #bounds: readonly number[];
  /** By the label values joined in `labelNames` order. */
  readonly #series = new Map<string, HistogramSeries>();

  constructor(config: CallHistogramConfig<L>) {
    for (let i = 1; i < config.buckets.length; i++) {
      if (!((config.buckets[i] as number) > (config.buckets[i - 1] as number))) {
        throw new RangeError(`${config.name}: buckets must be ascending, got ${config.buckets.join(", ")}`);
      }
    }
    this.name = config.name;
    this.help = config.help;
    this.#labelNames = config.labelNames;
    this.#bounds = [...config.buckets];
    // The registry needs only name, help, type, aggregator, get() and reset() of a metric, which
    // this has; its type names prom-client's own classes, hence the cast.
    config.registry.registerMetric(this as unknown as Histogram<L>);
  }

  /** The series of one label set, made on first use (keep it: looking it up is the slow part). */
  series(labels: LabelValues<L>): HistogramSeries {
    const values: string[] = [];
    const named: Record<string, string> = {};
    for (const name of this.#labelNames) {
      const value = labels[name];
      if (value === undefined) throw new TypeError(`${this.name}: label ${name} is missing`);
      values.push(String(value));
      named[name] = String(value);
    }
    for (const name of Object.keys(labels)) {
      if (!(this.#labelNames as readonly string[]).includes(name)) throw new TypeError(`${this.name}: unknown label ${name}`);
    }
    const key = values.join("\u0000");
    let series = this.#series.get(key);
    if (series === undefined) {
      series = new HistogramSeries(this.#bounds, named);
      this.#series.set(key, series);
    }
    return series;
  }

  /** Exports a series at 0 before its first observation. */
  zero(labels: LabelValues<L>): void {
    this.series(labels);
  }

  /** Forgets every count; series already handed out keep counting but are no longer exported. */
  reset(): void {
    this.#series.clear();
  }

  /** What the registry renders, in prom-client's histogram layout. */
  async get(): Promise<{ name: string; help: string; type: "histogram"; aggregator: "sum"; values: ExportedValue[] }> {
    const values: ExportedValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const s of this.#series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        cumulative += s.counts[i] as number;
        values.push({ value: cumulative, labels: { le: this.#bounds[i] as number, ...s.labels }, metricName: bucketName, exemplar: null });
      }
      values.push({ value: s.count, labels: { le: "+Inf", ...s.labels }, metricName: bucketName, exemplar: null });
      values.push({ value: s.sum, labels: s.labels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: s.labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: "histogram", aggregator: "sum", values };
  }
}
