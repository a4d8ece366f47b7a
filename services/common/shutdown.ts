// Graceful shutdown: on SIGTERM, SIGINT or SIGHUP run the registered closers in reverse
// order of registration (last started, first stopped), each bounded by the
// overall deadline, then exit. A second signal exits at once, unless it comes
// within a second of the first: Ctrl-C signals the terminal's whole process group,
// and a supervisor in it (npm, `kreconcile dev`) forwards the same stop again.
import type { Logger } from './logger.ts';

export type Closer = { name: string; close: () => Promise<void> | void };

export interface Shutdown {
  register(name: string, close: () => Promise<void> | void): void;
  /** Resolves when shutdown has run (for roles that wait on it). */
  readonly done: Promise<void>;
  /** Start the shutdown from code (tests, fatal errors). */
  trigger(reason: string, exitCode?: number): Promise<void>;
  /** True once shutdown has begun: a child exiting now is expected, not a failure. */
  readonly stopping: boolean;
}

/** A signal this soon after the first is the same stop delivered twice, not an impatient second Ctrl-C. */
export const DUPLICATE_SIGNAL_MS = 1000;

export interface ShutdownOptions {
  deadlineMs?: number;
  exit?: (code: number) => void;
  /** Where the signals come from (tests pass an emitter of their own); default the process. */
  signals?: NodeJS.EventEmitter;
  /** See DUPLICATE_SIGNAL_MS. */
  duplicateSignalMs?: number;
}

export function installShutdown(log: Logger, opts: ShutdownOptions = {}): Shutdown {
  const closers: Closer[] = [];
  const deadlineMs = opts.deadlineMs ?? 25_000;
  const duplicateSignalMs = opts.duplicateSignalMs ?? DUPLICATE_SIGNAL_MS;
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
  let firstSignalAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (running && firstSignalAt !== undefined && Date.now() - firstSignalAt < duplicateSignalMs) {
      log.debug({ signal }, 'signal repeated within a second (a process group and its supervisor): already stopping');
      return;
    }
    if (running) {
      log.warn({ signal }, 'second signal: exiting now');
      exit(130);
      return;
    }
    firstSignalAt = Date.now();
    void trigger(signal, 0);
  };
  const signals = opts.signals ?? process;
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  // A closed terminal sends SIGHUP: stop as cleanly as for Ctrl-C, so no child process is orphaned.
  signals.on('SIGHUP', onSignal);
  return {
    register: (name, close) => void closers.push({ name, close }),
    done,
    trigger,
    get stopping() {
      return running !== undefined;
    },
  };
}
