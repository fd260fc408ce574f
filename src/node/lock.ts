/**
 * `<data>/LOCK` holds the pid of the process that owns the data directory.
 * Two processes writing one WAL would corrupt it, so a second start fails
 * fast. A lock left by a killed process (kill -9) is taken over once its pid
 * is gone. Not bulletproof across pid reuse, but it catches the usual mistake
 * (starting a node twice) without native flock.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { InvalidArgumentError, IoError } from '../core/index.ts';

export const lockFileName = 'LOCK';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface DataDirLock {
  release(): void;
}

export function lockDataDir(dataDir: string): DataDirLock {
  const path = nodePath.join(dataDir, lockFileName);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          try {
            fs.unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new IoError(`Cannot create ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
      }
    }
    const owner = Number(fs.readFileSync(path, 'utf8').trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
      throw new InvalidArgumentError(`The data directory ${dataDir} is in use by another ringkv process (pid ${owner}); stop it or choose another --data directory`);
    }
    // Stale lock from a process that died without releasing it.
    fs.rmSync(path, { force: true });
  }
  throw new IoError(`Cannot take the lock ${path}: another process keeps recreating it`);
}
