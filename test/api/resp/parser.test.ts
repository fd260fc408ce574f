/** RespParser: framing, Redis's error texts, limits, and any split of the input into chunks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isRingkvError } from '../../../src/core/index.ts';
import { RespParser, defaultParserLimits, splitArgs } from '../../../src/api/resp/index.ts';
import type { ParserLimits } from '../../../src/api/resp/index.ts';
import { encodeCommand } from './raw-client.ts';

function parseAll(parser: RespParser): string[][] {
  const out: string[][] = [];
  for (;;) {
    const cmd = parser.next();
    if (cmd === undefined) return out;
    out.push(cmd.map((b) => b.toString('latin1')));
  }
}

function parse(text: string, limits?: ParserLimits): string[][] {
  const p = new RespParser(limits);
  p.feed(Buffer.from(text, 'latin1'));
  return parseAll(p);
}

function protocolError(text: string, limits?: ParserLimits, restricted = false): string {
  const p = new RespParser(limits);
  p.restricted = restricted;
  p.feed(Buffer.from(text, 'latin1'));
  try {
    parseAll(p);
  } catch (error) {
    assert.ok(isRingkvError(error) && error.code === 'RINGKV_PROTOCOL', `expected a ProtocolError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`no protocol error for ${JSON.stringify(text)}`);
}

test('multibulk commands, several per chunk, binary-safe', () => {
  assert.deepEqual(parse('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n'), [
    ['GET', 'k'],
    ['SET', 'k', 'a\r\nb'],
  ]);
  assert.deepEqual(parse('*1\r\n$0\r\n\r\n'), [['']]);
  // An empty or negative multibulk is skipped, as Redis does.
  assert.deepEqual(parse('*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n'), [['PING']]);
});

test('inline commands: spaces, quotes, escapes, empty lines', () => {
  assert.deepEqual(parse('PING\r\n\r\nSET  k   v\nGET k\r\n'), [['PING'], ['SET', 'k', 'v'], ['GET', 'k']]);
  assert.deepEqual(parse('SET "a b" \'c d\' "x\\ny" "\\x41\\x42"\r\n'), [['SET', 'a b', 'c d', 'x\ny', 'AB']]);
  assert.deepEqual(parse("SET 'it\\'s' \"\"\r\n"), [['SET', "it's", '']]);
  assert.deepEqual(splitArgs(Buffer.from('"unbalanced')), undefined);
  assert.deepEqual(splitArgs(Buffer.from('"a"b')), undefined);
});

test('protocol errors carry Redis texts', () => {
  assert.equal(protocolError('*2\r\n+GET\r\n'), "Protocol error: expected '$', got '+'");
  assert.equal(protocolError('*x\r\n'), 'Protocol error: invalid multibulk length');
  assert.equal(protocolError('*1\r\n$-5\r\n'), 'Protocol error: invalid bulk length');
  assert.equal(protocolError('*1\r\n$abc\r\n'), 'Protocol error: invalid bulk length');
  assert.equal(protocolError('SET "a\r\n'), 'Protocol error: unbalanced quotes in request');
  assert.equal(protocolError('*20\r\n', defaultParserLimits, true), 'Protocol error: unauthenticated multibulk length');
  assert.equal(protocolError('*1\r\n$20000\r\n', defaultParserLimits, true), 'Protocol error: unauthenticated bulk length');
});

test('limits: bulk length, array length, inline length, command size', () => {
  const small: ParserLimits = { maxBulkBytes: 10, maxArrayLength: 3, maxInlineBytes: 32, maxCommandBytes: 15 };
  assert.equal(protocolError('*1\r\n$11\r\n', small), 'Protocol error: invalid bulk length');
  assert.deepEqual(parse('*1\r\n$10\r\n0123456789\r\n', small), [['0123456789']]);
  assert.equal(protocolError('*4\r\n', small), 'Protocol error: invalid multibulk length');
  assert.equal(protocolError(`${'a'.repeat(40)}`, small), 'Protocol error: too big inline request');
  assert.equal(protocolError(`${'a'.repeat(40)}\r\n`, small), 'Protocol error: too big inline request');
  assert.equal(protocolError(`*${'1'.repeat(40)}`, small), 'Protocol error: too big mbulk count string');
  assert.equal(protocolError(`*1\r\n$${'1'.repeat(40)}`, small), 'Protocol error: too big bulk count string');
  assert.match(protocolError('*2\r\n$8\r\n01234567\r\n$8\r\n', small), /command larger than 15 bytes/);
});

test('a large bulk split into many chunks waits without re-parsing and arrives whole', () => {
  const p = new RespParser();
  const value = Buffer.alloc(1_000_000, 7);
  const frame = encodeCommand(['SET', 'k', value]);
  for (let i = 0; i < frame.length; i += 1000) {
    p.feed(frame.subarray(i, i + 1000));
    const cmd = p.next();
    if (i + 1000 < frame.length) assert.equal(cmd, undefined);
    else assert.ok(cmd !== undefined && cmd[2]?.equals(value));
  }
});

const argArb = fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
const commandArb = fc.array(argArb, { minLength: 1, maxLength: 6 });
/** Inline-safe words: printable, no quotes or spaces. */
const wordArb = fc.stringMatching(/^[a-zA-Z0-9_:.-]{1,10}$/);

test('property: any chunking of a stream of frames parses to the same commands', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(commandArb.map((c) => ({ inline: false, args: c })), fc.array(wordArb, { minLength: 1, maxLength: 4 }).map((w) => ({ inline: true, args: w.map((x) => Buffer.from(x)) }))), { minLength: 1, maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }),
      (commands, cuts) => {
        const stream = Buffer.concat(commands.map((c) => (c.inline ? Buffer.from(`${c.args.map((a) => a.toString()).join(' ')}\r\n`) : encodeCommand(c.args))));
        const p = new RespParser();
        const got: Buffer[][] = [];
        let at = 0;
        let i = 0;
        while (at < stream.length) {
          const size = cuts[i++ % cuts.length] as number;
          p.feed(stream.subarray(at, at + size));
          at += size;
          for (let cmd = p.next(); cmd !== undefined; cmd = p.next()) got.push(cmd);
        }
        assert.equal(got.length, commands.length);
        got.forEach((cmd, j) => assert.deepEqual(cmd, (commands[j] as { args: Buffer[] }).args));
        assert.equal(p.bufferedBytes, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: garbage and mutated frames only ever raise ProtocolError and stay within the limits', () => {
  const limits: ParserLimits = { maxBulkBytes: 1024, maxArrayLength: 64, maxInlineBytes: 256, maxCommandBytes: 4096 };
  const mutated = fc.tuple(commandArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 5 })).map(([args, flips]) => {
    const frame = Buffer.from(encodeCommand(args));
    for (const [pos, byte] of flips) if (frame.length > 0) frame[pos % frame.length] = byte;
    return frame;
  });
  const garbage = fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a));
  fc.assert(
    fc.property(fc.array(fc.oneof(mutated, garbage), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 100 }), (chunks, size) => {
      const p = new RespParser(limits);
      const stream = Buffer.concat(chunks);
      try {
        for (let at = 0; at < stream.length; at += size) {
          p.feed(stream.subarray(at, at + size));
          for (let cmd = p.next(); cmd !== undefined; cmd = p.next()) {
            assert.ok(cmd.length <= limits.maxArrayLength);
            for (const a of cmd) assert.ok(a.length <= limits.maxBulkBytes);
          }
          // Never more than one maximal command plus a chunk is held.
          assert.ok(p.bufferedBytes <= limits.maxCommandBytes + limits.maxBulkBytes + limits.maxInlineBytes + size + 2, `buffered ${p.bufferedBytes}`);
        }
      } catch (error) {
        assert.ok(isRingkvError(error) && error.code === 'RINGKV_PROTOCOL', `unexpected ${String(error)}`);
        assert.match(error.message, /^Protocol error: /);
      }
    }),
    { numRuns: 500 },
  );
});
