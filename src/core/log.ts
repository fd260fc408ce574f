/** Loggers: structured JSON lines for machines, a readable line for terminals, and silence. */
import type { LogFields, Logger, LogLevel } from './env.ts';

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(level: LogLevel, message: string, fields: LogFields): void;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return value;
}

/** One JSON object per line on a stream (stderr by default). */
export function jsonSink(stream: NodeJS.WritableStream = process.stderr, wallMs: () => number = Date.now): LogSink {
  return {
    write(level, message, fields) {
      stream.write(`${JSON.stringify({ time: new Date(wallMs()).toISOString(), level, msg: message, ...fields }, jsonReplacer)}\n`);
    },
  };
}

/** `12:00:01.123 INFO message key=value` for a human at a terminal. */
export function prettySink(stream: NodeJS.WritableStream = process.stderr, wallMs: () => number = Date.now): LogSink {
  return {
    write(level, message, fields) {
      const time = new Date(wallMs()).toISOString().slice(11, 23);
      const extra = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v, jsonReplacer)}`)
        .join(' ');
      stream.write(`${time} ${level.toUpperCase().padEnd(5)} ${message}${extra ? ` ${extra}` : ''}\n`);
    },
  };
}

export class SinkLogger implements Logger {
  constructor(
    private readonly sink: LogSink,
    private readonly minLevel: LogLevel = 'info',
    private readonly fields: LogFields = {},
  ) {}

  private emit(level: LogLevel, message: string, fields?: LogFields): void {
    if (levelRank[level] < levelRank[this.minLevel]) return;
    this.sink.write(level, message, fields ? { ...this.fields, ...fields } : this.fields);
  }

  debug(message: string, fields?: LogFields): void { this.emit('debug', message, fields); }
  info(message: string, fields?: LogFields): void { this.emit('info', message, fields); }
  warn(message: string, fields?: LogFields): void { this.emit('warn', message, fields); }
  error(message: string, fields?: LogFields): void { this.emit('error', message, fields); }

  child(fields: LogFields): Logger {
    return new SinkLogger(this.sink, this.minLevel, { ...this.fields, ...fields });
  }
}

/** JSON when stderr is not a TTY, readable when it is. */
export function createLogger(options: { level?: LogLevel; fields?: LogFields } = {}): Logger {
  const sink = process.stderr.isTTY ? prettySink() : jsonSink();
  return new SinkLogger(sink, options.level ?? 'info', options.fields ?? {});
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

/** Collects log records in memory (tests and the simulator's trace). */
export class MemoryLogger implements Logger {
  readonly records: Array<{ level: LogLevel; message: string; fields: LogFields }>;
  private readonly fields: LogFields;

  constructor(records: Array<{ level: LogLevel; message: string; fields: LogFields }> = [], fields: LogFields = {}) {
    this.records = records;
    this.fields = fields;
  }

  debug(message: string, fields?: LogFields): void { this.records.push({ level: 'debug', message, fields: { ...this.fields, ...fields } }); }
  info(message: string, fields?: LogFields): void { this.records.push({ level: 'info', message, fields: { ...this.fields, ...fields } }); }
  warn(message: string, fields?: LogFields): void { this.records.push({ level: 'warn', message, fields: { ...this.fields, ...fields } }); }
  error(message: string, fields?: LogFields): void { this.records.push({ level: 'error', message, fields: { ...this.fields, ...fields } }); }

  child(fields: LogFields): Logger {
    return new MemoryLogger(this.records, { ...this.fields, ...fields });
  }
}
