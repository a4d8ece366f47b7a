// The queue semantics the relay relies on, one test per invariant (DESIGN §2),
// against real Redis and real BullMQ workers, with the contract's job options.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { Queue, QueueEvents, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { REDIS_URL, ROOT } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

const prefix = hashTaggedPrefix('kreconcile-test');
const connection = redisConnection(REDIS_URL);
let queueName: string;
let queue: Queue<ReconcileJobData>;
let events: QueueEvents;
const workers: Worker[] = [];

beforeEach(async () => {
  queueName = `t-${randomUUID()}`;
  queue = new Queue<ReconcileJobData>(queueName, { connection, prefix });
  events = new QueueEvents(queueName, { connection, prefix });
  await events.waitUntilReady();
});

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close(true)));
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
});

const add = (key: string, n = 0, opts = {}) => queue.add(JOB_NAME, { key, reason: 'MODIFIED', resourceVersion: String(n), seenAt: Date.now() }, { ...jobOptions(key), ...opts });

function worker(process: (job: Job<ReconcileJobData>) => Promise<unknown>, opts: Partial<ConstructorParameters<typeof Worker>[2]> = {}): Worker {
  const w = new Worker<ReconcileJobData>(queueName, process, { connection, prefix, autorun: false, concurrency: 4, ...opts });
  workers.push(w);
  return w;
}

describe('deduplication by key', () => {
  test('a burst of adds for one key while it waits is one job', async () => {
    const jobs = await Promise.all(Array.from({ length: 50 }, (_, i) => add('Secret/default/db', i)));
    assert.equal(new Set(jobs.map((j) => j.id)).size, 1, 'every add returned the same waiting job');
    assert.equal(await queue.getWaitingCount(), 1);
    await add('Secret/default/other');
    assert.equal(await queue.getWaitingCount(), 2, 'other keys are not affected');
  });

  test('an add while the key is active is kept: exactly one more pass afterwards, never two at once', async () => {
    let release!: () => void;
    const firstStarted = new Promise<void>((resolve) => {
      const gate = new Promise<void>((r) => (release = r));
      let calls = 0;
      let running = 0;
      let maxRunning = 0;
      const w = worker(async () => {
        calls++;
        running++;
        maxRunning = Math.max(maxRunning, running);
        if (calls === 1) {
          resolve();
          await gate;
        }
        running--;
        return { calls, maxRunning };
      });
      void w.run();
    });
    const first = await add('CronTab/default/nightly', 1);
    await firstStarted;
    // Three changes while the first pass runs: they coalesce into one stored next pass.
    for (let i = 2; i <= 4; i++) await add('CronTab/default/nightly', i);
    assert.equal(await queue.getWaitingCount(), 0, 'nothing waits while the key is active');
    const completed: { id: string; returnvalue: { calls: number; maxRunning: number } }[] = [];
    events.on('completed', ({ jobId, returnvalue }) => completed.push({ id: jobId, returnvalue: returnvalue as unknown as { calls: number; maxRunning: number } }));
    release();
    await first.waitUntilFinished(events, 5_000);
    await waitFor('the one more pass', () => completed.length >= 2, 5_000);
    await waitFor('the queue to drain', async () => (await queue.getJobCounts('waiting', 'active', 'delayed')).active === 0);
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed');
    assert.equal(counts.completed, 2, 'the first pass and exactly one more');
    assert.equal(counts.waiting + counts.active + counts.delayed, 0);
    const last = completed.at(-1)!.returnvalue;
    assert.equal(last.maxRunning, 1, 'never two workers on the key at once');
    const second = (await queue.getJobs(['completed'])).find((j) => j.id !== first.id)!;
    assert.equal(second.data.resourceVersion, '4', 'the pass after carries the latest add');
  });
});

describe('failures', () => {
  test('a job whose worker dies mid-job is recovered as stalled and completed by another worker', async () => {
    const job = await add('Secret/default/crashy');
    // A worker in another process takes the job, says so, then hangs until killed.
    const script = `
      import { Worker } from 'bullmq';
      new Worker(${JSON.stringify(queueName)}, async () => { console.log('taken'); await new Promise(() => {}); },
        { connection: ${JSON.stringify(connection)}, prefix: ${JSON.stringify(prefix)}, lockDuration: 800, stalledInterval: 300 });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('taken') && resolve());
      child.once('exit', (code) => reject(new Error(`child worker exited early (${code})`)));
    });
    assert.equal(await queue.getActiveCount(), 1);
    child.kill('SIGKILL');
    await once(child, 'exit');
    const survivor = worker(async () => 'done', { lockDuration: 800, stalledInterval: 300 });
    void survivor.run();
    assert.equal(await job.waitUntilFinished(events, 10_000), 'done');
    const after = (await queue.getJob(job.id!))!;
    assert.ok(after.stalledCounter >= 1 || after.attemptsStarted >= 2, 'the job was taken twice');
  });

  test('transient errors are retried with exponential backoff; after the last attempt the job stays in the failed set with its error', async () => {
    const starts: number[] = [];
    const w = worker(async () => {
      starts.push(Date.now());
      throw new Error('API said 503');
    });
    void w.run();
    // The contract's policy, with small numbers so the test is quick.
    const job = await add('Secret/default/flaky', 0, { attempts: 4, backoff: { type: 'exponential', delay: 40 } });
    await assert.rejects(job.waitUntilFinished(events, 10_000), /API said 503/);
    const failed = (await queue.getJob(job.id!))!;
    assert.equal(await failed.getState(), 'failed');
    assert.equal(failed.attemptsMade, 4);
    assert.equal(failed.failedReason, 'API said 503');
    const gaps = starts.slice(1).map((t, i) => t - starts[i]!);
    assert.ok(gaps[2]! > gaps[0]!, `backoff grows: ${gaps.join(', ')} ms`);
    assert.ok(gaps[0]! >= 35, `first retry waits about 40 ms: ${gaps[0]}`);
    // A failed key is not stuck: a new change enqueues a fresh job.
    const again = await add('Secret/default/flaky', 1);
    assert.notEqual(again.id, job.id);
  });
});

test('every key of the queue lives under the hash-tagged prefix (one Redis Cluster slot)', async () => {
  await add('Secret/default/a');
  await add('Secret/default/a');
  const redis = new Redis(connection as object);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `*${queueName}*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    assert.ok(keys.length >= 3, keys.join(' '));
    assert.ok(keys.every((k) => k.startsWith(`${prefix}:${queueName}:`)), keys.join(' '));
    assert.ok(keys.some((k) => k.includes(':de:Secret/default/a')), 'the deduplication mark is keyed by the object key');
  } finally {
    redis.disconnect();
  }
});
