// Several workers, many keys, a stream of updates: every object ends converged,
// and no CronJob is ever created twice (counted on kube-sim's side of the wire).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { CRONJOBS, CRONTABS } from '../../services/worker/kube.ts';
import { desiredCronJob, diffCronJob, ownerReference, type CronJob, type CronTab } from '../../services/worker/reconcilers/crontab.ts';
import { ensureNamespace, startWorkerEnv, type WorkerEnv } from './worker-env.ts';

let env: WorkerEnv;
before(async () => {
  env = await startWorkerEnv();
  await Promise.all([env.startWorker({ concurrency: 8 }), env.startWorker({ concurrency: 8 }), env.startWorker({ concurrency: 8 })]);
});
after(() => env.stop());

test('three workers, 40 CronTabs, five updates each while they work: all converge, one create per CronJob', async () => {
  const ns = `conc-${randomUUID().slice(0, 8)}`;
  await ensureNamespace(env.kube, ns);
  const creates = new Map<string, number>();
  const unsubscribe = env.sim.onRequestComplete((info) => {
    if (info.resource === 'cronjobs' && info.verb === 'create' && info.code === 201) {
      const name = info.responseObject?.metadata.name ?? info.name ?? '?';
      creates.set(name, (creates.get(name) ?? 0) + 1);
    }
  });
  const names = Array.from({ length: 40 }, (_, i) => `ct-${i}`);
  await Promise.all(names.map((name) => env.kube.create(CRONTABS, ns, { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: ns }, spec: { cronSpec: '*/5 * * * *', image: 'img:0' } })));
  await Promise.all(names.map((name) => env.enqueue(`CronTab/${ns}/${name}`)));
  // A stream of changes, each followed by its hint, as the relay would send them.
  for (let round = 1; round <= 5; round++) {
    await Promise.all(
      names.map(async (name) => {
        await env.kube.mergePatch(CRONTABS, ns, name, { spec: { image: `img:${round}`, replicas: round } });
        await env.enqueue(`CronTab/${ns}/${name}`);
      }),
    );
  }
  await env.idle(30_000);
  unsubscribe();

  for (const name of names) {
    const ct = (await env.kube.get<CronTab>(CRONTABS, ns, name))!;
    const cj = await env.kube.get<CronJob>(CRONJOBS, ns, name);
    assert.ok(cj, `${name}: CronJob exists`);
    assert.deepEqual(diffCronJob(desiredCronJob(ct), cj, ownerReference(ct)), [], `${name}: CronJob converged`);
    assert.equal(cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, 'img:5');
    assert.equal(ct.status?.observedGeneration, ct.metadata.generation, `${name}: status observed the last generation`);
    assert.equal(creates.get(name), 1, `${name}: created exactly once`);
  }
  const failed = await env.queue.getFailed();
  assert.deepEqual(failed.map((j) => `${j.data.key}: ${j.failedReason}`), []);
});
