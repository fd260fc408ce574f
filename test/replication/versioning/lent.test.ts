/**
 * WriteOptions.lent: a putNow whose key and value are views of a buffer the
 * caller overwrites as soon as the call returns (a RESP plain SET lends
 * views of its socket input) must store exactly what was lent, on every
 * path LocalKv.putNow can take: the direct overwrite (settled at once or
 * pending under sync always), an overwrite over a peer's object (decided
 * on the decoded object), one over a key with a write pending (the general
 * decide), and a write that is not an overwrite; a blind write of the key
 * right after each one builds on whatever the lent write left in memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, silentLogger } from '../../../src/core/index.ts';
import { openLsm } from '../../../src/storage/index.ts';
import { LocalKv, ReplicaStore, durableNow, makeObject, wouldWait } from '../../../src/replication/index.ts';
import type { WriteOptions } from '../../../src/replication/index.ts';

type Case = 'fresh' | 'peer' | 'blind';

async function scenario(sync: 'none' | 'always', which: Case): Promise<void> {
  const clock = new RealClock();
  const engine = await openLsm('/data', { sync }, { fs: new MemoryFileSystem(), clock, log: silentLogger });
  const store = new ReplicaStore({ engine, clock, nodeId: 'n1' });
  const kv = new LocalKv({ store, clock });
  try {
    const written = new Map<string, string>();
    const durables: Array<Promise<void>> = [];
    // One input buffer, reused for every write like a connection's read buffer.
    const input = Buffer.alloc(256);
    const options: WriteOptions = which === 'blind' ? { lent: true } : { overwrite: true, lent: true, expiresAtMs: null };
    for (let i = 0; i < 40; i++) {
      const key = `k${i % 10}`;
      const value = `value-${which}-${i}-${'v'.repeat(i)}`;
      if (which === 'peer' && i < 10) {
        const wall = clock.wallMs();
        const peer = makeObject(
          [{ node: 'peer', counter: 1, lastWallMs: wall }],
          [{ dot: { node: 'peer', counter: 1 }, kind: 'value', value: Buffer.from('old'), counter: [], expiresAtMs: null, timestampMs: wall - 1000, deletedAtMs: null }],
        );
        await store.apply(Buffer.from(key), peer);
      }
      const keyBytes = input.write(key, 0, 'latin1');
      const valueBytes = input.write(value, keyBytes, 'latin1');
      const result = kv.putNow(input.subarray(0, keyBytes), input.subarray(keyBytes, keyBytes + valueBytes), options);
      // Scribbled over at once, as the next socket read would.
      input.fill(0x21);
      if (result === wouldWait) await kv.put(Buffer.from(key), Buffer.from(value), { ...options, lent: false });
      else if (result !== durableNow) durables.push(result);
      // A blind write of the key at once builds on what the lent write left in memory (under sync always, its pending object).
      const follow = kv.putNow(Buffer.from(key), Buffer.from(`follow-${i}`), {});
      if (follow === wouldWait) await kv.put(Buffer.from(key), Buffer.from(`follow-${i}`), {});
      else if (follow !== durableNow) durables.push(follow);
      written.set(key, value);
      if (i % 25 === 24) {
        await Promise.all(durables);
        durables.length = 0;
      }
    }
    await Promise.all(durables);
    for (const [key, value] of written) {
      const got = await kv.get(Buffer.from(key));
      const values = got.siblings.map((s) => (s.kind === 'value' ? Buffer.from(s.value).toString('latin1') : s.kind));
      assert.ok(values.includes(value), `${key} after ${which} writes under sync ${sync} holds ${value}: ${JSON.stringify(values)}`);
    }
  } finally {
    await engine.close();
  }
}

for (const sync of ['none', 'always'] as const) {
  for (const which of ['fresh', 'peer', 'blind'] as const) {
    test(`lent key and value are stored intact: ${which} writes under sync ${sync}`, async () => {
      await scenario(sync, which);
    });
  }
}
