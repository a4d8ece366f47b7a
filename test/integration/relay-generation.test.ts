// The relay does not enqueue a CronTab for a MODIFIED event that leaves its
// metadata.generation (and deletion) as last seen: a status or metadata-only
// write, mostly the worker's own status write. Everything else still is.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { waitFor } from '../support/wait.ts';

let env: RelayEnv | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

const CRONTABS = '/apis/stable.example.com/v1/namespaces/default/crontabs';

async function createCronTab(e: RelayEnv, name: string): Promise<{ metadata: { uid: string } }> {
  const res = await e.kube.request<{ metadata: { uid: string } }>('POST', CRONTABS, {
    body: { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name }, spec: { cronSpec: '0 3 * * *', image: 'busybox' } },
  });
  return res.body;
}

function mergePatch(e: RelayEnv, path: string, body: unknown): Promise<unknown> {
  return e.kube.request('PATCH', path, { body, contentType: 'application/merge-patch+json' });
}

/** A spec change to a marker CronTab: its job arriving means every earlier event on the watch was handled. */
async function fence(e: RelayEnv, image: string): Promise<void> {
  await mergePatch(e, `${CRONTABS}/marker`, { spec: { image } });
  await waitFor('the marker key', async () => (await e.queuedKeys()).includes('CronTab/default/marker'));
}

describe('CronTab events that change only status or metadata', () => {
  test('are not enqueued; spec changes, deletion and DELETED are', async () => {
    env = await startRelayEnv({ crd: true });
    const relay = await env.startRelay({ resources: ['crontabs'] });
    await relay.synced();
    await createCronTab(env, 'nightly');
    await createCronTab(env, 'marker');
    await waitFor('both keys', async () => (await env!.queuedKeys()).length === 2);
    await env.drainQueue();

    // The worker's status write, then a label: same generation, no job.
    await mergePatch(env, `${CRONTABS}/nightly/status`, { status: { observedGeneration: 1, cronJobName: 'nightly' } });
    await mergePatch(env, `${CRONTABS}/nightly`, { metadata: { labels: { team: 'a' }, finalizers: ['example.com/hold'] } });
    await fence(env, 'm1');
    assert.deepEqual(await env.queuedKeys(), ['CronTab/default/marker']);
    assert.equal(await metricValue(relay, 'kreconcile_relay_same_generation_skips_total', { resource: 'crontabs' }), 2);
    await env.drainQueue();

    // A spec change moves the generation: enqueued.
    await mergePatch(env, `${CRONTABS}/nightly`, { spec: { image: 'busybox:2' } });
    await waitFor('the key after a spec change', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();

    // Deletion starting (the finalizer holds the object): generation may stay, deletionTimestamp is new: enqueued.
    await env.kube.request('DELETE', `${CRONTABS}/nightly`);
    await waitFor('the key once deletion starts', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();

    // DELETED (finalizer removed) is never skipped, even with the generation unchanged.
    await mergePatch(env, `${CRONTABS}/nightly`, { metadata: { finalizers: null } });
    await waitFor('the key once deleted', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    const jobs = await env.queuedJobs();
    assert.ok(jobs.some((j) => j.data.key === 'CronTab/default/nightly' && j.data.reason === 'DELETED'), 'the last job for nightly is its DELETED event');
  });

  test('after a relist a status write is still skipped, and a CronJob status change still enqueues its CronTab', async () => {
    env = await startRelayEnv({ crd: true });
    const ct = await createCronTab(env, 'hourly');
    await createCronTab(env, 'marker');
    // The first list learns the generations.
    const relay = await env.startRelay({ resources: ['crontabs', 'cronjobs'] });
    await relay.synced();
    await waitFor('both keys from the list', async () => (await env!.queuedKeys()).length === 2);
    await env.drainQueue();

    await mergePatch(env, `${CRONTABS}/hourly/status`, { status: { observedGeneration: 1 } });
    await fence(env, 'm1');
    assert.deepEqual(await env.queuedKeys(), ['CronTab/default/marker']);
    await env.drainQueue();

    // A CronJob without the worker's stamp is never skipped, nor is a lastScheduleTime change (it feeds the CronTab's status).
    const cronJobs = '/apis/batch/v1/namespaces/default/cronjobs';
    await env.kube.request('POST', cronJobs, {
      body: {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: {
          name: 'hourly',
          labels: { 'app.kubernetes.io/managed-by': 'kreconcile' },
          ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'hourly', uid: ct.metadata.uid, controller: true, blockOwnerDeletion: true }],
        },
        spec: { schedule: '0 * * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'crontab', image: 'busybox' }] } } } } },
      },
    });
    await waitFor('the owner key from the new CronJob', async () => (await env!.queuedKeys()).includes('CronTab/default/hourly'));
    await env.drainQueue();
    await mergePatch(env, `${cronJobs}/hourly/status`, { status: { lastScheduleTime: '2026-01-01T00:00:00Z' } });
    await waitFor('the owner key from a CronJob status change', async () => (await env!.queuedKeys()).includes('CronTab/default/hourly'));
  });
});
