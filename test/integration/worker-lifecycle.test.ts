// A worker process killed mid-job, and one asked to stop: run as real child
// processes (`kreconcile worker`), with kube-sim holding requests open so a job
// is provably in flight when the signal arrives.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { spawnRole, type RoleProcess } from '../../services/dev/processes.ts';
import { CRONJOBS, CRONTABS } from '../../services/worker/kube.ts';
import { ensureNamespace, startWorkerEnv, type WorkerEnv } from './worker-env.ts';
import { REDIS_URL } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

let env: WorkerEnv;
const children: RoleProcess[] = [];

before(async () => {
  env = await startWorkerEnv();
});
after(async () => {
  await Promise.all(children.map((c) => c.stop(1_000)));
  await env.stop();
});

/** The child's log lines, for the failure message: they say why a job went where it went. */
const childLines: string[] = [];

function workerProcess(extraEnv: Record<string, string> = {}): RoleProcess {
  const child = spawnRole('worker', {
    onLine: (line) => childLines.push(line),
    env: {
      KUBECONFIG: env.sim.kubeconfigPath,
      REDIS_URL,
      QUEUE_PREFIX: env.prefix,
      QUEUE_NAME: env.queueName,
      HEALTH_PORT: '0',
      LOG_LEVEL: 'info',
      WORKER_LOCK_DURATION: '2s',
      ...extraEnv,
    },
  });
  children.push(child);
  return child;
}

async function cronTabIn(ns: string, name: string): Promise<void> {
  await env.kube.create(CRONTABS, ns, { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: ns }, spec: { cronSpec: '*/5 * * * *', image: 'busybox' } });
}

describe('worker processes', () => {
  test('killed with SIGKILL mid-job: the job stalls, another worker takes it, the CronTab converges', async () => {
    const ns = `kill-${randomUUID().slice(0, 8)}`;
    await ensureNamespace(env.kube, ns);
    await cronTabIn(ns, 'victim');
    const child = workerProcess();
    await child.waitForLine((l) => l.msg === 'worker started');
    // Every CronJob request hangs: the child reads the CronTab, then blocks on the CronJob GET.
    env.sim.faults.hangRequests({ resource: 'cronjobs', seconds: 30, ratio: 1 });
    const job = await env.enqueue(`CronTab/${ns}/victim`);
    await waitFor('the job to be active in the child', async () => (await job.getState()) === 'active', 20_000);
    child.signal('SIGKILL');
    assert.equal(await child.exited, 'SIGKILL');
    env.sim.faults.reset();

    // A fresh worker finds the stalled job once the dead worker's lock runs out.
    await env.startWorker({ lockDurationMs: 2_000 });
    const result = (await job.waitUntilFinished(env.queueEvents, 20_000)) as { result: string };
    assert.equal(result.result, 'changed');
    assert.ok(await env.kube.get(CRONJOBS, ns, 'victim'));
    const done = await env.queue.getJob(job.id!);
    assert.ok(done!.stalledCounter >= 1 || done!.attemptsStarted >= 2, 'the job ran a second time');
  });

  test('SIGTERM: finishes the active job, takes no new one, exits 0', async () => {
    const ns = `term-${randomUUID().slice(0, 8)}`;
    await ensureNamespace(env.kube, ns);
    await cronTabIn(ns, 'inflight');
    await cronTabIn(ns, 'later');
    // No in-process worker may steal these jobs: stop those of the previous test.
    await Promise.all(env.workers.splice(0).map((w) => w.close(2_000)));
    const child = workerProcess({ WORKER_SHUTDOWN_DEADLINE: '20s' });
    await child.waitForLine((l) => l.msg === 'worker started');
    // CronJob requests take 1 s: long enough to send SIGTERM while the job is active.
    env.sim.faults.hangRequests({ resource: 'cronjobs', seconds: 1, ratio: 1 });
    // The reconcile is under way once the child has read the CronTab: a job that is merely
    // active in Redis may not have reached the processor yet, and a stopping worker hands such a job back.
    let reconcileStarted = false;
    const unsubscribe = env.sim.onRequestComplete((info) => {
      if (info.resource === 'crontabs' && info.namespace === ns && info.name === 'inflight' && info.userAgent?.startsWith('kreconcile-worker')) reconcileStarted = true;
    });
    const inflight = await env.enqueue(`CronTab/${ns}/inflight`);
    await waitFor('the child to start reconciling the job', () => reconcileStarted, 20_000);
    unsubscribe();
    child.signal('SIGTERM');
    await child.waitForLine((l) => l.msg === 'shutting down');
    const later = await env.enqueue(`CronTab/${ns}/later`);
    assert.equal(await child.exited, 0);
    env.sim.faults.reset();
    const state = await inflight.getState();
    assert.equal(state, 'completed', `the active job was finished, not abandoned (${state}; ${JSON.stringify((await env.queue.getJob(inflight.id!))?.failedReason ?? '')})\n${childLines.join('\n')}`);
    assert.ok(await env.kube.get(CRONJOBS, ns, 'inflight'));
    assert.ok(['waiting', 'delayed'].includes(await later.getState()), 'no job was processed after SIGTERM');
    assert.equal(await env.kube.get(CRONJOBS, ns, 'later'), undefined, 'and no reconcile started');
    await later.remove();
  });
});
