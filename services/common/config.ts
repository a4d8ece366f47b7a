// Configuration: environment variables first, command-line flags override them.
// Every role declares its options once (env name, flag, schema, help); the same
// table drives parsing, validation, the usage text and the README's table.
import { parseArgs } from 'node:util';
import { z } from 'zod';

export interface OptionSpec<S extends z.ZodType = z.ZodType> {
  /** Environment variable that sets it. */
  env: string;
  /** Long flag (without the dashes) that overrides the environment. */
  flag?: string;
  /** One line for the usage text and the README. */
  help: string;
  schema: S;
}

export type OptionTable = Record<string, OptionSpec>;
export type ConfigOf<T extends OptionTable> = { readonly [K in keyof T]: z.output<T[K]['schema']> };

/** Thrown when flags are malformed or values fail validation; lists every problem at once. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Usage errors (unknown flags, missing values) are also config errors: exit code 2. */
export function loadConfig<T extends OptionTable>(
  options: T,
  env: NodeJS.ProcessEnv,
  argv: readonly string[] = [],
): ConfigOf<T> {
  const problems: string[] = [];
  const flagOptions: Record<string, { type: 'string' }> = {};
  for (const spec of Object.values(options)) if (spec.flag) flagOptions[spec.flag] = { type: 'string' };

  // Not strict: an unknown flag is one more problem in the list, not the only one reported.
  const flags: Record<string, string | undefined> = {};
  const { tokens } = parseArgs({ args: [...argv], options: flagOptions, strict: false, allowPositionals: true, tokens: true });
  for (const token of tokens) {
    if (token.kind === 'positional') problems.push(`unexpected argument '${token.value}'`);
    else if (token.kind === 'option' && !Object.hasOwn(flagOptions, token.name)) problems.push(`unknown option '${token.rawName}'`);
    else if (token.kind === 'option' && typeof token.value !== 'string') problems.push(`option '${token.rawName}' needs a value`);
    // `--queue-prefix --redis-url=…`: the next flag was taken as the value (strict parsing calls this ambiguous).
    else if (token.kind === 'option' && !token.inlineValue && token.value!.startsWith('-'))
      problems.push(`option '${token.rawName}' needs a value (one starting with '-' is written ${token.rawName}=${token.value})`);
    else if (token.kind === 'option') flags[token.name] = token.value;
  }

  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(options)) {
    const fromFlag = spec.flag ? flags[spec.flag] : undefined;
    const raw = fromFlag ?? emptyToUndefined(env[spec.env]);
    const source = fromFlag !== undefined ? `--${spec.flag}` : spec.env;
    const result = spec.schema.safeParse(raw);
    if (result.success) out[key] = result.data;
    else problems.push(`${source}: ${result.error.issues.map((i) => i.message).join('; ')}${raw === undefined ? '' : ` (got "${raw}")`}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(out) as ConfigOf<T>;
}

function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Lines for the usage text: `--flag  ENV  help`. */
export function describeOptions(options: OptionTable): string[] {
  return Object.values(options).map((o) => {
    const flag = o.flag ? `--${o.flag}` : '';
    return `  ${flag.padEnd(26)} ${o.env.padEnd(28)} ${o.help}`;
  });
}

// Reusable schemas. Environment values are strings; these coerce and check.
export const schemas = {
  port: (dflt: number) =>
    z.coerce.number({ message: 'must be a port number' }).int('must be an integer').min(0, 'must be 0..65535').max(65535, 'must be 0..65535').default(dflt),
  positiveInt: (dflt: number) =>
    z.coerce.number({ message: 'must be a number' }).int('must be an integer').min(1, 'must be ≥ 1').default(dflt),
  /** A duration in seconds: "30", "30s", "5m", "1h". */
  seconds: (dflt: number) =>
    z
      .string()
      .default(String(dflt))
      .transform((s, ctx) => {
        const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(s.trim());
        if (!m) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration like 30s, 5m or 1h' });
          return z.NEVER;
        }
        const n = Number(m[1]);
        const unit = m[2] ?? 's';
        return unit === 'ms' ? n / 1000 : unit === 'm' ? n * 60 : unit === 'h' ? n * 3600 : n;
      }),
  url: (dflt?: string) => (dflt === undefined ? z.string().url('must be a URL') : z.string().url('must be a URL').default(dflt)),
  optionalString: () => z.string().optional(),
  string: (dflt: string) => z.string().default(dflt),
  logLevel: () => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  list: (dflt: string[]) =>
    z
      .string()
      .optional()
      .transform((s) => (s === undefined ? dflt : s.split(',').map((x) => x.trim()).filter(Boolean))),
  bool: (dflt: boolean) =>
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
      .optional()
      .transform((s) => (s === undefined ? dflt : s === 'true' || s === '1' || s === 'yes')),
};

/** Options every long-running role shares. */
export const commonOptions = {
  logLevel: { env: 'LOG_LEVEL', flag: 'log-level', help: 'pino level: fatal|error|warn|info|debug|trace|silent (default info)', schema: schemas.logLevel() },
  healthPort: { env: 'HEALTH_PORT', flag: 'health-port', help: 'plain-HTTP port for /healthz, /readyz, /metrics (0 = any free port)', schema: schemas.port(8080) },
} satisfies OptionTable;

export const kubeOptions = {
  kubeconfig: { env: 'KUBECONFIG', flag: 'kubeconfig', help: 'kubeconfig file; unset = in-cluster service account, else ~/.kube/config', schema: schemas.optionalString() },
} satisfies OptionTable;

export const redisOptions = {
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', help: 'Redis for the queue (default redis://127.0.0.1:6379)', schema: schemas.url('redis://127.0.0.1:6379') },
  queuePrefix: { env: 'QUEUE_PREFIX', flag: 'queue-prefix', help: 'queue key prefix; wrapped in {} so every key hashes to one Redis Cluster slot (default kreconcile)', schema: schemas.string('kreconcile') },
  queueName: { env: 'QUEUE_NAME', flag: 'queue-name', help: 'queue name (default reconcile)', schema: schemas.string('reconcile') },
} satisfies OptionTable;
