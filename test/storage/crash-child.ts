/**
 * Child process for process-crash.test.ts: writes with sync `always` from
 * several concurrent writers and prints each acknowledged key number on
 * stdout (synchronous on a pipe), until the parent kills it with SIGKILL.
 * Usage: node --import tsx test/storage/crash-child.ts <dir> <round>
 */
import { RealClock, RealFileSystem, silentLogger, utf8 } from '../../src/core/index.ts';
import { openLsm } from '../../src/storage/index.ts';
import { crashTestOptions, crashTestValue } from './crash-shared.ts';

const [dir, roundText] = process.argv.slice(2);
if (dir === undefined || roundText === undefined) throw new Error('usage: crash-child.ts <dir> <round>');
const round = Number(roundText);
const db = await openLsm(dir, crashTestOptions, { fs: new RealFileSystem(), clock: new RealClock(), log: silentLogger });
process.stdout.write('ready\n');
let next = 0;
const maxKeysPerRound = 200_000;
async function writer(): Promise<void> {
  while (next < maxKeysPerRound) {
    const n = next++;
    if (n % 10 === 9) {
      // A batch of two keys: both or neither may survive, and both once acknowledged.
      await db.write([
        { type: 'put', key: utf8(`r${round}-${n}`), value: utf8(crashTestValue(round, n)) },
        { type: 'put', key: utf8(`r${round}-${n}-twin`), value: utf8(crashTestValue(round, n)) },
      ]);
    } else {
      await db.put(utf8(`r${round}-${n}`), utf8(crashTestValue(round, n)));
    }
    process.stdout.write(`${n}\n`);
  }
}
await Promise.all(Array.from({ length: 8 }, () => writer()));
await db.close();
