import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, RealFileSystem, fromUtf8, utf8 } from '../../src/core/index.ts';

test('RealFileSystem appends, syncs, reads positionally, renames and lists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-fs-'));
  try {
    const fs = new RealFileSystem();
    await fs.mkdirp(join(dir, 'sub'));
    const file = await fs.openAppend(join(dir, 'sub', 'a'));
    await file.append(utf8('hello '));
    file.appendSync(utf8('world'));
    await file.sync();
    assert.equal(file.size, 11);
    await file.close();
    await fs.rename(join(dir, 'sub', 'a'), join(dir, 'sub', 'b'));
    await fs.syncDir(join(dir, 'sub'));
    assert.deepEqual(await fs.list(join(dir, 'sub')), ['b']);
    const reader = await fs.openRead(join(dir, 'sub', 'b'));
    assert.equal(fromUtf8(reader.readSync(6, 100)), 'world');
    assert.equal(fromUtf8(await reader.read(0, 5)), 'hello');
    await reader.close();
    await fs.truncate(join(dir, 'sub', 'b'), 5);
    assert.equal(await fs.size(join(dir, 'sub', 'b')), 5);
    assert.equal(await fs.size(join(dir, 'missing')), undefined);
    await assert.rejects(fs.openRead(join(dir, 'missing')), (e: unknown) => e instanceof IoError && /ENOENT/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
