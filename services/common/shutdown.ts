// Graceful shutdown: on SIGTERM, SIGINT or SIGHUP run the registered closers in reverse
// order of registration (last started, first stopped), each bounded by the
// overall deadline, then exit. A second signal exits at once.
import type { Logger } from './logger.ts';

export type Closer = { name: string; close: () => Promise<void> | void };

export interface Shutdown {
  register(name: string, close: () => Promise<void> | void): void;
  /** Resolves when shutdown has run (for roles that wait on it). */
  readonly done: Promise<void>;
  /** Start the shutdown from code (tests, fatal errors). */
  trigger(reason: string, exitCode?: number): Promise<void>;
}

export function installShutdown(log: Logger, opts: { deadlineMs?: number; exit?: (code: number) => void } = {}): Shutdown {
  const closers: Closer[] = [];
  const deadlineMs = opts.deadlineMs ?? 25_000;
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));

  async function run(reason: string, exitCode: number): Promise<void> {
    log.info({ reason }, 'shutting down');
    const timer = setTimeout(() => {
      log.error({ deadlineMs }, 'shutdown deadline passed; exiting anyway');
      exit(exitCode || 1);
    }, deadlineMs);
    timer.unref();
    for (const closer of [...closers].reverse()) {
      try {
        await closer.close();
      } catch (err) {
        log.warn({ err, closer: closer.name }, 'error while closing');
      }
    }
    clearTimeout(timer);
    log.info('stopped');
    resolveDone();
    exit(exitCode);
  }

  const trigger = (reason: string, exitCode = 0) => (running ??= run(reason, exitCode));
  const onSignal = (signal: NodeJS.Signals) => {
    if (running) {
      log.warn({ signal }, 'second signal: exiting now');
      exit(130);
      return;
    }
    void trigger(signal, 0);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // A closed terminal sends SIGHUP: stop as cleanly as for Ctrl-C, so no child process is orphaned.
  process.on('SIGHUP', onSignal);
  return { register: (name, close) => void closers.push({ name, close }), done, trigger };
}
