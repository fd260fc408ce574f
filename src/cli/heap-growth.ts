/**
 * How far V8 lets the old generation grow past what the last full collection
 * left alive before it starts marking again, set for a node process.
 *
 * V8's default factor is computed from the collector's speed and lands near
 * 1.1–1.5 for a node's heap (tens of MB live). A cluster node under load
 * then ran a mark-compact every 2–5 s (9–23 per node in one target's ~80 s
 * of bench:cluster), each a 3–25 ms pause plus incremental marking steps of
 * up to 12 ms on its only JS thread, and every request in flight on that
 * node waited. With the factor at 4 the same runs made 3–6 per node, and
 * their pauses summed to a third or less (bench/RESULTS.md, cluster section,
 * session 11). The price is
 * memory: the heap may grow to about four times its live size between full
 * collections (V8 still bounds it by its heap limit).
 */
import { setFlagsFromString } from 'node:v8';

export const heapGrowingPercent = 300;

const flagName = '--heap-growing-percent';

/**
 * Sets V8's `--heap-growing-percent` for this process unless the operator
 * already chose one (in `node` flags or NODE_OPTIONS, either spelling);
 * answers whether it did. V8 reads the flag whenever it recomputes its
 * limits, so setting it at run time takes effect from the next collection.
 */
export function tuneHeapGrowth(
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env['NODE_OPTIONS'] ?? '',
  setFlags: (flags: string) => void = setFlagsFromString,
): boolean {
  const chosen = [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => arg.replaceAll('_', '-').startsWith(flagName));
  if (chosen) return false;
  setFlags(`${flagName}=${heapGrowingPercent}`);
  return true;
}
