/**
 * The run's trace: every network event and log record, in order, folded into
 * a SHA-256 so two runs can be compared event for event, with the last lines
 * kept for failure reports.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Clock, LogFields, Logger, LogLevel } from '../src/core/index.ts';

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  return value;
}

export class Trace {
  private readonly digest: Hash = createHash('sha256');
  private readonly tail: string[] = [];
  private next = 0;
  events = 0;

  constructor(private readonly tailSize = 200) {}

  record(line: string): void {
    this.events++;
    this.digest.update(line);
    this.digest.update('\n');
    if (this.tailSize === 0) return;
    if (this.tail.length < this.tailSize) this.tail.push(line);
    else {
      this.tail[this.next] = line;
      this.next = (this.next + 1) % this.tailSize;
    }
  }

  /** Hash of every event so far (the trace goes on after it). */
  hash(): string {
    return this.digest.copy().digest('hex');
  }

  lastLines(): string[] {
    return [...this.tail.slice(this.next), ...this.tail.slice(0, this.next)];
  }
}

/** A Logger that writes into the trace, stamped with virtual time. */
export class TraceLogger implements Logger {
  constructor(
    private readonly trace: Trace,
    private readonly clock: Clock,
    private readonly fields: LogFields = {},
  ) {}

  private write(level: LogLevel, message: string, fields?: LogFields): void {
    const all = fields === undefined ? this.fields : { ...this.fields, ...fields };
    this.trace.record(`${this.clock.nowMs()} ${level} ${message} ${JSON.stringify(all, replacer)}`);
  }

  debug(message: string, fields?: LogFields): void { this.write('debug', message, fields); }
  info(message: string, fields?: LogFields): void { this.write('info', message, fields); }
  warn(message: string, fields?: LogFields): void { this.write('warn', message, fields); }
  error(message: string, fields?: LogFields): void { this.write('error', message, fields); }

  child(fields: LogFields): Logger {
    return new TraceLogger(this.trace, this.clock, { ...this.fields, ...fields });
  }
}
