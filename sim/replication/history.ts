/**
 * The recorded history of every client operation in a replication run, and
 * the checks of issue 5's invariants against it.
 *
 * Values written are unique strings, so a version is named by its value.
 * A put or delete carrying the context of an earlier read supersedes exactly
 * the values that read returned (`supersedes`); a blind put (empty context)
 * supersedes nothing. A value may be absent from a later read or the final
 * state only when some write that superseded it had started by then.
 */
import type { NodeId } from '../../src/core/index.ts';
import type { Consistency } from '../../src/replication/index.ts';

export type OpKind = 'get' | 'put' | 'delete' | 'incr' | 'touch';
/** ok: acknowledged; failed: an error came back; unknown: no answer before the client gave up. */
export type OpStatus = 'ok' | 'failed' | 'unknown';

export interface OpRecord {
  readonly id: number;
  readonly client: number;
  readonly node: NodeId;
  readonly kind: OpKind;
  readonly key: string;
  /** put: the unique value written. */
  readonly value?: string;
  /** incr: the delta. */
  readonly delta?: bigint;
  /** put/delete with a context: the values of the read whose context it carries. */
  readonly supersedes: readonly string[];
  /**
   * put/delete without a context: it supersedes whatever its coordinating
   * replica (or, for a delete, its read) had seen, which the history cannot
   * know — so any value of a write that started before it ended.
   */
  readonly blanket?: boolean;
  /** touch with a context: the values of the read whose context it carries (it rewrites those it finds). */
  readonly rewrites?: readonly string[];
  readonly level: Consistency;
  readonly strict: boolean;
  readonly startMs: number;
  endMs: number;
  status: OpStatus;
  /** get: the values read (sorted). */
  read?: string[];
  /** get of a counter: the count read. */
  count?: bigint;
  error?: string;
}

export function levelCount(level: Consistency, n: number): number {
  if (typeof level === 'number') return level;
  if (level === 'one') return 1;
  if (level === 'all') return n;
  return Math.floor(n / 2) + 1;
}

/**
 * How long after it started an unacknowledged operation may still be decided
 * by its coordinating replica: the entry node forwards it at once, to at most
 * three home replicas in turn (each hop within the simulated network's 100 ms
 * latency cap, duplicates included), and the replica decides as the request
 * arrives. Everything later only carries the decided object (fan-out, hints,
 * read repair), so it cannot have seen a write that started after this.
 */
export const unackedDecisionWindowMs = 1000;

/**
 * Whether an operation without a context could have seen `write`: it had not
 * been decided when the write started. An acknowledged one was decided by its
 * end; one without an acknowledgement may still run on its coordinator after
 * the client gave up, for up to unackedDecisionWindowMs after it started.
 */
function mayHaveSeen(op: OpRecord, write: OpRecord): boolean {
  return op.status === 'ok' ? op.endMs >= write.startMs : op.startMs + unackedDecisionWindowMs >= write.startMs;
}

export class History {
  readonly ops: OpRecord[] = [];

  add(op: OpRecord): OpRecord {
    this.ops.push(op);
    return op;
  }

  private supersededBy(write: OpRecord, beforeMs: number): OpRecord | undefined {
    const value = write.value as string;
    return this.ops.find(
      (op) =>
        op.startMs <= beforeMs &&
        (op.supersedes.includes(value) || (op.blanket === true && op !== write && op.key === write.key && mayHaveSeen(op, write))),
    );
  }

  /**
   * Invariant 1 during the run: with a strict quorum and R + W > N, a read that
   * starts after a write was acknowledged returns it, or a write that
   * superseded it had started before the read ended.
   */
  checkQuorumReads(n: number): string | undefined {
    const writes = this.ops.filter((op) => op.kind === 'put' && op.status === 'ok' && op.strict);
    for (const read of this.ops) {
      if (read.kind !== 'get' || read.status !== 'ok' || read.read === undefined) continue;
      const r = levelCount(read.level, n);
      for (const write of writes) {
        if (write.key !== read.key || write.endMs >= read.startMs) continue;
        if (r + levelCount(write.level, n) <= n) continue;
        const value = write.value as string;
        if (read.read.includes(value)) continue;
        if (this.supersededBy(write, read.endMs) !== undefined) continue;
        return `invariant 1 (strict quorum, R + W > N): read #${read.id} of ${read.key} at r=${read.level} on ${read.node} (${read.startMs}–${read.endMs} ms) returned [${read.read.join(', ')}] without ${value}, acknowledged by put #${write.id} at w=${write.level} strict on ${write.node} at ${write.endMs} ms`;
      }
    }
    return undefined;
  }

  /**
   * Invariants 1 and 2 after settling: every acknowledged put is in the final
   * state of its key unless a write that superseded it was issued; nothing is
   * there that nobody wrote.
   */
  checkFinalValues(key: string, finalValues: readonly string[]): string | undefined {
    const written = new Set(this.ops.filter((op) => op.key === key && op.kind === 'put').map((op) => op.value as string));
    for (const value of finalValues) {
      if (!written.has(value)) return `phantom value: ${key} holds ${value}, which no client wrote`;
    }
    for (const op of this.ops) {
      if (op.key !== key || op.kind !== 'put' || op.status !== 'ok') continue;
      const value = op.value as string;
      if (finalValues.includes(value)) continue;
      if (this.supersededBy(op, Infinity) !== undefined) continue;
      const how = op.blanket ? 'a write without context' : op.supersedes.length === 0 ? 'a blind write' : `a write superseding [${op.supersedes.join(', ')}]`;
      return `invariant ${op.supersedes.length === 0 ? 2 : 1} (no acknowledged write lost): put #${op.id} of ${key}=${value} (${how}, w=${op.level}${op.strict ? ' strict' : ' sloppy'}, acknowledged at ${op.endMs} ms) is missing from the converged state [${finalValues.join(', ')}] and no write superseded it`;
    }
    return undefined;
  }

  /**
   * Superseded values stay gone: a value that an acknowledged put or delete
   * carrying a read's context superseded is not in the converged state (a
   * stale replica, hint or repair must not bring it back) — unless a touch
   * may have rewritten it: a touch writes the values it covers again as new
   * versions, which a write concurrent with it does not supersede.
   */
  checkNoResurrection(key: string, finalValues: readonly string[]): string | undefined {
    const touches = this.ops.filter((op) => op.key === key && op.kind === 'touch');
    const writeOf = new Map(this.ops.filter((op) => op.key === key && op.kind === 'put').map((op) => [op.value as string, op]));
    const rewritten = (value: string): boolean =>
      touches.some((t) => {
        if (t.rewrites !== undefined) return t.rewrites.includes(value);
        // Without a context a touch rewrites whatever its coordinating replica held when it ran.
        const write = writeOf.get(value);
        return write !== undefined && mayHaveSeen(t, write);
      });
    for (const op of this.ops) {
      if (op.key !== key || op.status !== 'ok' || (op.kind !== 'put' && op.kind !== 'delete') || op.blanket === true) continue;
      const back = op.supersedes.find((value) => finalValues.includes(value) && !rewritten(value));
      if (back !== undefined) {
        return `resurrection: ${key} holds ${back} in its converged state [${finalValues.join(', ')}], though ${op.kind} #${op.id} (acknowledged at ${op.endMs} ms) carried a context that superseded it`;
      }
    }
    return undefined;
  }

  /**
   * Invariant 4: acknowledged increments ≤ converged value ≤ acknowledged +
   * unacknowledged. When every increment of the key added a distinct power of
   * four, the check is exact: base-4 digit k of the value is how many times
   * increment 4^k was applied, so each must be 1 if it was acknowledged and at
   * most 1 otherwise (an increment counted twice, say by a retry on another
   * replica, shows as a 2 where a sum hides it).
   */
  checkCounter(key: string, finalCount: bigint): string | undefined {
    let acked = 0n;
    let unacked = 0n;
    const incrs = this.ops.filter((op) => op.key === key && op.kind === 'incr');
    for (const op of incrs) {
      if (op.status === 'ok') acked += op.delta as bigint;
      else unacked += op.delta as bigint;
    }
    if (finalCount < acked || finalCount > acked + unacked) {
      return `invariant 4 (counters): ${key} converged to ${finalCount}, but acknowledged increments sum to ${acked} and unacknowledged ones to ${unacked}`;
    }
    const byExponent = new Map<number, OpRecord>();
    for (const op of incrs) {
      const k = powerOfFour(op.delta as bigint);
      if (k === undefined || byExponent.has(k)) return undefined;
      byExponent.set(k, op);
    }
    let rest = finalCount;
    for (let k = 0; rest > 0n || k <= Math.max(-1, ...byExponent.keys()); k++) {
      const applied = Number(rest % 4n);
      rest /= 4n;
      const op = byExponent.get(k);
      if (op === undefined && applied !== 0) return `invariant 4 (counters): ${key} converged to ${finalCount}, whose base-4 digit ${k} is ${applied} though no increment added 4^${k}`;
      if (op === undefined) continue;
      if (applied > 1 || (op.status === 'ok' && applied !== 1)) {
        return `invariant 4 (counters): increment #${op.id} of ${key} by 4^${k} (${op.status === 'ok' ? 'acknowledged' : 'not acknowledged'}) was applied ${applied} times (converged value ${finalCount})`;
      }
    }
    return undefined;
  }

  /** One line per operation, for a failure report. */
  describe(key?: string): string {
    return this.ops
      .filter((op) => key === undefined || op.key === key)
      .map(
        (op) =>
          `#${op.id} c${op.client} ${op.node} ${op.kind} ${op.key}${op.value !== undefined ? `=${op.value}` : ''}${op.delta !== undefined ? ` +${op.delta}` : ''}` +
          `${op.supersedes.length > 0 ? ` ctx[${op.supersedes.join(',')}]` : ''}${op.blanket ? ' no-ctx' : ''} ${op.kind === 'get' ? 'r' : 'w'}=${op.level}${op.strict ? ' strict' : ''}` +
          ` ${op.startMs}-${op.endMs} ${op.status}${op.read !== undefined ? ` -> [${op.read.join(',')}]` : ''}${op.count !== undefined ? ` -> ${op.count}` : ''}${op.error !== undefined ? ` (${op.error})` : ''}`,
      )
      .join('\n');
  }
}

/** k when `n` is 4^k, else undefined. */
function powerOfFour(n: bigint): number | undefined {
  if (n <= 0n) return undefined;
  let k = 0;
  while (n % 4n === 0n) {
    n /= 4n;
    k++;
  }
  return n === 1n ? k : undefined;
}
