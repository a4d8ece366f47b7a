// The BullMQ worker: takes a key, runs the reconciler for its kind, and turns the
// outcome into one queue decision in `toQueue` — the only place that knows BullMQ
// semantics (controller-runtime's "result → requeue" switch).
//
// Stateless: any number of these may run, any may die. BullMQ's deduplication and
// locks keep one key on one worker at a time; a killed worker's job stalls, its lock
// expires, and another worker takes it again.
import { performance } from 'node:perf_hooks';
import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { KubeConfig } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { loadKubeConfig } from '../common/kube.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { DEFAULT_MIN_PASSWORD_LENGTH, DEFAULT_PASSWORD_KEYS } from '../common/password-policy.ts';
import { hashTaggedPrefix, InvalidKeyError, parseKey, redisConnection, type ObjectKey, type ReconcileJobData, type ReconcileKind } from '../common/queue.ts';
import { eventRecorder } from './events.ts';
import { KubeApiError, KubeClient } from './kube.ts';
import { workerMetrics, type ReconcileResult, type WorkerMetrics } from './metrics.ts';
import type { Outcome, ReconcileContext } from './outcome.ts';
import { reconcileCronTab } from './reconcilers/crontab.ts';
import { reconcileSecret, type SecretPolicySettings } from './reconcilers/secret.ts';

export interface StartWorkerOptions {
  /** A KubeConfig, or a kubeconfig file path (unset: in-cluster, else ~/.kube/config). */
  kubeconfig?: KubeConfig | string;
  redisUrl?: string;
  /** Overrides redisUrl. */
  connection?: ConnectionOptions;
  queuePrefix?: string;
  queueName?: string;
  /** Jobs processed at once by this worker (they are I/O-bound). */
  concurrency?: number;
  secretPolicy?: Partial<SecretPolicySettings>;
  log?: Logger;
  /** Where the metrics go; a fresh registry when unset. */
  registry?: Registry;
  /** How long a job's lock lives without renewal; a killed worker's jobs are retaken after about this long. */
  lockDurationMs?: number;
  /** How long close() waits for active jobs before abandoning them to stalled-job recovery. */
  shutdownDeadlineMs?: number;
  /** Re-reads after a 409 (or a write that found the object gone) within one job before backing off. */
  conflictRetries?: number;
  now?: () => Date;
  /** Start taking jobs at once (default true); tests attach listeners first, then call worker.run(). */
  autorun?: boolean;
}

export interface RunningWorker {
  readonly worker: Worker<ReconcileJobData>;
  readonly kube: KubeClient;
  readonly metrics: WorkerMetrics;
  readonly registry: Registry;
  /** False once closing, or when BullMQ is not running. */
  isReady(): boolean;
  /** Stop taking jobs, let active ones finish within the deadline, close connections. */
  close(deadlineMs?: number): Promise<void>;
}

/** What a completed job returns (stored by BullMQ): keys and change names, never object data. */
export interface JobResult {
  result: 'unchanged' | 'changed';
  changes: string[];
}

export type Reconciler = (ctx: ReconcileContext, key: ObjectKey) => Promise<Outcome>;

/**
 * The one mapping from a reconcile's end onto the queue:
 * done → complete; requeue → same job delayed (the key stays deduplicated);
 * permanent → UnrecoverableError (failed set, no retry storm);
 * any other error → thrown, BullMQ retries with exponential backoff (see classifyError).
 */
export async function toQueue(job: Job<ReconcileJobData>, token: string | undefined, end: Outcome | { type: 'error'; error: unknown }): Promise<JobResult> {
  switch (end.type) {
    case 'done':
      return { result: end.changes.length ? 'changed' : 'unchanged', changes: end.changes };
    case 'requeue':
      await job.moveToDelayed(Date.now() + end.afterMs, token);
      throw new DelayedError(end.reason);
    case 'permanent':
      throw new UnrecoverableError(end.reason);
    case 'error':
      throw end.error;
  }
}

/** The API refusing what we sent (400, 422) will refuse it again: that is permanent, not a reason to retry. */
function classifyError(error: unknown): Outcome | { type: 'error'; error: unknown } {
  if (error instanceof KubeApiError && (error.code === 400 || error.code === 422)) return { type: 'permanent', reason: error.message, changes: [] };
  return { type: 'error', error };
}

/** 409 (stale read, precondition failed, already exists) and a write's 404 (gone meanwhile) mean: read again now. */
function needsReread(err: unknown): boolean {
  return err instanceof KubeApiError && (err.code === 409 || err.code === 404);
}

function resultLabel(end: Outcome | { type: 'error' }): ReconcileResult {
  if (end.type === 'done') return end.changes.length ? 'changed' : 'unchanged';
  return end.type;
}

export async function startWorker(opts: StartWorkerOptions = {}): Promise<RunningWorker> {
  const log = opts.log ?? silentLogger;
  const registry = opts.registry ?? new Registry();
  const metrics = workerMetrics(registry);
  const kubeconfig = typeof opts.kubeconfig === 'object' ? opts.kubeconfig : loadKubeConfig(opts.kubeconfig);
  const kube = await KubeClient.create({ kubeconfig, onWrite: (verb, res) => metrics.apiWrites.inc({ verb, resource: res.plural }) });
  const now = opts.now ?? (() => new Date());
  const ctx: ReconcileContext = { kube, events: eventRecorder(kube, log, { now }), log, now };
  const policy: SecretPolicySettings = {
    mode: opts.secretPolicy?.mode ?? 'audit',
    minLength: opts.secretPolicy?.minLength ?? DEFAULT_MIN_PASSWORD_LENGTH,
    keys: opts.secretPolicy?.keys ?? DEFAULT_PASSWORD_KEYS,
  };
  const reconcilers: Record<ReconcileKind, Reconciler> = {
    CronTab: reconcileCronTab,
    Secret: (c, key) => reconcileSecret(c, key, policy, { onWeak: (rule, action) => metrics.weakPasswords.inc({ mode: policy.mode, rule, action }) }),
  };
  const conflictRetries = opts.conflictRetries ?? 5;
  const lockDuration = opts.lockDurationMs ?? 30_000;
  let closing = false;

  async function process(job: Job<ReconcileJobData>, token?: string): Promise<JobResult> {
    // BullMQ can still hand over a job it fetched just as we paused; a stopping worker starts
    // no reconcile and gives the job straight back (due now, so any other worker takes it).
    if (closing) {
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError('worker shutting down');
    }
    let key: ObjectKey;
    try {
      key = parseKey(job.data.key);
    } catch (err) {
      if (err instanceof InvalidKeyError) throw new UnrecoverableError(err.message);
      throw err;
    }
    // First pickup only: later ones would count backoff and requeue delays as waiting.
    if (job.attemptsStarted <= 1 && job.processedOn) metrics.queueWait.observe({ kind: key.kind }, Math.max(0, job.processedOn - job.timestamp - (job.delay ?? 0)) / 1000);
    const started = performance.now();
    let end: Outcome | { type: 'error'; error: unknown };
    for (let attempt = 0; ; attempt++) {
      try {
        end = await reconcilers[key.kind](ctx, key);
        break;
      } catch (error) {
        if (needsReread(error) && attempt < conflictRetries) {
          metrics.retries.inc({ kind: key.kind, reason: 'conflict' });
          continue;
        }
        end = classifyError(error);
        break;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    const result = resultLabel(end);
    metrics.reconciles.inc({ kind: key.kind, result });
    metrics.duration.observe({ kind: key.kind, result }, seconds);
    const line = { key: job.data.key, result, durationMs: Math.round(seconds * 1e4) / 10, attempt: job.attemptsMade + 1 };
    if (end.type === 'error') {
      metrics.retries.inc({ kind: key.kind, reason: 'error' });
      log.warn({ ...line, err: (end.error as Error)?.message ?? String(end.error) }, 'reconcile failed; will retry with backoff');
    } else if (end.type === 'permanent') {
      log.warn({ ...line, changes: end.changes, reason: end.reason }, 'reconcile cannot succeed until the object changes');
    } else if (end.changes.length) {
      log.info({ ...line, changes: end.changes }, 'reconciled');
    } else {
      log.debug(line, 'reconciled');
    }
    return toQueue(job, token, end);
  }

  const worker = new Worker<ReconcileJobData>(opts.queueName ?? 'reconcile', process, {
    connection: opts.connection ?? redisConnection(opts.redisUrl ?? 'redis://127.0.0.1:6379'),
    prefix: hashTaggedPrefix(opts.queuePrefix ?? 'kreconcile'),
    concurrency: opts.concurrency ?? 16,
    lockDuration,
    stalledInterval: Math.max(500, Math.floor(lockDuration / 2)),
    // A job whose worker keeps dying (a poison key) ends in the failed set instead of looping forever.
    maxStalledCount: 3,
    autorun: opts.autorun ?? true,
  });
  worker.on('error', (err) => log.error({ err: err.message }, 'queue error'));
  worker.on('failed', (job, err) => {
    if (job && err instanceof UnrecoverableError) log.warn({ key: job.data.key, reason: err.message }, 'job failed permanently');
    else if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
      log.error({ key: job.data.key, err: err.message, attempts: job.attemptsMade }, 'job failed after its last attempt');
      // A person looking at the object should see why it is stuck; the next resync tries again.
      let key: ObjectKey | undefined;
      try {
        key = parseKey(job.data.key);
      } catch {
        key = undefined;
      }
      if (key) {
        void ctx.events.record({
          regarding: { apiVersion: key.kind === 'CronTab' ? 'stable.example.com/v1' : 'v1', kind: key.kind, namespace: key.namespace, name: key.name },
          type: 'Warning',
          reason: 'ReconcileFailed',
          action: 'Reconcile',
          note: `gave up after ${job.attemptsMade} attempts: ${err.message}`,
        });
      }
    }
  });

  return {
    worker,
    kube,
    metrics,
    registry,
    isReady: () => !closing && worker.isRunning(),
    async close(deadlineMs = opts.shutdownDeadlineMs ?? 20_000) {
      if (closing) return;
      closing = true;
      // Stop fetching, wait for the active jobs, but not past the deadline: an unfinished
      // job is then abandoned, its lock runs out, and another worker takes it again.
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        worker.pause().then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs))),
      ]);
      clearTimeout(timer);
      if (!finished) log.warn({ deadlineMs }, 'active jobs did not finish before the shutdown deadline; leaving them to another worker');
      await worker.close(!finished);
      kube.close();
    },
  };
}
