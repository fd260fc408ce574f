/** Small pure pieces: Redis's glob matcher, the reply encoder, the settings registry, key slots, INCRBYFLOAT arithmetic. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ReplyWriter, globMatch, keySlot } from '../../../src/api/resp/index.ts';
import { Settings } from '../../../src/api/settings.ts';
import { addDecimals, parseDecimal, parseInt64 } from '../../../src/api/resp/commands/values.ts';

const g = (p: string, s: string, nocase = false): boolean => globMatch(Buffer.from(p), Buffer.from(s), nocase);

test('glob: Redis stringmatchlen semantics', () => {
  // As in Redis 7.0, '*' does not match the empty key (KEYS * and SCAN MATCH * skip the matcher).
  assert.ok(!g('*', ''));
  assert.ok(g('*', 'x'));
  assert.ok(g('h?llo', 'hello'));
  assert.ok(!g('h?llo', 'hllo'));
  assert.ok(g('h*llo', 'heeeello'));
  assert.ok(g('h[ae]llo', 'hallo'));
  assert.ok(!g('h[ae]llo', 'hillo'));
  assert.ok(g('h[^e]llo', 'hallo'));
  assert.ok(!g('h[^e]llo', 'hello'));
  assert.ok(g('h[a-b]llo', 'hbllo'));
  assert.ok(g('h[b-a]llo', 'hbllo'));
  assert.ok(g('h\\*llo', 'h*llo'));
  assert.ok(!g('h\\*llo', 'hello'));
  assert.ok(g('{t}*', '{t}k4'));
  assert.ok(g('MAX*', 'maxclients', true));
  assert.ok(!g('MAX*', 'maxclients'));
  // Hopeless backtracking ends early instead of taking exponential time.
  const started = Date.now();
  assert.ok(!g(`${'a*'.repeat(30)}b`, 'a'.repeat(60)));
  assert.ok(Date.now() - started < 1000);
});

test('glob: a pattern without metacharacters matches only itself', () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9:]{1,12}$/), fc.stringMatching(/^[a-z0-9:]{0,12}$/), (a, b) => {
      assert.equal(g(a, b), a === b);
      assert.ok(g(`${a}*`, `${a}${b}`));
    }),
  );
});

test('reply encoder: RESP2 and RESP3 forms, large values passed through without a copy', () => {
  const w = new ReplyWriter();
  w.ok();
  w.nullBulk();
  w.map(1);
  w.bulk('k');
  w.integer(-5n);
  w.boolean(true);
  w.double(1.5, '1.5');
  w.error('ERR line\r\nbreak');
  assert.equal(Buffer.concat(w.take() ?? []).toString(), '+OK\r\n$-1\r\n*2\r\n$1\r\nk\r\n:-5\r\n:1\r\n$3\r\n1.5\r\n-ERR line  break\r\n');
  w.protocol = 3;
  w.nullBulk();
  w.map(1);
  w.boolean(false);
  w.double(1.5, '1.5');
  w.verbatim('a:1');
  assert.equal(Buffer.concat(w.take() ?? []).toString(), '_\r\n%1\r\n#f\r\n,1.5\r\n=7\r\ntxt:a:1\r\n');
  assert.equal(w.take(), undefined);
  const big = Buffer.alloc(200_000, 1);
  w.bulk(big);
  const chunks = w.take() ?? [];
  assert.ok(chunks.includes(big));
  assert.equal(Buffer.concat(chunks).length, big.length + '$200000\r\n'.length + 2);
});

test('reply encoder: byte bulks of every length class, across slab boundaries', () => {
  for (const slab of [4096, 64 * 1024]) {
    const w = new ReplyWriter(slab);
    let expected = '';
    for (const length of [0, 1, 9, 10, 99, 100, 999, 1000, 4095, 4096, 12_345, 65_536]) {
      const value = Buffer.alloc(length, 97 + (length % 26));
      w.bulk(value);
      expected += `$${length}\r\n${value.toString('latin1')}\r\n`;
    }
    assert.equal(Buffer.concat(w.take() ?? []).toString('latin1'), expected);
  }
});

test('settings: validation, typed getters, listeners, immutability', () => {
  const s = new Settings({ 'default-read-consistency': 'ONE', appendonly: 'yes' });
  assert.equal(s.get('default-read-consistency'), 'one');
  assert.equal(s.getConsistency('default-read-consistency'), 'one');
  assert.equal(s.getBool('appendonly'), true);
  const seen: string[] = [];
  const off = s.onChange('maxclients', (v, prev) => seen.push(`${prev}->${v}`));
  s.set('maxclients', '5');
  s.set('maxclients', '5');
  off();
  s.set('maxclients', '6');
  assert.deepEqual(seen, ['10000->5']);
  assert.equal(s.getInt('maxclients'), 6);
  s.set('default-write-consistency', '3');
  assert.equal(s.getConsistency('default-write-consistency'), 3);
  assert.throws(() => s.set('maxclients', '0'), /must be between 1 and 1000000, not 0/);
  assert.throws(() => s.set('maxclients', '1.5'), /must be an integer/);
  assert.throws(() => s.set('wal-sync', 'always'), { code: 'RINGKV_CONFLICT' });
  s.set('wal-sync', 'ALWAYS', { force: true });
  assert.equal(s.get('wal-sync'), 'always');
  assert.throws(() => s.set('nope', '1'), { code: 'RINGKV_INVALID_ARGUMENT' });
  assert.throws(() => s.set('default-read-consistency', 'most'), /one, quorum, all, local_quorum or a number/);
  assert.equal(s.list().find((x) => x.name === 'save')?.value, '');
});

test('key slots match Redis Cluster (CRC16/XMODEM, hash tags)', () => {
  assert.equal(keySlot(Buffer.from('foo')), 12182);
  assert.equal(keySlot(Buffer.from('{user1000}.following')), keySlot(Buffer.from('{user1000}.followers')));
  assert.equal(keySlot(Buffer.from('foo{}{bar}')), keySlot(Buffer.from('foo{}{bar}')));
  assert.equal(keySlot(Buffer.from('{}x')), keySlot(Buffer.from('{}x')));
  assert.notEqual(keySlot(Buffer.from('{}x')), keySlot(Buffer.from('x')));
});

test('integers follow string2ll; INCRBYFLOAT follows long double arithmetic', () => {
  for (const ok of ['0', '-1', '9223372036854775807', '-9223372036854775808']) assert.equal(parseInt64(Buffer.from(ok)), BigInt(ok));
  for (const bad of ['', '-0', '01', '+1', ' 1', '1 ', '9223372036854775808', '1.0', 'x']) assert.equal(parseInt64(Buffer.from(bad)), undefined, bad);
  const add = (a: string, b: string): string => addDecimals(parseDecimal(Buffer.from(a)) as never, parseDecimal(Buffer.from(b)) as never);
  // Values printed by redis-server 7.0 for the same operations.
  assert.equal(add('9223372036854775807', '1.5'), '9223372036854775808');
  assert.equal(add('0.1', '0.2'), '0.3');
  assert.equal(add('123456789.123', '0.000001'), '123456789.12300099999993108');
  assert.equal(add('100000000000000000000', '0.1'), '100000000000000000000');
  assert.equal(add('1e2', '-0.5'), '99.5');
  assert.equal(add('0', '-0'), '0');
  assert.equal(parseDecimal(Buffer.from('inf')), undefined);
  assert.equal(parseDecimal(Buffer.from(' 1')), undefined);
});
