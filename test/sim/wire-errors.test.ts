import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ClosedError,
  ConflictError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  NotFoundError,
  OverloadedError,
  ProtocolError,
  RateLimitedError,
  RingkvError,
  TimeoutError,
  UnauthorizedError,
  UnavailableError,
} from '../../src/core/index.ts';
import { errorFromWire, errorToWire } from '../../sim/wire-errors.ts';

const roundTrip = (error: unknown): Error => errorFromWire(structuredClone(errorToWire(error)));

test('wire errors: every RingkvError class comes back as itself with its code, message and fields', () => {
  const errors: RingkvError[] = [
    new NotFoundError('no key "a"'),
    new CorruptionError('bad block', { file: '/d/1.sst', offset: 4096 }),
    new IoError('disk full'),
    new InvalidArgumentError('key too long'),
    new UnavailableError('1 of 2 answered', { answered: 1, required: 2 }),
    new TimeoutError('slow'),
    new OverloadedError('queue full'),
    new RateLimitedError('too many', 250),
    new ClosedError('closed'),
    new ConflictError('stale'),
    new UnauthorizedError('bad secret'),
    new ProtocolError('bad frame'),
  ];
  for (const original of errors) {
    const back = roundTrip(original);
    assert.equal(back.constructor, original.constructor, original.name);
    assert.equal((back as RingkvError).code, original.code);
    assert.equal(back.message, original.message);
  }
  const corruption = roundTrip(errors[1]) as CorruptionError;
  assert.deepEqual([corruption.file, corruption.offset], ['/d/1.sst', 4096]);
  const unavailable = roundTrip(errors[4]) as UnavailableError;
  assert.deepEqual([unavailable.answered, unavailable.required], [1, 2]);
  assert.equal((roundTrip(errors[7]) as RateLimitedError).retryAfterMs, 250);
});

test('wire errors: anything else arrives as a ProtocolError that names it', () => {
  const plain = roundTrip(new TypeError('x is undefined'));
  assert.ok(plain instanceof ProtocolError);
  assert.match(plain.message, /TypeError: x is undefined/);
  assert.match(roundTrip('a string').message, /a string/);
});
