/** The frame decoder against any chunking of the byte stream, and its limits. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../src/core/index.ts';
import { encodeHeader, FrameDecoder, type Frame } from '../../src/transport/frame.ts';
import { decodeWireMessage, errorFromBody, errorToBody, packBody } from '../../src/transport/codec.ts';

function encodeFrame(type: number, requestId: number, body: Buffer): Buffer {
  return Buffer.concat([encodeHeader(type, requestId, body.length), body]);
}

test('frame decoder: any split of the stream yields the same frames in order', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ type: fc.integer({ min: 0, max: 255 }), requestId: fc.nat(), body: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.requestId, Buffer.from(f.body))));
        const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % stream.length)))].sort((a, b) => a - b);
        const decoder = new FrameDecoder(1024);
        const got: Frame[] = [];
        let last = 0;
        for (const point of [...points, stream.length]) {
          decoder.push(stream.subarray(last, point), (frame) => {
            got.push(frame);
          });
          last = point;
        }
        assert.equal(got.length, frames.length);
        frames.forEach((f, i) => {
          assert.equal(got[i]?.type, f.type);
          assert.equal(got[i]?.requestId, f.requestId);
          assert.deepEqual([...(got[i]?.body ?? [])], [...f.body]);
        });
        assert.equal(decoder.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('frame decoder: a body over the limit is refused from its header, before the body arrives', () => {
  const decoder = new FrameDecoder(100);
  assert.throws(() => decoder.push(encodeHeader(0x10, 0, 101), () => {}), (error: unknown) => {
    assert.ok(error instanceof ProtocolError);
    assert.match(error.message, /101 bytes: the limit is 100/);
    return true;
  });
});

test('frame decoder: a frame with another protocol version is refused', () => {
  const header = encodeHeader(0x10, 0, 0);
  header[0] = 9;
  assert.throws(() => new FrameDecoder(100).push(header, () => {}), /protocol version 9/);
});

test('codec: a body that is not a message map is a protocol error', () => {
  assert.throws(() => decodeWireMessage(packBody([1, 2, 3])), ProtocolError);
  assert.throws(() => decodeWireMessage(packBody({ type: 5 })), ProtocolError);
  assert.throws(() => decodeWireMessage(Buffer.from([0xc1])), ProtocolError);
  assert.deepEqual(decodeWireMessage(packBody({ type: 'x', n: 1n })), { type: 'x', n: 1n });
});

test('codec: numbers stay numbers and bigints stay bigints at every width', () => {
  const numbers = [0, 1, -1, 255, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, -(2 ** 31) - 1, -(2 ** 53 - 1), 1e20, 0.1];
  const bigints = [0n, 1n, -1n, 2n ** 32n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n];
  const decoded = decodeWireMessage(packBody({ type: 'x', numbers, bigints }));
  assert.deepEqual(decoded.numbers, numbers);
  assert.deepEqual(decoded.bigints, bigints);
  assert.throws(() => packBody({ type: 'x', n: 2n ** 64n }), /Cannot encode the message/);
});

test('frame decoder: bodies never share memory with the socket chunks they came from', () => {
  const body = packBody({ type: 'x', value: new Uint8Array([1, 2, 3]) });
  const chunk = Buffer.concat([encodeHeader(0x10, 0, body.length), body, encodeHeader(0x10, 0, body.length), body]);
  const frames: Frame[] = [];
  new FrameDecoder(1024).push(chunk, (frame) => {
    frames.push(frame);
  });
  assert.equal(frames.length, 2);
  chunk.fill(0);
  for (const frame of frames) {
    const value = decodeWireMessage(frame.body).value as Uint8Array;
    assert.deepEqual([...value], [1, 2, 3]);
  }
});

test('codec: an error with an unknown code keeps its code', () => {
  const error = errorFromBody({ code: 'RINGKV_FUTURE', message: 'from a newer node' }, 'n1');
  assert.equal((error as { code?: string }).code, 'RINGKV_FUTURE');
  assert.equal(error.message, 'from a newer node');
  assert.deepEqual(errorToBody(new Error('plain')), { code: null, message: 'plain' });
});
