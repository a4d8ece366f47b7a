// The one mapping from a reconcile's end onto BullMQ, one case per outcome.
// (The same paths run against real Redis in test/integration/worker-crontab.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { ReconcileJobData } from '../../services/common/queue.ts';
import { done, permanent, requeue } from '../../services/worker/outcome.ts';
import { toQueue } from '../../services/worker/worker.ts';

function fakeJob() {
  const delayedTo: [number, string | undefined][] = [];
  const job = { moveToDelayed: async (ts: number, token?: string) => void delayedTo.push([ts, token]) } as unknown as Job<ReconcileJobData>;
  return { job, delayedTo };
}

test('done completes the job with its changes; no change reads as unchanged', async () => {
  const { job, delayedTo } = fakeJob();
  assert.deepEqual(await toQueue(job, 't', done(['cronjob created'])), { result: 'changed', changes: ['cronjob created'] });
  assert.deepEqual(await toQueue(job, 't', done()), { result: 'unchanged', changes: [] });
  assert.deepEqual(delayedTo, []);
});

test('requeue moves the same job to delayed (keeping its deduplication) and signals BullMQ', async () => {
  const { job, delayedTo } = fakeJob();
  const before = Date.now();
  await assert.rejects(toQueue(job, 'tok', requeue(1_000, 'wait')), DelayedError);
  assert.equal(delayedTo.length, 1);
  assert.ok(delayedTo[0]![0] >= before + 1_000 && delayedTo[0]![0] <= Date.now() + 1_000);
  assert.equal(delayedTo[0]![1], 'tok');
});

test('permanent fails the job without retries', async () => {
  const { job } = fakeJob();
  await assert.rejects(toQueue(job, 't', permanent('invalid spec: spec.cronSpec: must have 5 fields')), (err: unknown) => err instanceof UnrecoverableError && /invalid spec/.test(err.message));
});

test('an error is rethrown as is, for BullMQ to retry with backoff', async () => {
  const { job } = fakeJob();
  const boom = new Error('ECONNRESET');
  await assert.rejects(toQueue(job, 't', { type: 'error', error: boom }), (err: unknown) => err === boom);
});
