// The enqueuer: the only writer to Redis in the relay.
//
// Invariants:
//  - `pending` holds at most one entry per key (later changes overwrite earlier
//    ones), so while Redis is unreachable memory is bounded by the number of
//    objects, not by the number of events.
//  - A flush takes the pending keys and every resource's known-set changes and
//    resourceVersion in one synchronous snapshot, adds the jobs, and only then
//    writes the known-sets and checkpoints. A checkpoint in Redis therefore never
//    runs ahead of the jobs (state.ts).
//  - Known-sets and checkpoints are written at most once per checkpointIntervalMs
//    (jobs are never held back): a restarted relay replays at most that much of
//    the watch, which the queue's deduplication and idempotent workers absorb,
//    instead of every flush paying a Redis round trip per resource.
//  - Whatever a failed flush could not write goes back (without overwriting newer
//    entries) and is retried with backoff, and at once when Redis reconnects.
//  - Never put an object or Secret data into a job: key, reason, resourceVersion, time.
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../common/logger.ts';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type EnqueueReason, type ReconcileJobData } from '../common/queue.ts';
import type { RelayMetrics } from './metrics.ts';
import type { ResourceState, StateSnapshot } from './state.ts';

/**
 * A connection that fails fast while Redis is away (no offline queue, no per-command
 * retries), so the relay holds pending keys itself, coalesced, instead of ioredis
 * queueing every command. It reconnects forever in the background.
 */
export function createProducerRedis(url: string): Redis {
  const opts = redisConnection(url) as RedisOptions;
  return new Redis({
    ...opts,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    lazyConnect: false,
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
}

export interface EnqueuerOptions {
  redis: Redis;
  queueName: string;
  prefix: string;
  log: Logger;
  metrics: RelayMetrics;
  /** Jobs per addBulk round trip. */
  batchSize?: number;
  /** Longest wait between retries while Redis is failing (ms). */
  maxBackoffMs?: number;
  /** Shortest time between two writes of the known-sets and checkpoints (ms, default 200). */
  checkpointIntervalMs?: number;
}

const MIN_BACKOFF_MS = 100;

export class Enqueuer {
  private pending = new Map<string, ReconcileJobData>();
  private readonly states = new Set<ResourceState>();
  private queue: Queue;
  private readonly jobIdBase = randomUUID().slice(0, 8);
  private jobSeq = 0;
  private flushing = false;
  private scheduled: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private idleWaiters: (() => void)[] = [];
  private roomWaiters: (() => void)[] = [];
  private closed = false;
  private everReady = false;
  private readonly batchSize: number;
  private readonly maxBackoffMs: number;
  private readonly checkpointIntervalMs: number;
  private lastPersistAt = 0;
  private persistTimer: NodeJS.Timeout | undefined;
  private readonly onReady = () => this.handleReconnect();
  /** While set, flushes wait: a reconnect is checking whether Redis lost our data. */
  private reconnectCheck: Promise<void> | undefined;

  constructor(private readonly opts: EnqueuerOptions) {
    this.batchSize = opts.batchSize ?? 500;
    this.maxBackoffMs = opts.maxBackoffMs ?? 5000;
    this.checkpointIntervalMs = opts.checkpointIntervalMs ?? 200;
    this.queue = this.newQueue();
    opts.redis.on('ready', this.onReady);
    // ioredis reports connection errors as events; the flush loop reports them once per outage.
    opts.redis.on('error', () => {});
    if (opts.redis.status === 'ready') this.everReady = true;
    opts.metrics.pendingKeys.set(0);
    opts.metrics.redisUp.set(opts.redis.status === 'ready' ? 1 : 0);
  }

  private newQueue(): Queue {
    const queue = new Queue(this.opts.queueName, { connection: this.opts.redis, prefix: hashTaggedPrefix(this.opts.prefix) });
    queue.on('error', () => {}); // surfaced through flush failures instead
    return queue;
  }

  register(state: ResourceState): void {
    this.states.add(state);
  }

  unregister(state: ResourceState): void {
    this.states.delete(state);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Hand a key to the queue. Coalesces with a pending entry for the same key. */
  enqueue(key: string, reason: EnqueueReason, resourceVersion?: string): void {
    if (this.closed) return;
    this.pending.set(key, { key, reason, resourceVersion, seenAt: Date.now() });
    this.opts.metrics.pendingKeys.set(this.pending.size);
    this.schedule();
  }

  /** Leadership lost: forget what is pending; the next leader resumes from the checkpoint. */
  dropPending(): void {
    this.pending.clear();
    this.opts.metrics.pendingKeys.set(0);
  }

  /** True when Redis is reachable and writes succeed; otherwise why not. */
  ready(): true | string {
    if (this.opts.redis.status !== 'ready') return `redis ${this.opts.redis.status}`;
    if (this.lastError) return `redis writes failing: ${this.lastError}`;
    return true;
  }

  /**
   * Backpressure for lists: resolves once fewer than `limit` keys are pending. While
   * Redis fails it resolves at once: then the relay holds everything in memory
   * (bounded by the number of objects) rather than stall.
   */
  async room(limit: number): Promise<void> {
    while (this.pending.size >= limit && !this.lastError && !this.closed && this.opts.redis.status === 'ready') {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  /** Resolves once nothing is pending or unsaved and no flush runs (tests, benchmarks). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return !this.flushing && this.pending.size === 0 && ![...this.states].some((s) => s.hasUnsaved());
  }

  private hasWork(): boolean {
    return this.pending.size > 0 || (this.persistDue() && this.hasUnsavedState());
  }

  private hasUnsavedState(): boolean {
    return [...this.states].some((s) => s.hasUnsaved());
  }

  private persistDue(): boolean {
    return Date.now() - this.lastPersistAt >= this.checkpointIntervalMs;
  }

  /** State waits for its interval: flush again when it is due. */
  private armPersistTimer(): void {
    if (this.persistTimer || this.closed || !this.hasUnsavedState()) return;
    const wait = Math.max(0, this.lastPersistAt + this.checkpointIntervalMs - Date.now());
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.schedule();
    }, wait);
  }

  /** Flush soon: everything that arrives in the same turn of the event loop goes in one batch. */
  schedule(): void {
    if (this.closed || this.scheduled || this.flushing || this.retryTimer) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = undefined;
      void this.run();
    });
  }

  private async run(): Promise<void> {
    if (this.flushing || this.closed) return;
    this.flushing = true;
    try {
      if (this.reconnectCheck) await this.reconnectCheck;
      while (this.hasWork() && !this.closed) {
        await this.flushOnce();
        for (const w of this.roomWaiters.splice(0)) w();
        // Let sockets and timers run between rounds (a long initial list flushes in many).
        await new Promise((r) => setImmediate(r));
      }
      if (this.lastError) this.opts.log.info({ failures: this.failures }, 'redis writes succeed again; pending keys flushed');
      this.failures = 0;
      this.lastError = undefined;
      this.opts.metrics.redisUp.set(1);
    } catch (err) {
      this.failures++;
      const message = (err as Error).message;
      if (!this.lastError) this.opts.log.warn({ err: { message }, pending: this.pending.size }, 'redis unreachable; holding keys in memory and retrying');
      this.lastError = message;
      this.opts.metrics.redisUp.set(0);
      if (/closed|initializ/i.test(message)) this.resetQueue();
      if (!this.closed) {
        const delay = Math.min(MIN_BACKOFF_MS * 2 ** (this.failures - 1), this.maxBackoffMs);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.schedule();
        }, delay);
      }
    } finally {
      this.flushing = false;
      for (const w of this.roomWaiters.splice(0)) w();
      this.opts.metrics.pendingKeys.set(this.pending.size);
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
      else if (!this.lastError) {
        if (this.hasWork()) this.schedule();
        else this.armPersistTimer();
      }
    }
  }

  private async flushOnce(): Promise<void> {
    const jobs = this.pending;
    this.pending = new Map();
    // Taken in the same synchronous step as the jobs: a checkpoint never runs ahead of them.
    const persisting = this.persistDue();
    const snaps: StateSnapshot[] = persisting ? [...this.states].map((s) => s.snapshot()) : [];
    // The pending map is empty again: a list waiting for room may fetch its next page meanwhile.
    for (const w of this.roomWaiters.splice(0)) w();
    const entries = [...jobs.values()];
    const batches: ReconcileJobData[][] = [];
    for (let i = 0; i < entries.length; i += this.batchSize) batches.push(entries.slice(i, i + this.batchSize));
    const done = batches.map(() => false);
    try {
      if (this.opts.redis.status !== 'ready') throw new Error(`redis ${this.opts.redis.status}`);
      // Two batches in flight: this process builds the next while Redis runs the scripts of the last.
      let next = 0;
      const lane = async () => {
        while (next < batches.length) {
          const i = next++;
          await this.add(batches[i]!);
          done[i] = true;
        }
      };
      await Promise.all([lane(), lane()]);
      for (const snap of snaps) await snap.state.persist(this.opts.redis, snap);
      if (persisting) this.lastPersistAt = Date.now();
    } catch (err) {
      batches.forEach((batch, i) => {
        if (done[i]) return;
        for (const e of batch) if (!this.pending.has(e.key)) this.pending.set(e.key, e);
      });
      for (const snap of snaps) snap.state.restore(snap);
      throw err;
    }
  }

  private async add(batch: ReconcileJobData[]): Promise<void> {
    const seq0 = this.jobSeq;
    this.jobSeq += batch.length;
    // Our own unique job ids reveal deduplication: an add that coalesced returns the id of the job it joined.
    const jobs = batch.map((data, i) => ({ name: JOB_NAME, data, opts: { ...jobOptions(data.key), jobId: `${this.jobIdBase}-${seq0 + i}` } }));
    const added = await this.queue.addBulk(jobs);
    let hits = 0;
    for (let i = 0; i < added.length; i++) if (added[i]!.id !== jobs[i]!.opts.jobId) hits++;
    if (hits) this.opts.metrics.dedupHits.inc(hits);
    for (const data of batch) this.opts.metrics.jobsEnqueued.inc({ reason: data.reason });
  }

  private resetQueue(): void {
    const old = this.queue;
    this.queue = this.newQueue();
    void old.close().catch(() => {});
  }

  /**
   * Redis is back. Without persistence it may have lost everything: the jobs, the
   * checkpoints, the known-sets. If a checkpoint we wrote is gone, write all state
   * again and enqueue every known key, so no change is lost with the old data.
   */
  private handleReconnect(): void {
    this.opts.metrics.redisUp.set(1);
    const first = !this.everReady;
    this.everReady = true;
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    if (first) {
      this.schedule();
      return;
    }
    this.reconnectCheck = this.checkForDataLoss().finally(() => {
      this.reconnectCheck = undefined;
      this.schedule();
    });
  }

  private async checkForDataLoss(): Promise<void> {
    for (const state of this.states) {
      if (!state.hasSaved()) continue;
      try {
        if ((await this.opts.redis.exists(state.rvKey)) === 0) {
          this.opts.log.warn({ resource: state.resource.name, known: state.known.size }, 'redis lost the relay checkpoint (restart without persistence?); rewriting state and enqueueing every known key');
          state.markAllDirty();
          this.enqueueAll(state, 'RESYNC');
        }
      } catch {
        // Still flapping: the next reconnect checks again.
      }
    }
  }

  /** Enqueue every key a resource knows (resync, data loss). */
  enqueueAll(state: ResourceState, reason: EnqueueReason): number {
    let n = 0;
    for (const id of state.known.keys()) {
      const entry = state.get(id)!;
      if (!this.pending.has(entry.key)) this.pending.set(entry.key, { key: entry.key, reason, resourceVersion: entry.resourceVersion, seenAt: Date.now() });
      n++;
    }
    this.opts.metrics.pendingKeys.set(this.pending.size);
    this.schedule();
    return n;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.scheduled) clearImmediate(this.scheduled);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.persistTimer) clearTimeout(this.persistTimer);
    this.opts.redis.off('ready', this.onReady);
    for (const w of this.idleWaiters.splice(0)) w();
    for (const w of this.roomWaiters.splice(0)) w();
    await this.queue.close().catch(() => {});
  }
}
