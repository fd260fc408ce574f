import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError, TimeoutError, UnavailableError, utf8 } from '../../../src/core/index.ts';
import { fromWireError, parseCoordinateReply, parseKvRequest, parseScanReply, toWireError } from '../../../src/replication/messages.ts';

test('parseKvRequest accepts well-formed requests', () => {
  const apply = parseKvRequest({ type: 'kv.apply', key: utf8('k'), object: utf8('o'), hintFor: 'n2' });
  assert.deepEqual(apply, { type: 'kv.apply', key: utf8('k'), object: utf8('o'), hintFor: 'n2' });
  const put = parseKvRequest({ type: 'kv.coordinate', opId: 'n1/x/1', kind: 'incr', key: utf8('c'), value: null, delta: 3n, context: null, expiresAtMs: null, keepExpiry: true, w: 'quorum', strict: false, timeoutMs: 100 });
  assert.equal(put.type, 'kv.coordinate');
  assert.equal(put.type === 'kv.coordinate' ? put.delta : undefined, 3n);
});

test('parseKvRequest names the bad field of a malformed request', () => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ type: 'kv.apply', key: 'not bytes', object: utf8('o') }, /field "key" must be bytes/],
    [{ type: 'kv.apply', key: utf8('k'), object: utf8('o'), hintFor: 7 }, /field "hintFor"/],
    [{ type: 'kv.read' }, /field "key"/],
    [{ type: 'kv.coordinate', opId: 'x', kind: 'explode', key: utf8('k'), timeoutMs: 1 }, /field "kind"/],
    [{ type: 'kv.coordinate', opId: 'x', kind: 'incr', key: utf8('k'), delta: 1, timeoutMs: 1 }, /field "delta"/],
    [{ type: 'kv.coordinate', opId: 'x', kind: 'put', key: utf8('k'), timeoutMs: 1 }, /field "value"/],
    [{ type: 'kv.coordinate', opId: 'x', kind: 'put', key: utf8('k'), value: utf8('v'), w: 'most', timeoutMs: 1 }, /field "w"/],
    [{ type: 'kv.coordinate', opId: '', kind: 'delete', key: utf8('k'), timeoutMs: 1 }, /field "opId"/],
    [{ type: 'kv.scan', fromSlot: -1, toSlot: 2, count: 1 }, /field "fromSlot"/],
    [{ type: 'kv.nope' }, /Unknown kv message type "kv.nope"/],
  ];
  for (const [message, pattern] of cases) {
    assert.throws(() => parseKvRequest(message as { type: string }), (e: unknown) => e instanceof ProtocolError && pattern.test(e.message), JSON.stringify(message, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
  }
  assert.throws(() => parseScanReply({ type: 'kv.scan.reply', slots: [1], keys: [] }), ProtocolError);
});

test('a write failure crosses the wire with its class, code and counts', () => {
  const wire = toWireError(new UnavailableError('1 of 2 answered', { answered: 1, required: 2 }));
  const back = parseCoordinateReply({ type: 'kv.coordinate.reply', context: null, count: null, touched: false, error: wire }).error;
  assert.ok(back instanceof UnavailableError);
  assert.equal(back.answered, 1);
  assert.equal(back.required, 2);
  assert.ok(fromWireError(toWireError(new TimeoutError('late'))) instanceof TimeoutError);
});
