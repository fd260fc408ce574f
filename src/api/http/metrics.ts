/**
 * Prometheus metrics of one node. Request counts and latency histograms per
 * protocol and command sit on the RESP hot path, where prom-client's labelled
 * children cost microseconds per call (label hashing); they are kept here in
 * plain typed arrays (tens of nanoseconds) and written out in the Prometheus
 * text format at scrape time. Everything else (storage, cluster, handoff,
 * process) goes through a prom-client registry per node, read from callbacks
 * when someone scrapes.
 */
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export type Protocol = 'resp' | 'http';

/**
 * Distinct command labels per protocol. Clients can send any command name;
 * past this bound the rest count as "other" so a scanner cannot blow up the
 * series count.
 */
export const maxCommandLabels = 256;

/** Upper bounds in seconds: from 50 µs (a cached GET) to 5 s (a timed-out quorum). */
export const latencyBucketsSeconds: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const latencyBucketsMs = latencyBucketsSeconds.map((s) => s * 1000);

export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

/** Counts of one (protocol, command): outcomes, and latency per bucket (not cumulative; last slot is +Inf). */
interface CommandStats {
  ok: number;
  error: number;
  sumMs: number;
  readonly buckets: Float64Array;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labelText(labels: ReadonlyArray<readonly [string, string]>): string {
  return labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly byProtocol: Record<Protocol, Map<string, CommandStats>> = { resp: new Map(), http: new Map() };
  private readonly defaultLabels: ReadonlyArray<readonly [string, string]>;

  constructor(options: { defaultLabels?: Record<string, string>; processMetrics?: boolean } = {}) {
    this.defaultLabels = Object.entries(options.defaultLabels ?? {});
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_process_' });
  }

  /** Records one request; cheap enough for every RESP command. */
  observe(protocol: Protocol, command: string, durationMs: number, ok: boolean): void {
    const stats = this.statsFor(protocol, command);
    if (ok) stats.ok++;
    else stats.error++;
    stats.sumMs += durationMs;
    let i = 0;
    while (i < latencyBucketsMs.length && durationMs > (latencyBucketsMs[i] as number)) i++;
    stats.buckets[i] = (stats.buckets[i] as number) + 1;
  }

  private statsFor(protocol: Protocol, command: string): CommandStats {
    const map = this.byProtocol[protocol];
    let stats = map.get(command);
    if (stats !== undefined) return stats;
    // The last label slot is kept for "other".
    const name = map.size >= maxCommandLabels - 1 ? 'other' : command;
    stats = map.get(name);
    if (stats === undefined) {
      stats = { ok: 0, error: 0, sumMs: 0, buckets: new Float64Array(latencyBucketsMs.length + 1) };
      map.set(name, stats);
    }
    return stats;
  }

  /**
   * A gauge whose samples are computed at scrape time (storage stats, cluster
   * liveness, handoff backlog): the source is read only when someone looks.
   */
  addGauge(name: string, help: string, labelNames: readonly string[], collect: () => readonly GaugeSample[]): void {
    new Gauge({
      name,
      help,
      labelNames: [...labelNames],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const sample of collect()) {
          if (labelNames.length === 0) this.set(sample.value);
          else this.set(sample.labels, sample.value);
        }
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  async render(): Promise<string> {
    return `${this.renderRequests()}\n${await this.registry.metrics()}`;
  }

  private renderRequests(): string {
    const counts = ['# HELP ringkv_requests_total Requests served, by protocol, command and outcome (ok or error).', '# TYPE ringkv_requests_total counter'];
    const latency = [
      '# HELP ringkv_request_duration_seconds Time from a request being parsed to its reply being queued, by protocol and command.',
      '# TYPE ringkv_request_duration_seconds histogram',
    ];
    for (const protocol of ['resp', 'http'] as const) {
      for (const [command, stats] of this.byProtocol[protocol]) {
        const base: Array<readonly [string, string]> = [['protocol', protocol], ['command', command]];
        counts.push(`ringkv_requests_total{${labelText([...base, ['outcome', 'ok'], ...this.defaultLabels])}} ${stats.ok}`);
        counts.push(`ringkv_requests_total{${labelText([...base, ['outcome', 'error'], ...this.defaultLabels])}} ${stats.error}`);
        let cumulative = 0;
        latencyBucketsSeconds.forEach((bound, i) => {
          cumulative += stats.buckets[i] as number;
          latency.push(`ringkv_request_duration_seconds_bucket{${labelText([['le', String(bound)], ...base, ...this.defaultLabels])}} ${cumulative}`);
        });
        cumulative += stats.buckets[latencyBucketsSeconds.length] as number;
        latency.push(`ringkv_request_duration_seconds_bucket{${labelText([['le', '+Inf'], ...base, ...this.defaultLabels])}} ${cumulative}`);
        latency.push(`ringkv_request_duration_seconds_sum{${labelText([...base, ...this.defaultLabels])}} ${stats.sumMs / 1000}`);
        latency.push(`ringkv_request_duration_seconds_count{${labelText([...base, ...this.defaultLabels])}} ${cumulative}`);
      }
    }
    return `${counts.join('\n')}\n\n${latency.join('\n')}\n`;
  }
}

/** Flattens engine stats (numbers and one level of nested records) into `{stat}` samples. */
export function flattenStats(stats: Record<string, number | Record<string, number>>): GaugeSample[] {
  const samples: GaugeSample[] = [];
  for (const [name, value] of Object.entries(stats)) {
    if (typeof value === 'number') {
      if (Number.isFinite(value)) samples.push({ labels: { stat: name }, value });
    } else {
      for (const [inner, v] of Object.entries(value)) {
        if (typeof v === 'number' && Number.isFinite(v)) samples.push({ labels: { stat: `${name}.${inner}` }, value: v });
      }
    }
  }
  return samples;
}
