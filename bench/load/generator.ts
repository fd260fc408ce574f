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
  errorSamples: string[];
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function describe(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

export async function runPhase(driver: Driver, options: PhaseOptions): Promise<PhaseResult> {
  const histogram = new LatencyHistogram();
  let reads = 0;
  let updates = 0;
  let errors = 0;
  const errorSamples: string[] = [];
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
        histogram.record((performance.now() - began) * 1000);
        if (isRead) reads++;
        else updates++;
      } catch (error) {
        errors++;
        const text = describe(error);
        if (errorSamples.length < maxErrorSamples && !errorSamples.includes(text)) errorSamples.push(text);
        await sleep(errorBackoffMs);
      }
    }
  };

  await Promise.all(Array.from({ length: options.clients }, (_, client) => loop(client)));
  const elapsedSeconds = (performance.now() - start) / 1000;
  return {
    ops: histogram.count,
    reads,
    updates,
    errors,
    elapsedSeconds,
    opsPerSec: histogram.count / elapsedSeconds,
    p50Ms: histogram.percentile(0.5) / 1000,
    p99Ms: histogram.percentile(0.99) / 1000,
    p999Ms: histogram.percentile(0.999) / 1000,
    maxMs: histogram.max / 1000,
    errorSamples,
  };
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
