// Found by scenario 5 (hangs): a worker reads a CronTab and its CronJob at once;
// if the CronJob read is slow and the CronTab is deleted meanwhile, garbage
// collection removes the CronJob before the read answers, the worker finds no
// CronJob and created a second one for a CronTab that no longer existed. This
// pins the race down deterministically: the CronJob read hangs, the CronTab is
// deleted while it hangs, and the CronJob must not be created again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startKubeSim } from '../../services/kube-sim/index.ts';
import { CRONTABS } from '../../services/worker/kube.ts';
import { ensureNamespace, startWorkerEnv } from '../integration/worker-env.ts';

test('a slow CronJob read racing the CronTab’s deletion does not create its CronJob a second time', async () => {
  const sim = await startKubeSim();
  const env = await startWorkerEnv({ sim });
  try {
    await env.startWorker({ concurrency: 1 });
    await ensureNamespace(env.kube, 'race');
    const creates = new Map<string, number>();
    let onCronTabRead: (() => void) | undefined;
    sim.onRequestComplete((info) => {
      if (info.resource === 'cronjobs' && info.verb === 'create' && info.code === 201) {
        const owner = info.responseObject?.metadata.ownerReferences?.[0]?.uid ?? '?';
        creates.set(owner, (creates.get(owner) ?? 0) + 1);
      }
      if (info.userAgent?.startsWith('kreconcile-worker') && info.verb === 'get' && info.resource === 'crontabs' && info.code === 200) onCronTabRead?.();
    });
    const ct = await env.kube.create<{ metadata: { uid: string } }>(CRONTABS, 'race', { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'x', namespace: 'race' }, spec: { cronSpec: '*/5 * * * *', image: 'a' } });
    await env.reconcile('CronTab/race/x');
    assert.equal(creates.get(ct.metadata.uid), 1);

    sim.faults.hangRequests({ resource: 'cronjobs', seconds: 1, ratio: 1 });
    const cronTabRead = new Promise<void>((resolve) => (onCronTabRead = resolve));
    const pass = env.reconcile('CronTab/race/x');
    await cronTabRead; // the worker has the CronTab; its CronJob read hangs
    await env.kube.delete(CRONTABS, 'race', 'x'); // GC removes the CronJob while the read hangs
    await pass;
    await env.idle();
    sim.faults.reset();
    assert.equal(creates.get(ct.metadata.uid), 1, 'the CronJob of one CronTab incarnation is created once');
  } finally {
    await env.stop();
    await sim.stop();
  }
});
