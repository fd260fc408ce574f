/**
 * Group commit linger (sync `always`): after a group of n writes the commit
 * loop waits up to `groupCommitLingerMs` for n writes to queue, never when
 * the last group was small, and never lets a put resolve before the
 * fdatasync that covers its record.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryFileSystem, RealClock, SeededRandom, VirtualClock, silentLogger, utf8 } from '../../src/core/index.ts';
import type { AppendFile, Clock, FileSystem, OpenAppendOptions } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import type { LsmEngine } from '../../src/storage/index.ts';
import { FencedFileSystem, withSync } from './helpers.ts';

/** Counts fdatasyncs as they start and end, and can hold them until released. */
class GatedFileSystem extends FencedFileSystem {
  started = 0;
  finished = 0;
  private gate: Promise<void> | undefined = undefined;
  private open: (() => void) | undefined = undefined;

  hold(): void {
    this.gate ??= new Promise<void>((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
    this.open = undefined;
  }

  override async openAppend(path: string, options?: OpenAppendOptions): Promise<AppendFile> {
    const file = await super.openAppend(path, options);
    const sync = async (): Promise<void> => {
      this.started++;
      await file.sync();
      if (this.gate !== undefined) await this.gate;
      this.finished++;
    };
    return withSync(file, sync);
  }
}

/** Rejects when `promise` has not settled after `ms` of real time (a hang fails instead of stalling the suite). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function turns(n: number): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < n; i++) p = p.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
  return p;
}

async function open(fs: FileSystem, clock: Clock, lingerMs = 1): Promise<LsmEngine> {
  return openLsm('/db', { sync: 'always', groupCommitLingerMs: lingerMs, groupCommitLingerMinWrites: 4 }, { fs, clock, log: silentLogger });
}

test('a lone writer never lingers: its puts complete while virtual time stands still', async () => {
  const fs = new MemoryFileSystem();
  const clock = new VirtualClock();
  const db = await open(fs, clock);
  for (let i = 0; i < 50; i++) await within(db.put(utf8(`k${i}`), utf8('v')), 5000, `lone put ${i}`);
  // Three writers (below groupCommitLingerMinWrites) do not wait either.
  await within(
    Promise.all([0, 1, 2].map(async (w) => {
      for (let i = 0; i < 20; i++) await db.put(utf8(`w${w}-${i}`), utf8('v'));
    })),
    5000,
    'three writers',
  );
  assert.equal(clock.pendingTimers(), 0);
  await db.close();
});

test('after a group of n, fewer queued writes wait for the linger timer, and a linger that timed out turns lingering off for a while', async () => {
  const fs = new GatedFileSystem(new MemoryFileSystem());
  const clock = new VirtualClock();
  const db = await open(fs, clock);
  // A group of 10.
  await within(Promise.all(Array.from({ length: 10 }, (_, i) => db.put(utf8(`a${i}`), utf8('v')))), 5000, 'first group');
  const syncsAfterFirst = fs.finished;
  // 4 writes arrive after it: the loop lingers for 10 (a timer is pending, no fdatasync starts).
  const resolved: boolean[] = [];
  const late = Array.from({ length: 4 }, (_, i) => db.put(utf8(`b${i}`), utf8('v')).then(() => void (resolved[i] = true)));
  await turns(20);
  assert.equal(fs.started, syncsAfterFirst, 'no fdatasync while lingering');
  assert.equal(resolved.filter(Boolean).length, 0);
  assert.equal(clock.pendingTimers(), 1, 'the linger timer');
  // The timer (1 ms of virtual time) ends the wait: the 4 go as one group.
  await clock.advance(1);
  await within(Promise.all(late), 5000, 'lingering group');
  assert.equal(fs.finished, syncsAfterFirst + 1);
  // That linger timed out with fewer than half of the 10 back: the next groups do not linger.
  await within(Promise.all(Array.from({ length: 6 }, (_, i) => db.put(utf8(`c${i}`), utf8('v')))), 5000, 'next group');
  await turns(5);
  assert.equal(clock.pendingTimers(), 0, 'no linger after a linger that timed out');
  await db.close();
});

test('closed-loop writers: full groups never wait for the timer, and no put resolves before its own fdatasync ends', async () => {
  const fs = new GatedFileSystem(new MemoryFileSystem());
  const clock = new VirtualClock();
  const db = await open(fs, clock, 50);
  const writers = 32;
  const rounds = 6;
  let early = 0;
  const base = fs.finished;
  await within(
    Promise.all(Array.from({ length: writers }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        const startedBefore = fs.started;
        await db.put(utf8(`x${w}-${r}`), utf8('v'));
        // An fdatasync that started after this put was issued has ended.
        if (fs.finished <= startedBefore) early++;
      }
    })),
    10_000,
    'closed loop (virtual time never advanced: a timer-bound wait would hang)',
  );
  assert.equal(early, 0);
  assert.ok(fs.finished - base <= rounds + 1, `${writers * rounds} writes took ${fs.finished - base} fdatasyncs`);
  await db.close();
});

test('a held fdatasync holds every put of its group, lingering or not', async () => {
  const fs = new GatedFileSystem(new MemoryFileSystem());
  const db = await open(fs, new RealClock(), 1);
  await Promise.all(Array.from({ length: 8 }, (_, i) => db.put(utf8(`a${i}`), utf8('v'))));
  fs.hold();
  let settled = 0;
  const held = Array.from({ length: 8 }, (_, i) => db.put(utf8(`b${i}`), utf8('v')).then(() => void settled++));
  // Long enough for the linger to end and the fdatasync to start.
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.ok(fs.started > fs.finished, 'an fdatasync is in flight');
  assert.equal(settled, 0, 'no put resolved before its fdatasync ended');
  fs.release();
  await within(Promise.all(held), 5000, 'released group');
  assert.equal(settled, 8);
  await db.close();
});

test('crash while lingering: every acknowledged put survives, over 20 random crash points', async () => {
  const random = new SeededRandom(606);
  for (let round = 0; round < 20; round++) {
    const disk = new MemoryFileSystem();
    const fs = new FencedFileSystem(disk);
    const db = await openLsm('/db', { sync: 'always', groupCommitLingerMs: 1, memtableBytes: 4096 }, { fs, clock: new RealClock(), log: silentLogger });
    const acked: string[] = [];
    const crashAfter = 10 + random.int(150);
    let crashed = false;
    const writers = 12;
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      // Writers come back at different speeds, so groups are often short of the last one.
      for (let i = 0; !crashed && i < 40; i++) {
        const key = `w${w}-${i}`;
        try {
          await db.put(utf8(key), utf8(`value-${key}`));
        } catch {
          return;
        }
        if (crashed) return;
        acked.push(key);
        if (acked.length >= crashAfter) {
          crashed = true;
          fs.fence();
          disk.crash(random, { tornWrites: round % 2 === 1 });
          return;
        }
        if ((w + i) % 3 === 0) await new Promise((resolve) => setTimeout(resolve, random.int(2)));
      }
    }));
    if (!crashed) {
      fs.fence();
      disk.crash(random);
    }
    const reopened = await openLsm('/db', { sync: 'always' }, { fs: disk, clock: new RealClock(), log: silentLogger });
    for (const key of acked) {
      const entry = await reopened.get(utf8(key));
      assert.ok(entry !== undefined, `round ${round}: acknowledged ${key} lost (${acked.length} acked)`);
    }
    await reopened.close();
  }
});

test('writes queued during an fdatasync wait for the woken group to come back, then go with it in one fdatasync', async () => {
  const fs = new GatedFileSystem(new MemoryFileSystem());
  const clock = new VirtualClock();
  const db = await open(fs, clock);
  // Group A (8 writes) in a held fdatasync; group B (8 writes) queues behind it.
  fs.hold();
  const a = Array.from({ length: 8 }, (_, i) => db.put(utf8(`a${i}`), utf8('v')));
  await turns(10);
  const b = Array.from({ length: 8 }, (_, i) => db.put(utf8(`b${i}`), utf8('v')));
  await turns(10);
  const started = fs.started;
  fs.release();
  await within(Promise.all(a), 5000, 'group A');
  await turns(20);
  // B alone would be a group of 8 while A's writers come back: it lingers for them instead.
  assert.equal(fs.started, started, 'B did not start its own fdatasync');
  const back = Array.from({ length: 8 }, (_, i) => db.put(utf8(`c${i}`), utf8('v')));
  await within(Promise.all([...b, ...back]), 5000, 'B with the returning writers');
  assert.equal(fs.started, started + 1, 'B and the returning writers shared one fdatasync');
  assert.equal(clock.pendingTimers(), 0);
  await db.close();
});
