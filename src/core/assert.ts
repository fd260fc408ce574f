/**
 * Assertions are for programmer errors (broken invariants) and stay on in
 * production: continuing past a broken invariant in a database loses data.
 * Operating errors (bad input, disk full) use the typed errors in errors.ts.
 */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable: unexpected ${what}: ${String(value)}`);
}
