/**
 * A KvApi whose answers the test scripts: stored sibling lists (to render
 * 300 Multiple Choices without depending on how a store creates siblings) and
 * errors to throw (to check the status mapping). It records the options each
 * call received so tests can check how query parameters were parsed.
 */
import type { GetResult, KvApi, PutResult, ReadOptions, ScanResult, Sibling, WriteOptions } from '../../../src/replication/index.ts';

export class ScriptedKv implements KvApi {
  readonly stored = new Map<string, Sibling[]>();
  readonly calls: Array<{ op: string; key: string; options: ReadOptions | WriteOptions | undefined; value?: Uint8Array }> = [];
  nextError: Error | undefined;
  counter = 0n;

  private takeError(): void {
    const error = this.nextError;
    this.nextError = undefined;
    if (error) throw error;
  }

  async get(key: Uint8Array, options?: ReadOptions): Promise<GetResult> {
    this.calls.push({ op: 'get', key: Buffer.from(key).toString('latin1'), options });
    this.takeError();
    return { siblings: this.stored.get(Buffer.from(key).toString('latin1')) ?? [], context: Uint8Array.from([1, 2, 3]) };
  }

  async put(key: Uint8Array, value: Uint8Array, options?: WriteOptions): Promise<PutResult> {
    this.calls.push({ op: 'put', key: Buffer.from(key).toString('latin1'), options, value: Uint8Array.from(value) });
    this.takeError();
    this.stored.set(Buffer.from(key).toString('latin1'), [
      { kind: 'value', value: Uint8Array.from(value), expiresAtMs: options?.expiresAtMs ?? null, timestampMs: 1, writer: 'n1' },
    ]);
    return { context: Uint8Array.from([9, 9]) };
  }

  async delete(key: Uint8Array, options?: WriteOptions): Promise<void> {
    this.calls.push({ op: 'delete', key: Buffer.from(key).toString('latin1'), options });
    this.takeError();
    this.stored.set(Buffer.from(key).toString('latin1'), [{ kind: 'tombstone', expiresAtMs: null, timestampMs: 2, writer: 'n1' }]);
  }

  async incrBy(key: Uint8Array, delta: bigint, options?: WriteOptions): Promise<bigint> {
    this.calls.push({ op: 'incr', key: Buffer.from(key).toString('latin1'), options });
    this.takeError();
    this.counter += delta;
    return this.counter;
  }

  async touch(): Promise<boolean> {
    this.takeError();
    return false;
  }

  async scan(): Promise<ScanResult> {
    return { cursor: '0', keys: [] };
  }

  async approximateCount(): Promise<number> {
    return this.stored.size;
  }

  async flushAll(): Promise<void> {
    this.stored.clear();
  }
}
