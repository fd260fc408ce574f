/** Compact kv.* bodies (wire.md §5.1): round trips, the MessagePack fall-back, and malformed input. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError, type WireMessage } from '../../src/core/index.ts';
import { compactMarker, packCompact, unpackCompact } from '../../src/transport/compact.ts';
import { decodeWireMessage, packBody } from '../../src/transport/codec.ts';

const roundTrip = (message: WireMessage): WireMessage => decodeWireMessage(Buffer.from(packBody(message)));

/** Plain arrays for deepEqual (decoded byte fields are Buffer views). */
function plain(message: WireMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(message)) out[k] = v instanceof Uint8Array ? [...v] : v;
  return out;
}

const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
const hintFor = fc.option(fc.string({ maxLength: 40 }), { nil: null });

test('compact bodies: kv.read, kv.read.reply, kv.apply and kv.ack round-trip exactly, with the marker byte first', () => {
  const messages = fc.oneof(
    fc.record({ type: fc.constant('kv.read'), key: bytes(300) }),
    fc.record({ type: fc.constant('kv.read.reply'), object: fc.option(bytes(2000), { nil: null }) }),
    fc.record({ type: fc.constant('kv.apply'), key: bytes(300), object: bytes(2000), hintFor }),
    fc.constant({ type: 'kv.ack' }),
  );
  fc.assert(
    fc.property(messages, (message) => {
      const body = packBody(message);
      assert.equal(body[0], compactMarker);
      assert.deepEqual(plain(roundTrip(message)), plain(message));
    }),
    { numRuns: 300 },
  );
});

test('compact bodies: a message with another shape (extra or wrongly typed field) still goes as MessagePack and keeps every field', () => {
  const extra = { type: 'kv.read', key: Buffer.from('k'), trace: 'abc' };
  assert.equal(packCompact(extra), undefined);
  assert.notEqual(packBody(extra)[0], compactMarker);
  assert.deepEqual(plain(roundTrip(extra)), plain(extra));
  const stringKey = { type: 'kv.apply', key: 'k', object: Buffer.from('o'), hintFor: null };
  assert.equal(packCompact(stringKey), undefined);
  assert.deepEqual(roundTrip(stringKey), stringKey);
  const other = { type: 'kv.scan', fromSlot: 0, toSlot: 10, afterSlot: null, afterKey: null, count: 5 };
  assert.deepEqual(roundTrip(other), other);
  // MessagePack never starts a body with the marker, so the two cannot be confused.
  assert.notEqual(packBody({ type: 'x' })[0], compactMarker);
});

test('compact bodies: the result of packBody is overwritten by the next call (callers copy), a large body gets its own buffer', () => {
  const first = packBody({ type: 'kv.read', key: Buffer.from('aaaa') });
  const copy = Buffer.from(first);
  packBody({ type: 'kv.read', key: Buffer.from('bbbb') });
  assert.deepEqual(plain(decodeWireMessage(copy)), { type: 'kv.read', key: [...Buffer.from('aaaa')] });
  const big = Buffer.alloc(200_000, 7);
  const bigBody = packBody({ type: 'kv.apply', key: Buffer.from('k'), object: big, hintFor: 'n3' });
  packBody({ type: 'kv.ack' });
  const decoded = decodeWireMessage(Buffer.from(bigBody));
  assert.equal((decoded.object as Uint8Array).length, big.length);
  assert.equal(decoded.hintFor, 'n3');
});

test('compact bodies: every truncation or trailing byte of a valid body is a ProtocolError, never a wrong message', () => {
  // Each copied at once: packBody's result is a scratch buffer.
  const samples = [
    { type: 'kv.read', key: Buffer.from('key') },
    { type: 'kv.read.reply', object: null },
    { type: 'kv.read.reply', object: Buffer.from('object') },
    { type: 'kv.apply', key: Buffer.from('key'), object: Buffer.from('object'), hintFor: 'n2' },
    { type: 'kv.apply', key: Buffer.from('key'), object: Buffer.from('object'), hintFor: null },
    { type: 'kv.ack' },
  ].map((m) => Buffer.from(packBody(m)));
  for (const body of samples) {
    for (let cut = 1; cut < body.length; cut++) assert.throws(() => unpackCompact(body.subarray(0, cut)), ProtocolError, `cut at ${cut} of ${body.length}`);
    assert.throws(() => unpackCompact(Buffer.concat([body, Buffer.from([0])])), ProtocolError);
  }
  assert.throws(() => unpackCompact(Buffer.from([compactMarker, 99])), /unknown kind 99/);
  // A null where a key must be.
  const nullKey = Buffer.from([compactMarker, 1, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => unpackCompact(nullKey), /null where bytes are required/);
});

test('compact bodies: random bytes after the marker never throw anything but ProtocolError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 40 }), (rest) => {
      const body = Buffer.concat([Buffer.from([compactMarker]), rest]);
      try {
        unpackCompact(body);
      } catch (error) {
        assert.ok(error instanceof ProtocolError, String(error));
      }
    }),
    { numRuns: 500 },
  );
});
