// CronTab → CronJob against kube-sim and the shared Redis: create, converge with
// zero writes, update, drift, NameConflict, InvalidSpec, owner gone, 5xx.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { JOB_NAME, jobOptions } from '../../services/common/queue.ts';
import { CRONJOBS, CRONTABS, EVENTS, KubeClient } from '../../services/worker/kube.ts';
import type { CronJob, CronTab } from '../../services/worker/reconcilers/crontab.ts';
import { ensureNamespace, startWorkerEnv, type WorkerEnv } from './worker-env.ts';
import { waitFor } from '../support/wait.ts';

let env: WorkerEnv;

before(async () => {
  env = await startWorkerEnv();
  await env.startWorker();
});
after(() => env.stop());

async function namespace(): Promise<string> {
  const ns = `ct-${randomUUID().slice(0, 8)}`;
  await ensureNamespace(env.kube, ns);
  return ns;
}

function cronTab(ns: string, name: string, spec: Partial<CronTab['spec']> = {}) {
  return { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: ns }, spec: { cronSpec: '*/5 * * * *', image: 'busybox:1.36', replicas: 2, ...spec } };
}

const get = <T>(kube: KubeClient, res: typeof CRONJOBS, ns: string, name: string) => kube.get<T>(res, ns, name);

async function events(ns: string): Promise<{ reason: string; type: string; note: string; regarding: { kind: string; name: string } }[]> {
  return (await env.kube.list<any>(EVENTS, ns)).items;
}

describe('CronTab → CronJob', () => {
  test('creates the owned CronJob and Ready status; a second pass makes no write', async () => {
    const ns = await namespace();
    const ct = await env.kube.create<CronTab>(CRONTABS, ns, cronTab(ns, 'nightly'));
    const first = (await env.reconcile(`CronTab/${ns}/nightly`)) as { result: string; changes: string[] };
    assert.equal(first.result, 'changed');
    assert.deepEqual(first.changes, ['cronjob created', 'status']);

    const cj = await get<CronJob>(env.kube, CRONJOBS, ns, 'nightly');
    assert.ok(cj);
    assert.equal(cj.spec!.schedule, '*/5 * * * *');
    assert.equal(cj.spec!.jobTemplate.spec!.parallelism, 2);
    assert.deepEqual(cj.spec!.jobTemplate.spec!.template.spec!.containers.map((c) => [c.name, c.image]), [['crontab', 'busybox:1.36']]);
    assert.deepEqual(cj.metadata!.ownerReferences, [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'nightly', uid: ct.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    assert.equal(cj.metadata!.labels!['app.kubernetes.io/managed-by'], 'kreconcile');

    const after1 = await get<CronTab>(env.kube, CRONTABS, ns, 'nightly');
    assert.equal(after1!.status!.observedGeneration, 1);
    assert.equal(after1!.status!.cronJobName, 'nightly');
    const ready = after1!.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.status, 'True');
    assert.ok((await events(ns)).some((e) => e.reason === 'CronJobCreated' && e.regarding.name === 'nightly'));

    const writes = env.workerWrites();
    let second: { result?: string } = {};
    const requests = await env.workerRequests(async () => (second = (await env.reconcile(`CronTab/${ns}/nightly`)) as { result: string }));
    assert.equal(second.result, 'unchanged');
    assert.deepEqual(requests.sort(), ['get cronjobs', 'get crontabs'], 'a converged CronTab costs two reads, as the API server saw it');
    assert.equal(env.workerWrites(), writes, 'and no write, as the worker counted it');
    const after2 = await get<CronTab>(env.kube, CRONTABS, ns, 'nightly');
    assert.equal(after2!.metadata.resourceVersion, after1!.metadata.resourceVersion);
    assert.equal(after2!.status!.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime, ready.lastTransitionTime);
  });

  test('a changed CronTab updates the CronJob in place; a drifted CronJob is restored', async () => {
    const ns = await namespace();
    await env.kube.create(CRONTABS, ns, cronTab(ns, 'app'));
    await env.reconcile(`CronTab/${ns}/app`);
    const created = await get<CronJob>(env.kube, CRONJOBS, ns, 'app');

    await env.kube.mergePatch(CRONTABS, ns, 'app', { spec: { image: 'busybox:1.37', suspend: true } });
    const r = (await env.reconcile(`CronTab/${ns}/app`)) as { changes: string[] };
    assert.deepEqual(r.changes, ['cronjob updated: spec.suspend, container.image', 'status']);
    const updated = await get<CronJob>(env.kube, CRONJOBS, ns, 'app');
    assert.equal(updated!.metadata!.uid, created!.metadata!.uid, 'updated, not re-created');
    assert.equal(updated!.spec!.suspend, true);
    assert.equal(updated!.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, 'busybox:1.37');
    const ct = await get<CronTab>(env.kube, CRONTABS, ns, 'app');
    assert.equal(ct!.status!.observedGeneration, ct!.metadata.generation);

    // Someone edits the CronJob behind our back; the next pass (a resync) puts it back, keeping their other changes.
    await env.kube.mergePatch(CRONJOBS, ns, 'app', { metadata: { labels: { team: 'x' } }, spec: { schedule: '0 0 * * *' } });
    const drift = (await env.reconcile(`CronTab/${ns}/app`)) as { changes: string[] };
    assert.deepEqual(drift.changes, ['cronjob updated: spec.schedule']);
    const restored = await get<CronJob>(env.kube, CRONJOBS, ns, 'app');
    assert.equal(restored!.spec!.schedule, '*/5 * * * *');
    assert.equal(restored!.metadata!.labels!.team, 'x');
  });

  test('a CronJob of that name that is not ours is left alone: Ready=False NameConflict', async () => {
    const ns = await namespace();
    const theirs = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'taken', namespace: ns }, spec: { schedule: '1 1 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'x', image: 'theirs' }] } } } } } };
    const before = await env.kube.create<CronJob>(CRONJOBS, ns, theirs);
    await env.kube.create(CRONTABS, ns, cronTab(ns, 'taken'));
    const job = await env.enqueue(`CronTab/${ns}/taken`);
    // NameConflict requeues the job for later; wait for the status instead of the job.
    const ct = await waitFor('NameConflict status', async () => {
      const got = await get<CronTab>(env.kube, CRONTABS, ns, 'taken');
      return got?.status?.conditions?.some((c) => c.reason === 'NameConflict') ? got : undefined;
    });
    const ready = ct.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.equal(ready.status, 'False');
    assert.match(ready.message!, /not controlled by this CronTab/);
    assert.equal(ct.status!.cronJobName, undefined);
    await waitFor('the job to be delayed', async () => (await job.getState()) === 'delayed');
    const afterwards = await get<CronJob>(env.kube, CRONJOBS, ns, 'taken');
    assert.equal(afterwards!.metadata!.resourceVersion, before.metadata!.resourceVersion, 'their CronJob is untouched');
    assert.ok((await events(ns)).some((e) => e.reason === 'NameConflict' && e.type === 'Warning'));
    await job.remove();
  });

  test('an invalid cron string: InvalidSpec condition and one Event, failed without retries', async () => {
    const ns = await namespace();
    await env.kube.create(CRONTABS, ns, cronTab(ns, 'bad', { cronSpec: '* * * *' }));
    await assert.rejects(env.reconcile(`CronTab/${ns}/bad`), /invalid spec: spec.cronSpec: must have 5 fields/);
    const failed = (await env.queue.getFailed()).find((j) => j.data.key === `CronTab/${ns}/bad`)!;
    assert.equal(failed.attemptsMade, 1, 'a permanent error is not retried');
    const ct = await get<CronTab>(env.kube, CRONTABS, ns, 'bad');
    const ready = ct!.status!.conditions!.find((c) => c.type === 'Ready')!;
    assert.deepEqual([ready.status, ready.reason], ['False', 'InvalidSpec']);
    assert.equal(await get(env.kube, CRONJOBS, ns, 'bad'), undefined);

    // Looking again at the same invalid spec writes nothing and emits no second Event.
    const writes = env.workerWrites();
    await assert.rejects(env.reconcile(`CronTab/${ns}/bad`), /invalid spec/);
    assert.equal(env.workerWrites(), writes);
    assert.equal((await events(ns)).filter((e) => e.reason === 'InvalidSpec').length, 1);

    // Fixed: the CronJob appears and Ready flips to True.
    await env.kube.mergePatch(CRONTABS, ns, 'bad', { spec: { cronSpec: '* * * * *' } });
    await env.reconcile(`CronTab/${ns}/bad`);
    const fixed = await get<CronTab>(env.kube, CRONTABS, ns, 'bad');
    assert.equal(fixed!.status!.conditions!.find((c) => c.type === 'Ready')!.status, 'True');
    assert.ok(await get(env.kube, CRONJOBS, ns, 'bad'));
  });

  test('409 on a write: the worker reads again and converges to the newest spec within the same job', async () => {
    const ns = await namespace();
    await env.kube.create(CRONTABS, ns, cronTab(ns, 'race'));
    // The CronJob GET is held for 300 ms; once the worker has read the CronTab, the test changes it,
    // so the worker's conditional status write carries a stale resourceVersion.
    env.sim.faults.hangRequests({ resource: 'cronjobs', seconds: 0.3, ratio: 1 });
    const codes: string[] = [];
    let changed: Promise<unknown> | undefined;
    const unsubscribe = env.sim.onRequestComplete((info) => {
      if (!info.userAgent?.startsWith('kreconcile-worker')) return;
      codes.push(`${info.verb} ${info.resource}${info.subresource ? '/' + info.subresource : ''} ${info.code}`);
      if (info.verb === 'get' && info.resource === 'crontabs' && !changed) changed = env.kube.mergePatch(CRONTABS, ns, 'race', { spec: { image: 'busybox:newer' } });
    });
    try {
      await env.reconcile(`CronTab/${ns}/race`);
    } finally {
      unsubscribe();
      env.sim.faults.reset();
    }
    await changed;
    assert.ok(codes.includes('patch crontabs/status 409'), `a conflict happened: ${codes.join(', ')}`);
    const cj = await get<CronJob>(env.kube, CRONJOBS, ns, 'race');
    assert.equal(cj!.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, 'busybox:newer');
    const ct = await get<CronTab>(env.kube, CRONTABS, ns, 'race');
    assert.equal(ct!.status!.observedGeneration, ct!.metadata.generation);
    assert.match(await env.workers[0]!.registry.metrics(), /kreconcile_worker_retries_total\{kind="CronTab",reason="conflict"\} [1-9]/);
  });

  test('5xx from the API: the job backs off and retries until the API answers', async () => {
    const ns = await namespace();
    await env.kube.create(CRONTABS, ns, cronTab(ns, 'flaky'));
    env.sim.faults.failRequests({ resource: 'cronjobs', code: 503, ratio: 1 });
    const job = await env.enqueue(`CronTab/${ns}/flaky`);
    // A failed attempt that will be retried leaves the job delayed with attemptsMade ≥ 1.
    await waitFor('a failed attempt', async () => ((await env.queue.getJob(job.id!))?.attemptsMade ?? 0) >= 1);
    env.sim.faults.reset();
    const result = (await job.waitUntilFinished(env.queueEvents, 15_000)) as { result: string };
    assert.equal(result.result, 'changed');
    const done = await env.queue.getJob(job.id!);
    assert.ok(done!.attemptsMade >= 1, 'at least one attempt failed and was retried');
    assert.ok(await get(env.kube, CRONJOBS, ns, 'flaky'));
  });
});

describe('when the last attempt fails', () => {
  let own: WorkerEnv;
  before(async () => {
    own = await startWorkerEnv();
    await own.startWorker();
  });
  after(() => own.stop());

  test('a Warning Event says why the object is stuck', async () => {
    const ns = `last-${randomUUID().slice(0, 8)}`;
    await ensureNamespace(own.kube, ns);
    await own.kube.create(CRONTABS, ns, cronTab(ns, 'stuck'));
    own.sim.faults.failRequests({ resource: 'cronjobs', code: 500, ratio: 1 });
    const key = `CronTab/${ns}/stuck`;
    // One attempt instead of the contract's eight, so the test needs no backoff time.
    const job = await own.queue.add(JOB_NAME, { key, reason: 'MANUAL', seenAt: Date.now() }, { ...jobOptions(key), attempts: 1 });
    await assert.rejects(job.waitUntilFinished(own.queueEvents, 15_000), /500/);
    own.sim.faults.reset();
    const event = await waitFor('the ReconcileFailed Event', async () => (await own.kube.list<any>(EVENTS, ns)).items.find((e) => e.reason === 'ReconcileFailed'));
    assert.equal(event.type, 'Warning');
    assert.equal(event.regarding.name, 'stuck');
    assert.match(event.note, /gave up after 1 attempts: .*500/);
  });
});

describe('when the CronTab is gone', () => {
  // Its own kube-sim with the garbage collector stopped: the worker must clean up
  // by itself what a cluster's GC would (or did not yet).
  let own: WorkerEnv;
  before(async () => {
    own = await startWorkerEnv();
    own.sim.gc.stop();
    await own.startWorker();
  });
  after(() => own.stop());

  test('the CronJob it controlled is deleted; a CronJob of that name not made by kreconcile is kept', async () => {
    const ns = `gone-${randomUUID().slice(0, 8)}`;
    await ensureNamespace(own.kube, ns);
    await own.kube.create(CRONTABS, ns, cronTab(ns, 'gone'));
    await own.reconcile(`CronTab/${ns}/gone`);
    await own.kube.delete(CRONTABS, ns, 'gone');
    assert.ok(await own.kube.get(CRONJOBS, ns, 'gone'), 'GC is off: the CronJob is still there');
    const r = (await own.reconcile(`CronTab/${ns}/gone`)) as { changes: string[] };
    assert.deepEqual(r.changes, ['cronjob deleted (owner gone)']);
    assert.equal(await own.kube.get(CRONJOBS, ns, 'gone'), undefined);
    assert.ok((await own.kube.list<any>(EVENTS, ns)).items.some((e) => e.reason === 'CronJobDeleted'));

    const mine = { apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'unowned', namespace: ns }, spec: { schedule: '1 1 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'x', image: 'y' }] } } } } } };
    await own.kube.create(CRONJOBS, ns, mine);
    const writes = own.workerWrites();
    assert.deepEqual(((await own.reconcile(`CronTab/${ns}/unowned`)) as { changes: string[] }).changes, []);
    assert.equal(own.workerWrites(), writes);
    assert.ok(await own.kube.get(CRONJOBS, ns, 'unowned'));
  });
});
