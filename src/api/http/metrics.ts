/**
 * Prometheus metrics of one node (prom-client, a registry per node so tests
 * and several nodes in one process never collide). Request counters and
 * latency histograms per protocol and command are updated on the hot path, so
 * the labelled children are cached; everything else (storage, cluster,
 * handoff) is read from callbacks at scrape time.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Protocol = 'resp' | 'http';

/**
 * Distinct command labels per protocol. Clients can send any command name;
 * past this bound the rest count as "other" so a scanner cannot blow up the
 * series count.
 */
export const maxCommandLabels = 256;

// Seconds: from 50 µs (a cached GET) to 5 s (a timed-out quorum).
const latencyBucketsSeconds = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface GaugeSample {
  labels: Record<string, string>;
  value: number;
}

interface CachedChildren {
  ok: { inc(): void };
  failed: { inc(): void };
  latency: { observe(value: number): void };
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'protocol' | 'command' | 'outcome'>;
  private readonly latency: Histogram<'protocol' | 'command'>;
  private readonly children = new Map<string, CachedChildren>();
  private readonly labelCount: Record<Protocol, number> = { resp: 0, http: 0 };

  constructor(options: { defaultLabels?: Record<string, string>; processMetrics?: boolean } = {}) {
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'ringkv_process_' });
    this.requests = new Counter({
      name: 'ringkv_requests_total',
      help: 'Requests served, by protocol, command and outcome (ok or error).',
      labelNames: ['protocol', 'command', 'outcome'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'ringkv_request_duration_seconds',
      help: 'Time from a request being parsed to its reply being queued, by protocol and command.',
      labelNames: ['protocol', 'command'],
      buckets: latencyBucketsSeconds,
      registers: [this.registry],
    });
  }

  /** Records one request; cheap enough for every RESP command. */
  observe(protocol: Protocol, command: string, durationMs: number, ok: boolean): void {
    const children = this.childrenFor(protocol, command);
    (ok ? children.ok : children.failed).inc();
    children.latency.observe(durationMs / 1000);
  }

  private childrenFor(protocol: Protocol, command: string): CachedChildren {
    const cacheKey = `${protocol} ${command}`;
    let children = this.children.get(cacheKey);
    if (children !== undefined) return children;
    if (this.labelCount[protocol] >= maxCommandLabels) return this.childrenFor(protocol, 'other');
    this.labelCount[protocol]++;
    children = {
      ok: this.requests.labels(protocol, command, 'ok'),
      failed: this.requests.labels(protocol, command, 'error'),
      latency: this.latency.labels(protocol, command),
    };
    this.children.set(cacheKey, children);
    return children;
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

  render(): Promise<string> {
    return this.registry.metrics();
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
