/**
 * An engine held in memory: the reference model the LSM engine is tested
 * against, and a backend for tests of higher layers. Not durable.
 */
import { ClosedError, compareBytes } from '../core/index.ts';
import type { BatchOp, Engine, EngineEntry, EngineStats, KeyRange } from './engine.ts';

// latin1 maps each byte to one UTF-16 code unit, so string order is byte order.
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function inRange(key: Uint8Array, range: KeyRange): boolean {
  if (range.gte !== undefined && compareBytes(key, range.gte) < 0) return false;
  if (range.gt !== undefined && compareBytes(key, range.gt) <= 0) return false;
  if (range.lte !== undefined && compareBytes(key, range.lte) > 0) return false;
  if (range.lt !== undefined && compareBytes(key, range.lt) >= 0) return false;
  return true;
}

function copyEntry(entry: EngineEntry): EngineEntry {
  return { key: Uint8Array.from(entry.key), value: Uint8Array.from(entry.value), meta: entry.meta && Uint8Array.from(entry.meta) };
}

export class MemoryEngine implements Engine {
  private readonly entries = new Map<string, EngineEntry>();
  private sorted: string[] | undefined;
  private closed = false;

  private check(): void {
    if (this.closed) throw new ClosedError('The engine is closed');
  }

  async get(key: Uint8Array): Promise<EngineEntry | undefined> {
    this.check();
    const entry = this.entries.get(keyString(key));
    return entry && copyEntry(entry);
  }

  async put(key: Uint8Array, value: Uint8Array, meta?: Uint8Array): Promise<void> {
    await this.write([{ type: 'put', key, value, ...(meta ? { meta } : {}) }]);
  }

  async delete(key: Uint8Array): Promise<void> {
    await this.write([{ type: 'delete', key }]);
  }

  async write(batch: readonly BatchOp[]): Promise<void> {
    this.check();
    for (const op of batch) {
      const k = keyString(op.key);
      if (op.type === 'put') {
        if (!this.entries.has(k)) this.sorted = undefined;
        this.entries.set(k, copyEntry({ key: op.key, value: op.value, meta: op.meta }));
      } else if (this.entries.delete(k)) {
        this.sorted = undefined;
      }
    }
  }

  iterate(range: KeyRange = {}): AsyncIterable<EngineEntry> {
    this.check();
    this.sorted ??= [...this.entries.keys()].sort();
    // Snapshot as of the call (the contract): copy the matching entries now, not on first next().
    const keys = range.reverse ? [...this.sorted].reverse() : this.sorted;
    const out: EngineEntry[] = [];
    for (const k of keys) {
      if (range.limit !== undefined && out.length >= range.limit) break;
      const entry = this.entries.get(k);
      if (entry === undefined || !inRange(entry.key, range)) continue;
      out.push(copyEntry(entry));
    }
    return (async function* snapshot() {
      yield* out;
    })();
  }

  async compact(): Promise<void> {
    this.check();
  }

  stats(): EngineStats {
    return { approximateKeys: this.entries.size };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
