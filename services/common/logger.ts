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
  return settings.destination ? pino(options, settings.destination as any) : pino(options);
}

/** A logger that writes nothing, for library use in tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
