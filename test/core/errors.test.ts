import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CorruptionError,
  RateLimitedError,
  RingkvError,
  TimeoutError,
  UnavailableError,
  errorDetails,
  errorFromCode,
  isKnownErrorCode,
} from '../../src/core/index.ts';

test('errorFromCode rebuilds every error class with its fields; unknown codes keep their code', () => {
  const originals = [
    new UnavailableError('1 of 2', { answered: 1, required: 2 }),
    new CorruptionError('bad block', { file: '/db/1.sst', offset: 4096 }),
    new RateLimitedError('slow down', 250),
    new TimeoutError('late'),
  ];
  for (const original of originals) {
    const rebuilt = errorFromCode(original.code, original.message, errorDetails(original));
    assert.equal(rebuilt.constructor, original.constructor);
    assert.deepEqual(errorDetails(rebuilt), errorDetails(original));
    assert.equal(rebuilt.message, original.message);
  }
  assert.equal(isKnownErrorCode('RINGKV_FUTURE'), false);
  const future = errorFromCode('RINGKV_FUTURE' as never, 'from a newer peer');
  assert.ok(future instanceof RingkvError);
  assert.equal(future.code, 'RINGKV_FUTURE');
});
