/** Node configuration, identity files and the data-directory lock, in process. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import * as nodePath from 'node:path';
import { CorruptionError, InvalidArgumentError, MemoryFileSystem, SeededRandom, fromUtf8, utf8 } from '../../src/core/index.ts';
import { applyConfig, configFromEnv, defaultConfig, maxHintAgeMsOf, parseConfigFile, tombstoneGraceMsOf, validateConfig } from '../../src/node/config.ts';
import { configFromArgs, startSpec } from '../../src/cli/start.ts';
import { parseCommand } from '../../src/cli/args.ts';
import { loadIdentity } from '../../src/node/identity.ts';
import { lockDataDir } from '../../src/node/lock.ts';
import { tempDir } from './process-helpers.ts';

describe('node config', () => {
  test('defaults leave room for a local Redis on 6379', () => {
    const c = defaultConfig();
    assert.deepEqual([c.respPort, c.httpPort, c.clusterPort], [7379, 8379, 9379]);
    assert.equal(c.walSync, 'always');
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.memtableMb, 64);
    assert.equal(c.objectCacheMb, 0);
  });

  test('later sources override earlier ones and strings from flags are parsed', () => {
    let c = applyConfig(defaultConfig(), { respPort: 7000, dc: 'eu-1' }, 'file');
    c = applyConfig(c, configFromEnv({ RINGKV_HTTP_TOKEN: 'from-env', RINGKV_CLUSTER_SECRET: '' }), 'env');
    c = applyConfig(c, { respPort: '7100', memtableMb: '8', objectCacheMb: '16', seeds: ['10.0.0.1:9379,10.0.0.2:9379'], users: ['ann:pw1', 'bob:p:w'] }, 'flags');
    assert.equal(c.respPort, 7100);
    assert.equal(c.memtableMb, 8);
    assert.equal(c.objectCacheMb, 16);
    assert.equal(c.dc, 'eu-1');
    assert.equal(c.httpToken, 'from-env');
    assert.equal(c.clusterSecret, undefined, 'an empty secret means none');
    assert.deepEqual(c.seeds, ['10.0.0.1:9379', '10.0.0.2:9379']);
    assert.deepEqual({ ...c.users }, { ann: 'pw1', bob: 'p:w' });
  });

  test('invalid settings are rejected with the setting, the value and what is accepted', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ httpPort: 65536 }, /httpPort: expected a port number from 0 to 65535, got 65536/],
      [{ nodeId: 'has space' }, /nodeId: "has space" must be 1 to 64 letters/],
      [{ seeds: ['nohostport'] }, /seeds: "nohostport" is not host:port/],
      [{ walSync: 'fsync' }, /walSync: "fsync" is not one of always, interval, none/],
      [{ logLevel: 'loud' }, /logLevel: "loud" is not one of debug, info, warn, error/],
      [{ replicationFactor: 0 }, /replicationFactor: expected a whole number from 1 to 16/],
      [{ memtableMb: 2048 }, /memtableMb: expected a whole number from 1 to 1024, got 2048/],
      [{ objectCacheMb: -1 }, /objectCacheMb: expected a whole number from 0 to 4096, got -1/],
      [{ users: ['nopassword'] }, /users: "nopassword" is not name:password/],
      [{ colour: 'red' }, /Unknown setting "colour" in test; known settings: nodeId, dataDir/],
    ];
    for (const [raw, pattern] of cases) {
      assert.throws(() => applyConfig(defaultConfig(), raw, 'test'), (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message), JSON.stringify(raw));
    }
  });

  test('two listeners on one port are refused; port 0 (any free port) may repeat', () => {
    assert.throws(() => validateConfig(applyConfig(defaultConfig(), { respPort: 8000, httpPort: 8000 }, 't')), /respPort and httpPort are both 8000/);
    validateConfig(applyConfig(defaultConfig(), { respPort: 0, httpPort: 0, clusterPort: 0 }, 't'));
  });

  test('N per namespace comes from a file object or from --namespace-n, comma-separated or repeated', () => {
    assert.deepEqual({ ...defaultConfig().namespaceReplication }, {});
    const fromFile = applyConfig(defaultConfig(), parseConfigFile('{"namespaceReplication": {"session": 2, "audit": 5}}', 'n.json'), 'file');
    assert.deepEqual({ ...fromFile.namespaceReplication }, { session: 2, audit: 5 });
    const fromFlags = configFromArgs(parseCommand(startSpec, ['--namespace-n', 'session=2,cache=1', '--namespace-n', 'audit=5', '-n', '4']), {});
    assert.deepEqual({ ...fromFlags.namespaceReplication }, { session: 2, cache: 1, audit: 5 });
    assert.equal(fromFlags.replicationFactor, 4);
    // Flags replace the file's map as a whole, as for seeds and users.
    const both = applyConfig(fromFile, { namespaceReplication: ['cache=1'] }, 'flags');
    assert.deepEqual({ ...both.namespaceReplication }, { cache: 1 });
  });

  test('namespace names and N are checked, naming the namespace and what is accepted', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['session=0', /namespaceReplication\.session: expected a whole number from 1 to 16, got "0"/],
      ['session=17', /namespaceReplication\.session: expected a whole number from 1 to 16, got "17"/],
      ['session=two', /namespaceReplication\.session: expected a whole number from 1 to 16, got "two"/],
      ['session', /"session" is not namespace=N \(for example session=2\)/],
      ['=2', /"=2" is not namespace=N/],
      ['a:b=2', /namespace "a:b" must be 1 to 64 printable ASCII characters other than ':', ',', '='/],
      [{ 'has space': 2 }, /namespace "has space" must be/],
      [{ séance: 2 }, /namespace "séance" must be/],
      [{ session: 2.5 }, /namespaceReplication\.session: expected a whole number from 1 to 16, got 2.5/],
      [['session=2', 'session=3'], /namespace "session" is given twice/],
      [7, /namespaceReplication: expected namespace=N entries or an object such as \{"session": 2\}, got 7/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(
        () => applyConfig(defaultConfig(), { namespaceReplication: value }, 'test'),
        (e: unknown) => e instanceof InvalidArgumentError && pattern.test(e.message),
        JSON.stringify(value),
      );
    }
  });

  test('the tombstone grace period is whole seconds, small values allowed, zero and negatives refused', () => {
    assert.equal(defaultConfig().tombstoneGraceSeconds, 10 * 24 * 60 * 60);
    assert.equal(tombstoneGraceMsOf(defaultConfig()), 10 * 24 * 60 * 60 * 1000);
    const short = configFromArgs(parseCommand(startSpec, ['--tombstone-grace-seconds', '5']), {});
    assert.equal(tombstoneGraceMsOf(short), 5000);
    assert.equal(maxHintAgeMsOf(short), 2500, 'the hint age limit follows the grace period by default');
    for (const bad of ['0', '-1', '1.5', 'ten']) {
      assert.throws(() => applyConfig(defaultConfig(), { tombstoneGraceSeconds: bad }, 'test'), new RegExp(`tombstoneGraceSeconds: expected a whole number from 1 to \\d+, got "${bad}"`));
    }
  });

  test('the maximum hint age must stay below the tombstone grace period', () => {
    assert.equal(maxHintAgeMsOf(defaultConfig()), 5 * 24 * 60 * 60 * 1000);
    const ok = validateConfig(applyConfig(defaultConfig(), { tombstoneGraceSeconds: 100, maxHintAgeSeconds: '99' }, 't'));
    assert.equal(maxHintAgeMsOf(ok), 99_000);
    for (const age of [100, 101]) {
      assert.throws(
        () => validateConfig(applyConfig(defaultConfig(), { tombstoneGraceSeconds: 100, maxHintAgeSeconds: age }, 't')),
        (e: unknown) => e instanceof InvalidArgumentError && new RegExp(`maxHintAgeSeconds \\(${age}\\) must be below tombstoneGraceSeconds \\(100\\)`).test(e.message),
      );
    }
    assert.throws(() => configFromArgs(parseCommand(startSpec, ['--tombstone-grace-seconds', '60', '--max-hint-age-seconds', '60']), {}), /must be below tombstoneGraceSeconds/);
    assert.throws(() => applyConfig(defaultConfig(), { maxHintAgeSeconds: 0 }, 't'), /maxHintAgeSeconds: expected a whole number from 1/);
  });

  test('a config file must be a JSON object', () => {
    assert.throws(() => parseConfigFile('{ nope', 'x.json'), /x.json: it is not valid JSON/);
    assert.throws(() => parseConfigFile('[1]', 'x.json'), /expected a JSON object of settings/);
    assert.deepEqual(parseConfigFile('{"dc":"a"}', 'x.json'), { dc: 'a' });
  });
});

describe('node identity', () => {
  test('the id is chosen once and kept; the generation grows by one per start', async () => {
    const fs = new MemoryFileSystem();
    const random = new SeededRandom(7);
    const first = await loadIdentity(fs, '/data', undefined, random);
    assert.match(first.nodeId, /^node-[0-9a-f]{8}$/);
    assert.equal(first.generation, 1);
    const second = await loadIdentity(fs, '/data', undefined, random);
    assert.deepEqual(second, { nodeId: first.nodeId, generation: 2 });
    // Both files were synced with their directory: a crash right now keeps them.
    fs.crash(random);
    const third = await loadIdentity(fs, '/data', first.nodeId, random);
    assert.deepEqual(third, { nodeId: first.nodeId, generation: 3 });
  });

  test('a configured id is stored at first start and must match afterwards', async () => {
    const fs = new MemoryFileSystem();
    const random = new SeededRandom(1);
    assert.equal((await loadIdentity(fs, '/d', 'alpha', random)).nodeId, 'alpha');
    assert.equal(fromUtf8(await fs.readFile('/d/NODE_ID')).trim(), 'alpha');
    await assert.rejects(loadIdentity(fs, '/d', 'beta', random), /belongs to node "alpha" but this node was started as "beta"/);
  });

  test('a damaged generation file is a CorruptionError naming the file', async () => {
    const fs = new MemoryFileSystem();
    await loadIdentity(fs, '/d', 'alpha', new SeededRandom(1));
    const f = await fs.openAppend('/d/GENERATION', { truncate: true });
    await f.append(utf8('x1\n'));
    await f.close();
    await assert.rejects(loadIdentity(fs, '/d', 'alpha', new SeededRandom(1)), (e: unknown) => e instanceof CorruptionError && /GENERATION holds "x1"/.test(e.message));
  });
});

describe('data directory lock', () => {
  test('a live owner blocks, a dead one is taken over, release removes the file', () => {
    const dir = tempDir('lock');
    try {
      const path = nodePath.join(dir.path, 'LOCK');
      // The test runner's parent is alive and is not us.
      writeFileSync(path, `${process.ppid}\n`);
      assert.throws(() => lockDataDir(dir.path), new RegExp(`in use by another ringkv process \\(pid ${process.ppid}\\)`));
      // A pid far above pid_max belongs to nobody: a lock left by a kill -9.
      writeFileSync(path, '999999999\n');
      const lock = lockDataDir(dir.path);
      assert.ok(existsSync(path));
      lock.release();
      assert.equal(existsSync(path), false);
    } finally {
      dir.remove();
    }
  });
});
