// The relay does not enqueue a CronTab for events of its CronJob that are the
// worker's own writes: the CronJob's owned fields still hash to the digest the
// worker stamped on it. Drift, a moved lastScheduleTime and deletion still are.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { desiredCronJob, mergeOwned, type CronJob, type CronTab } from '../../services/worker/reconcilers/crontab.ts';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { waitFor } from '../support/wait.ts';

let env: RelayEnv | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

const CRONTABS = '/apis/stable.example.com/v1/namespaces/default/crontabs';
const CRONJOBS = '/apis/batch/v1/namespaces/default/cronjobs';

async function createCronTab(e: RelayEnv, name: string): Promise<CronTab> {
  const res = await e.kube.request<CronTab>('POST', CRONTABS, {
    body: { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name }, spec: { cronSpec: '0 3 * * *', image: 'busybox' } },
  });
  return res.body;
}

async function getCronJob(e: RelayEnv, name: string): Promise<CronJob> {
  return (await e.kube.request<CronJob>('GET', `${CRONJOBS}/${name}`)).body;
}

async function putCronJob(e: RelayEnv, cj: CronJob): Promise<void> {
  await e.kube.request('PUT', `${CRONJOBS}/${cj.metadata!.name}`, { body: cj });
}

/** A spec change to a marker CronTab: its job arriving means every earlier event was handled. */
async function fence(e: RelayEnv, image: string): Promise<void> {
  await e.kube.request('PATCH', `${CRONTABS}/marker`, { body: { spec: { image } }, contentType: 'application/merge-patch+json' });
  await waitFor('the marker key', async () => (await e.queuedKeys()).includes('CronTab/default/marker'));
}

describe("CronJob events that are the worker's own writes", () => {
  test('are not enqueued; drift, a new lastScheduleTime and deletion are', async () => {
    env = await startRelayEnv({ crd: true });
    const relay = await env.startRelay({ resources: ['crontabs', 'cronjobs'] });
    await relay.synced();
    const ct = await createCronTab(env, 'nightly');
    await createCronTab(env, 'marker');
    await waitFor('both CronTab keys', async () => (await env!.queuedKeys()).length === 2);
    await env.drainQueue();
    const skips = () => metricValue(relay, 'kreconcile_relay_own_write_skips_total', { resource: 'cronjobs' });

    // Created as a worker creates it, then updated as a worker updates it: no job.
    await env.kube.request('POST', CRONJOBS, { body: desiredCronJob(ct) });
    const changed = desiredCronJob({ ...ct, spec: { ...ct.spec, image: 'busybox:2', replicas: 3 } });
    await putCronJob(env, mergeOwned(changed, await getCronJob(env, 'nightly')));
    // Someone else's label and annotation: not a field kreconcile owns, still as written.
    const labelled = await getCronJob(env, 'nightly');
    labelled.metadata!.labels = { ...labelled.metadata!.labels, team: 'a' };
    labelled.metadata!.annotations = { ...labelled.metadata!.annotations, 'example.com/note': 'hi' };
    await putCronJob(env, labelled);
    await fence(env, 'm1');
    assert.deepEqual(await env.queuedKeys(), ['CronTab/default/marker']);
    assert.equal(await skips(), 3);
    await env.drainQueue();

    // Drift: an owned field changed by someone else. Enqueued.
    const drifted = await getCronJob(env, 'nightly');
    drifted.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image = 'evil:latest';
    await putCronJob(env, drifted);
    await waitFor('the owner key after drift', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();

    // Put back as written, then the CronJob controller records a run: lastScheduleTime moved. Enqueued.
    await putCronJob(env, mergeOwned(changed, await getCronJob(env, 'nightly')));
    await fence(env, 'm2');
    await env.drainQueue();
    await env.kube.request('PATCH', `${CRONJOBS}/nightly/status`, { body: { status: { lastScheduleTime: '2026-01-01T03:00:00Z' } }, contentType: 'application/merge-patch+json' });
    await waitFor('the owner key after a schedule', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();

    // A stamp that no longer matches (edited by hand) is not trusted. Enqueued.
    const forged = await getCronJob(env, 'nightly');
    forged.metadata!.annotations = { ...forged.metadata!.annotations, 'kreconcile.io/owned-fields': 'made-up' };
    await putCronJob(env, forged);
    await waitFor('the owner key after the stamp changed', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();

    // Deleted: always enqueued.
    await env.kube.request('DELETE', `${CRONJOBS}/nightly`);
    await waitFor('the owner key after deletion', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
  });
});
