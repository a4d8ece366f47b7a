// Child processes for the dev role, the fault suite and the benchmarks: every
// role runs as `kreconcile <role>` in its own process, exactly as deployed.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(ROOT, 'services', 'cli.ts');

export interface RoleProcess {
  readonly role: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** Resolves with the first log line (parsed JSON) for which the predicate holds. */
  waitForLine(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after the grace period. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnRoleOptions {
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** Called with every stdout line (JSON logs are parsed when possible). */
  onLine?: (line: string, parsed?: Record<string, unknown>) => void;
  /** Forward stderr to ours (default true). */
  inheritStderr?: boolean;
}

export function spawnRole(role: string, opts: SpawnRoleOptions = {}): RoleProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, role, ...(opts.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, LOG_JSON: '1', ...opts.env },
    stdio: ['ignore', 'pipe', opts.inheritStderr === false ? 'ignore' : 'inherit'],
  });
  const waiters = new Set<{ predicate: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }>();
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    opts.onLine?.(line, parsed);
    if (!parsed) return;
    for (const w of waiters) {
      if (w.predicate(parsed)) {
        waiters.delete(w);
        w.resolve(parsed);
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));

  return {
    role,
    child,
    exited,
    waitForLine(predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const w = { predicate, resolve: (l: Record<string, unknown>) => (clearTimeout(timer), resolve(l)) };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`${role}: no matching log line within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(w);
        void exited.then((code) => {
          if (waiters.delete(w)) {
            clearTimeout(timer);
            reject(new Error(`${role} exited (${code}) before the expected log line`));
          }
        });
      });
    },
    signal(sig) {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
