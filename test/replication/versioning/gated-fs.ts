/** Test helpers for the store's durability paths: a WAL whose fsyncs wait for the test, and a way to let callbacks run. */
import { MemoryFileSystem } from '../../../src/core/index.ts';
import type { AppendFile } from '../../../src/core/index.ts';

/** A memory file system whose WAL fsyncs wait until the test opens the gate, and fail while `failing`. */
export class GatedSyncFileSystem extends MemoryFileSystem {
  gated = false;
  failing = false;
  syncsStarted = 0;
  syncsFinished = 0;
  private waiting: Array<() => void> = [];

  release(): void {
    this.gated = false;
    for (const go of this.waiting.splice(0)) go();
  }

  override async openAppend(path: string, options?: { truncate?: boolean }): Promise<AppendFile> {
    const file = await super.openAppend(path, options);
    const sync = file.sync.bind(file);
    file.sync = async (): Promise<void> => {
      this.syncsStarted++;
      if (this.gated) await new Promise<void>((resolve) => this.waiting.push(resolve));
      if (this.failing) throw new Error('EIO: fdatasync failed');
      await sync();
      this.syncsFinished++;
    };
    return file;
  }
}

/** Lets pending promise callbacks and immediates run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
