/**
 * The closed-loop load generator: `clients` async loops, each issuing one
 * operation at a time (read or update, 50/50 by default) until the phase's
 * deadline, recording the latency of every successful operation. Errors are
 * counted, not timed; after one, the client waits a little so that a refused
 * connection does not turn into a busy loop.
 */
import { performance } from 'node:perf_hooks';
import type { Driver } from './driver.ts';
import { LatencyHistogram } from './histogram.ts';
import { ClientRandom, type KeyChooser, type ValuePool } from './workload.ts';

const errorBackoffMs = 20;
/** Distinct error messages kept per phase for the report. */
const maxErrorSamples = 5;

export interface PhaseOptions {
  clients: number;
  seconds: number;
  readFraction: number;
  keys: KeyChooser;
  values: ValuePool;
  /** Seeds the clients' random streams, so every target gets the same sequence. */
  seed: number;
}

export interface PhaseResult {
  ops: number;
  reads: number;
  updates: number;
  errors: number;
  elapsedSeconds: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Per operation type: an update that costs two disk syncs in a row shows here, not in the mix. */
  readP50Ms: number;
  readP99Ms: number;
  updateP50Ms: number;
  updateP99Ms: number;
  errorSamples: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function describe(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * What a phase has measured so far. A phase may be run as several slices
 * (interleaved with other targets' slices, so that a change in the machine's
 * background load hits every target alike); the slices accumulate here.
 */
export class PhaseStats {
  readonly all = new LatencyHistogram();
  readonly reads = new LatencyHistogram();
  readonly updates = new LatencyHistogram();
  errors = 0;
  elapsedSeconds = 0;
  readonly errorSamples: string[] = [];

  noteError(error: unknown): void {
    this.errors++;
    const text = describe(error);
    if (this.errorSamples.length < maxErrorSamples && !this.errorSamples.includes(text)) this.errorSamples.push(text);
  }

  summary(): PhaseResult {
    const ms = (h: LatencyHistogram, fraction: number): number => h.percentile(fraction) / 1000;
    return {
      ops: this.all.count,
      reads: this.reads.count,
      updates: this.updates.count,
      errors: this.errors,
      elapsedSeconds: this.elapsedSeconds,
      opsPerSec: this.elapsedSeconds === 0 ? 0 : this.all.count / this.elapsedSeconds,
      p50Ms: ms(this.all, 0.5),
      p99Ms: ms(this.all, 0.99),
      p999Ms: ms(this.all, 0.999),
      maxMs: this.all.max / 1000,
      readP50Ms: ms(this.reads, 0.5),
      readP99Ms: ms(this.reads, 0.99),
      updateP50Ms: ms(this.updates, 0.5),
      updateP99Ms: ms(this.updates, 0.99),
      errorSamples: [...this.errorSamples],
    };
  }
}

/** Runs the closed loop for `options.seconds` and adds what it measured to `stats`. */
export async function runSlice(driver: Driver, options: PhaseOptions, stats: PhaseStats): Promise<void> {
  const start = performance.now();
  const deadline = start + options.seconds * 1000;

  const loop = async (client: number): Promise<void> => {
    const random = new ClientRandom(options.seed * 1_000_003 + client);
    let n = client;
    while (performance.now() < deadline) {
      const record = options.keys.next(random);
      const isRead = random.next() < options.readFraction;
      const began = performance.now();
      try {
        if (isRead) await driver.read(client, record);
        else await driver.update(client, record, options.values.pick(n++));
        const micros = (performance.now() - began) * 1000;
        stats.all.record(micros);
        (isRead ? stats.reads : stats.updates).record(micros);
      } catch (error) {
        stats.noteError(error);
        await sleep(errorBackoffMs);
      }
    }
  };

  await Promise.all(Array.from({ length: options.clients }, (_, client) => loop(client)));
  stats.elapsedSeconds += (performance.now() - start) / 1000;
}

export interface PreloadResult {
  seconds: number;
  errors: number;
}

/** Writes every record once (untimed), `concurrency` at a time; a record that fails is retried a bounded number of times. */
export async function preload(driver: Driver, keys: number, concurrency: number, values: ValuePool): Promise<PreloadResult> {
  const maxAttempts = 5;
  let next = 0;
  let errors = 0;
  const start = performance.now();
  const loop = async (client: number): Promise<void> => {
    while (next < keys) {
      const record = next++;
      for (let attempt = 1; ; attempt++) {
        try {
          await driver.update(client, record, values.pick(record));
          break;
        } catch (error) {
          errors++;
          if (attempt >= maxAttempts) throw new Error(`Preload of record ${record} failed ${maxAttempts} times: ${describe(error)}`, { cause: error });
          await sleep(errorBackoffMs * attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, client) => loop(client)));
  return { seconds: (performance.now() - start) / 1000, errors };
}
