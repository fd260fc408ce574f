/**
 * The contract between `npm run sim` and a scenario file. A scenario lives in
 * sim/scenarios/<name>.ts and exports `scenario`; main.ts loads it by name, so
 * adding a scenario never means editing main.ts. See docs/simulator.md.
 */

export interface ScenarioOptions {
  /** Cluster size (--nodes); a scenario may have a minimum and says so in its failure. */
  readonly nodes: number;
  /** Extra --flag=value pairs the CLI did not recognise, for scenario-specific knobs. */
  readonly extra: Readonly<Record<string, string>>;
}

export interface ScenarioResult {
  readonly ok: boolean;
  /** Faults the run injected (lost, duplicated, reordered, slowed, cut messages; crashes; restarts; partitions). */
  readonly faultsInjected: number;
  /** Operations whose result was checked against a model, when the scenario checks any. */
  readonly opsChecked?: number;
  /** What went wrong, when ok is false: the invariant and the values seen. */
  readonly failure?: string;
  /**
   * Figures to aggregate over seeds: names ending in "Max" are maxed, in
   * "Min" are minimised, every other one is summed.
   */
  readonly metrics?: Readonly<Record<string, number>>;
  /** SHA-256 of the run's trace (same seed ⇒ same hash). */
  readonly traceHash?: string;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  readonly defaultNodes: number;
  run(seed: number, options: ScenarioOptions): Promise<ScenarioResult>;
  /** Derived figures (rates) from the aggregated metrics, for the summary. */
  summarize?(metrics: Readonly<Record<string, number>>, runs: number): Record<string, number>;
}

/** Aggregates one run's metrics into the running totals (see ScenarioResult.metrics). */
export function aggregateMetrics(into: Record<string, number>, metrics: Readonly<Record<string, number>>): void {
  for (const [name, value] of Object.entries(metrics)) {
    const current = into[name];
    if (current === undefined) into[name] = value;
    else if (name.endsWith('Max')) into[name] = Math.max(current, value);
    else if (name.endsWith('Min')) into[name] = Math.min(current, value);
    else into[name] = current + value;
  }
}
