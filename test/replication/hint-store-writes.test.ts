/**
 * HintStore's write batching: hints appended before a sync reach the file in
 * one write, are durable once append resolves, and a failed write fails
 * exactly the appends whose records it carried.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoError, MemoryFileSystem, SeededRandom, fromUtf8, utf8, type AppendFile, type FileSystem } from '../../src/core/index.ts';
import { HintStore } from '../../src/replication/index.ts';

const dir = '/data/hints';

/** Counts appendSync calls per file; `failNext` makes the next one throw. */
class CountingFs {
  appendSyncs = 0;
  failNext = false;
  constructor(readonly inner: MemoryFileSystem) {}

  wrap(): FileSystem {
    return new Proxy(this.inner, {
      get: (target, name, receiver) => {
        if (name !== 'openAppend') return Reflect.get(target, name, receiver) as unknown;
        return async (path: string, options?: { truncate?: boolean }): Promise<AppendFile> => {
          const file = await target.openAppend(path, options);
          return new Proxy(file, {
            get: (f, n, r) => {
              if (n !== 'appendSync') return Reflect.get(f, n, r) as unknown;
              return (data: Uint8Array): void => {
                this.appendSyncs++;
                if (this.failNext) {
                  this.failNext = false;
                  throw new IoError('injected write failure');
                }
                f.appendSync(data);
              };
            },
          });
        };
      },
    });
  }
}

const texts = (hints: Array<{ key: Uint8Array; object: Uint8Array }>): string[] => hints.map((h) => `${fromUtf8(h.key)}=${fromUtf8(h.object)}`);

test('hint store: appends sharing a linger window are written with one appendSync and survive a crash once resolved', async () => {
  const mem = new MemoryFileSystem();
  const fs = new CountingFs(mem);
  const store = await HintStore.open(fs.wrap(), dir);
  await store.append('n3', utf8('first'), utf8('0'));
  const before = fs.appendSyncs;
  let release!: () => void;
  const linger = new Promise<void>((resolve) => (release = resolve));
  const appends = Array.from({ length: 50 }, (_, i) => store.append('n3', utf8(`k${i}`), utf8(`v${i}`), linger));
  // Let every append reach the store, then end the window.
  await new Promise((resolve) => setImmediate(resolve));
  release();
  await Promise.all(appends);
  assert.equal(fs.appendSyncs - before, 1, 'the 50 hints of one window should take one write');
  mem.crash(new SeededRandom(3));
  const reopened = await HintStore.open(mem, dir);
  const all = await reopened.peek('n3', 100);
  assert.deepEqual(texts(all), ['first=0', ...Array.from({ length: 50 }, (_, i) => `k${i}=v${i}`)]);
  const bytes = Array.from({ length: 50 }, (_, i) => `k${i}v${i}`.length).reduce((a, b) => a + b, 'first0'.length);
  assert.deepEqual(reopened.backlog('n3'), { hints: 51, bytes });
});

test('hint store: hints still in memory are read, acknowledged and recovered in order with later records', async () => {
  const mem = new MemoryFileSystem();
  const store = await HintStore.open(mem, dir);
  let release!: () => void;
  const linger = new Promise<void>((resolve) => (release = resolve));
  const pending = [store.append('n2', utf8('a'), utf8('1'), linger), store.append('n2', utf8('b'), utf8('2'), linger)];
  await new Promise((resolve) => setImmediate(resolve));
  // Not yet synced: peek still sees them, in order, and an acknowledgement lands after them.
  const seen = await store.peek('n2', 10);
  assert.deepEqual(texts(seen), ['a=1', 'b=2']);
  await store.acknowledge('n2', seen[0]?.seq ?? 0);
  await store.append('n2', utf8('c'), utf8('3'));
  release();
  await Promise.all(pending);
  assert.deepEqual(texts(await store.peek('n2', 10)), ['b=2', 'c=3']);
  await store.close();
  const reopened = await HintStore.open(mem, dir);
  assert.deepEqual(texts(await reopened.peek('n2', 10)), ['b=2', 'c=3']);
});

test('hint store: a failed write rejects the appends it carried, drops them from the backlog, and later appends succeed', async () => {
  const mem = new MemoryFileSystem();
  const fs = new CountingFs(mem);
  const store = await HintStore.open(fs.wrap(), dir);
  await store.append('n3', utf8('kept'), utf8('0'));
  let release!: () => void;
  const linger = new Promise<void>((resolve) => (release = resolve));
  const lost = [store.append('n3', utf8('x'), utf8('1'), linger), store.append('n3', utf8('y'), utf8('2'), linger)];
  await new Promise((resolve) => setImmediate(resolve));
  fs.failNext = true;
  release();
  const outcomes = await Promise.allSettled(lost);
  assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected']);
  assert.match(String((outcomes[0] as PromiseRejectedResult).reason), /injected write failure/);
  assert.deepEqual(store.backlog('n3'), { hints: 1, bytes: 5 });
  await store.append('n3', utf8('after'), utf8('3'));
  assert.deepEqual(texts(await store.peek('n3', 10)), ['kept=0', 'after=3']);
  mem.crash(new SeededRandom(4));
  const reopened = await HintStore.open(mem, dir);
  assert.deepEqual(texts(await reopened.peek('n3', 10)), ['kept=0', 'after=3']);
});
