// One JSON logger for every role. Secret-looking fields are censored by pino's
// redaction before a line is written, so a careless `log.info({ secret })`
// cannot leak a value: the rule lives here, not at every call site.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Field names whose values are never written, at the top level and one or two levels down. */
const SECRET_FIELDS = ['password', 'passwd', 'token', 'bearerToken', 'authorization', 'data', 'stringData', 'secret', 'tlsKey', 'privateKey', 'client-key-data', 'caBundle'];

export const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => {
  const p = /^[A-Za-z_$][\w$]*$/.test(f) ? f : `["${f}"]`;
  const dot = p.startsWith('[') ? p : `.${p}`;
  return [p, `*${dot}`, `*.*${dot}`];
}).concat(['req.headers.authorization', 'req.headers.cookie', 'headers.authorization']);

export interface LoggerSettings {
  level?: string;
  /** Role or component name, written as `name` on every line. */
  name?: string;
  /** Human-readable output (pino-pretty); only meant for a terminal. */
  pretty?: boolean;
  /** Destination stream (tests); default stdout. */
  destination?: NodeJS.WritableStream;
  /**
   * Write stdout in batches, at least every this many ms (see batchedStdout); for a role
   * that logs on its hot path. Default: a write per line.
   */
  batchMs?: number;
}

export function createLogger(settings: LoggerSettings = {}): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    name: settings.name,
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  if (settings.pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } });
  }
  if (settings.destination) return pino(options, settings.destination as any);
  if (settings.batchMs) return pino(options, batchedStdout(settings.batchMs));
  return pino(options);
}

/** Flush a batch once it holds this much. */
const BATCH_BYTES = 16 * 1024;

/**
 * stdout in batches: lines collect in memory and go out in one write when 16 kB have
 * gathered or `flushMs` has passed, through pino's own synchronous destination (which
 * handles partial writes and a full pipe). At thousands of lines a second a write per
 * line cost the webhook ~11 µs per review (measured; pino's asynchronous mode saved
 * nothing). What is left is written when the process exits; a SIGKILL loses at most
 * `flushMs` of lines.
 */
export function batchedStdout(flushMs: number, target: { write(chunk: string): unknown } = pino.destination({ dest: 1, sync: true })): { write(line: string): void; flush(cb?: (err?: Error) => void): void } {
  let pending = '';
  const flush = (cb?: (err?: Error) => void) => {
    if (pending) {
      const chunk = pending;
      pending = '';
      target.write(chunk);
    }
    cb?.();
  };
  setInterval(() => flush(), flushMs).unref();
  process.once('exit', () => flush());
  return {
    write(line: string) {
      pending += line;
      if (pending.length >= BATCH_BYTES) flush();
    },
    flush,
  };
}

/** A logger that writes nothing, for library use in tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
