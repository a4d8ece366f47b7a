// The relay against kube-sim and the shared Redis: list + watch, checkpoints,
// 410s, restarts, CronJob mapping, bad events, resync.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { redisConnection } from '../../services/common/queue.ts';
import { relayKeyBase } from '../../services/relay/state.ts';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { waitFor } from '../support/wait.ts';

let env: RelayEnv | undefined;
afterEach(async () => {
  await env?.stop();
  env = undefined;
});

async function checkpoint(e: RelayEnv, resource = 'secrets'): Promise<string | null> {
  const redis = new Redis(redisConnection(e.redisUrl) as object);
  try {
    return await redis.get(`${relayKeyBase(e.prefix, e.queueName)}:${resource}:rv`);
  } finally {
    redis.disconnect();
  }
}

describe('when the relay starts with no checkpoint', () => {
  test('it lists every page, enqueues every key once, then watches', async () => {
    env = await startRelayEnv();
    for (let i = 0; i < 120; i++) await env.createSecret(i % 2 ? 'default' : 'kube-public', `s-${i}`);
    const lists: string[] = [];
    env.sim.onRequestComplete((info) => {
      if (info.verb === 'list' && info.resource === 'secrets') lists.push(info.requestURI);
    });
    const relay = await env.startRelay({ listPageSize: 50 });
    await relay.synced();
    await relay.idle();
    const keys = await env.queuedKeys();
    assert.equal(keys.length, 120);
    assert.ok(keys.includes('Secret/default/s-1') && keys.includes('Secret/kube-public/s-0'));
    assert.equal(lists.length, 3, `three pages of 50: ${lists.join(' ')}`);
    assert.ok(lists.every((u) => u.includes('limit=50')));
    assert.ok(lists.slice(1).every((u) => u.includes('continue=')));
    assert.deepEqual(relay.knownObjects(), { secrets: 120 });

    await env.createSecret('default', 'late');
    await waitFor('the new key', async () => (await env!.queuedKeys()).includes('Secret/default/late'));
    const job = (await env.queuedJobs()).find((j) => j.data.key === 'Secret/default/late')!;
    assert.equal(job.data.reason, 'ADDED');
    assert.equal(Object.keys(job.data).sort().join(), 'key,reason,resourceVersion,seenAt', 'job data carries no object');
  });
});

describe('coalescing', () => {
  test('100 updates to one object make far fewer jobs, and the last state is the one reconciled', async () => {
    env = await startRelayEnv();
    await env.createSecret('default', 'hot');
    const relay = await env.startRelay();
    await relay.synced();
    // A stand-in worker: reads the object's current state, as a reconciler does.
    const { Worker } = await import('bullmq');
    const { hashTaggedPrefix } = await import('../../services/common/queue.ts');
    const seen: string[] = [];
    const kube = env.kube;
    const worker = new Worker(
      env.queueName,
      async (job) => {
        const [, ns, name] = String(job.data.key).split('/');
        const s = (await kube.request<{ data: { password: string } }>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`)).body;
        seen.push(Buffer.from(s.data.password, 'base64').toString());
        await new Promise((r) => setTimeout(r, 30)); // a reconcile takes a little while
      },
      { connection: redisConnection(env.redisUrl), prefix: hashTaggedPrefix(env.prefix), concurrency: 4 },
    );
    try {
      for (let i = 1; i <= 100; i++) await env.updateSecret('default', 'hot', `value-${i}`);
      await relay.idle();
      await waitFor('the last state to be reconciled', async () => seen.at(-1) === 'value-100' && (await env!.queue.getJobCounts('waiting', 'active')).active === 0, 15_000);
      assert.ok(seen.length < 30, `100 updates made ${seen.length} passes`);
      const enqueued = await metricValue(relay, 'kreconcile_relay_jobs_enqueued_total');
      const hits = await metricValue(relay, 'kreconcile_relay_dedup_hits_total');
      assert.ok(hits > 0, 'some adds coalesced in Redis');
      assert.ok(enqueued >= seen.length);
    } finally {
      await worker.close();
    }
  });
});

describe('when a relay restarts', () => {
  test('it resumes the watch from its checkpoint instead of relisting', async () => {
    env = await startRelayEnv();
    for (let i = 0; i < 10; i++) await env.createSecret('default', `s-${i}`);
    const first = await env.startRelay();
    await first.synced();
    await first.idle();
    await first.stop();
    const saved = await checkpoint(env);
    assert.ok(saved, 'a checkpoint was written');
    await env.drainQueue();

    await env.createSecret('default', 'while-down');
    await env.updateSecret('default', 's-3', 'changed');
    const lists: string[] = [];
    env.sim.onRequestComplete((info) => {
      if (info.resource === 'secrets' && (info.verb === 'list' || info.verb === 'watch')) lists.push(`${info.verb} ${info.requestURI}`);
    });
    const second = await env.startRelay();
    await second.synced();
    await waitFor('the changes made while down', async () => (await env!.queuedKeys()).length === 2);
    await second.idle();
    assert.deepEqual(await env.queuedKeys(), ['Secret/default/s-3', 'Secret/default/while-down']);
    assert.equal(await metricValue(second, 'kreconcile_relay_relists_total'), 0);
    assert.equal(await metricValue(second, 'kreconcile_relay_watch_restarts_total', { cause: 'checkpoint' }), 1);
    assert.deepEqual(second.knownObjects(), { secrets: 11 });
  });

  test('a 410 on resume means relist, and the relist finds the deletes made while it was down', async () => {
    env = await startRelayEnv();
    for (let i = 0; i < 10; i++) await env.createSecret('default', `s-${i}`);
    const first = await env.startRelay();
    await first.synced();
    await first.idle();
    await first.stop();
    await env.drainQueue();

    await env.deleteSecret('default', 's-4');
    await env.deleteSecret('default', 's-7');
    await env.createSecret('default', 'new-one');
    env.sim.faults.compact(); // the checkpoint's history is gone: the watch gets 410

    const second = await env.startRelay();
    await second.synced();
    await second.idle();
    // Only what changed is enqueued: the two deletes (found by the known-set) and the new object.
    assert.deepEqual(await env.queuedKeys(), ['Secret/default/new-one', 'Secret/default/s-4', 'Secret/default/s-7']);
    assert.equal(await metricValue(second, 'kreconcile_relay_gone_total'), 1);
    assert.equal(await metricValue(second, 'kreconcile_relay_relists_total'), 1);
    assert.deepEqual(second.knownObjects(), { secrets: 9 });
  });
});

describe('while watching', () => {
  test('a dropped watch is resumed from the last resourceVersion without losing events', async () => {
    env = await startRelayEnv();
    const relay = await env.startRelay();
    await relay.synced();
    await env.createSecret('default', 'a');
    await waitFor('a', async () => (await env!.queuedKeys()).includes('Secret/default/a'));
    env.sim.faults.dropWatches('reset');
    await env.createSecret('default', 'b');
    await waitFor('b after the drop', async () => (await env!.queuedKeys()).includes('Secret/default/b'));
    assert.equal(await metricValue(relay, 'kreconcile_relay_relists_total'), 1, 'no relist: resumed from the last resourceVersion');
    assert.ok((await metricValue(relay, 'kreconcile_relay_watch_restarts_total')) >= 2);
  });

  test('an ERROR 410 event mid-stream makes the relay relist', async () => {
    env = await startRelayEnv();
    await env.createSecret('default', 'a');
    const relay = await env.startRelay();
    await relay.synced();
    await relay.idle();
    await env.drainQueue();
    // Cut the watch and keep the relay from rewatching while a delete happens and the
    // history is compacted past it: the resumed watch then gets ERROR 410.
    env.sim.faults.failRequests({ resource: 'secrets', code: 503, ratio: 1 });
    env.sim.faults.dropWatches('end');
    const { systemContext } = await import('../../services/kube-sim/api.ts');
    await env.sim.api.delete(systemContext('test'), env.sim.registry.lookup('', 'v1', 'secrets')!, 'default', 'a');
    env.sim.faults.compact();
    env.sim.faults.failRequests({ resource: 'secrets', code: 503, ratio: 0 });
    await waitFor('a relist after 410', async () => (await metricValue(relay, 'kreconcile_relay_relists_total')) >= 2, 10_000);
    await waitFor('the delete to be enqueued', async () => (await env!.queuedKeys()).includes('Secret/default/a'));
  });

  test('a watch that stays silent past the timeout is restarted', async () => {
    env = await startRelayEnv({ sim: { bookmarkIntervalMs: 60_000 } });
    const relay = await env.startRelay({ watchSilenceTimeoutMs: 200 });
    await relay.synced();
    await waitFor('a silence restart', async () => (await metricValue(relay, 'kreconcile_relay_watch_restarts_total', { cause: 'silence' })) >= 2, 5_000);
    await env.createSecret('default', 'after-silence');
    await waitFor('events still arrive', async () => (await env!.queuedKeys()).includes('Secret/default/after-silence'));
  });

  test('bookmarks move the checkpoint', async () => {
    env = await startRelayEnv({ sim: { bookmarkIntervalMs: 50 } });
    const relay = await env.startRelay();
    await relay.synced();
    await relay.idle();
    const before = Number(await checkpoint(env));
    // A write to something the relay does not watch moves the global revision; only a bookmark can tell the relay.
    const cm = await env.kube.request<{ metadata: { resourceVersion: string } }>('POST', '/api/v1/namespaces/default/configmaps', {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unwatched' }, data: { a: 'b' } },
    });
    const target = Number(cm.body.metadata.resourceVersion);
    assert.ok(target > before);
    await waitFor('the checkpoint to reach the bookmark', async () => Number(await checkpoint(env!)) >= target, 5_000);
    assert.ok((await metricValue(relay, 'kreconcile_relay_events_received_total', { type: 'BOOKMARK' })) >= 1);
    assert.deepEqual(await env.queuedKeys(), []);
  });

  test('resync enqueues every known key', async () => {
    env = await startRelayEnv();
    for (let i = 0; i < 5; i++) await env.createSecret('default', `r-${i}`);
    const relay = await env.startRelay({ resyncIntervalMs: 150 });
    await relay.synced();
    await relay.idle();
    await env.drainQueue();
    await waitFor('a resync', async () => (await env!.queuedKeys()).length === 5, 5_000);
    assert.ok((await env.queuedJobs()).every((j) => j.data.reason === 'RESYNC'));
    assert.ok((await metricValue(relay, 'kreconcile_relay_resyncs_total')) >= 1);
  });
});

describe('CronJobs', () => {
  test('a managed CronJob maps to its CronTab, an unmanaged one is not watched', async () => {
    env = await startRelayEnv({ crd: true });
    const relay = await env.startRelay({ resources: ['crontabs', 'cronjobs'] });
    await relay.synced();
    const ct = await env.kube.request<{ metadata: { uid: string } }>('POST', '/apis/stable.example.com/v1/namespaces/default/crontabs', {
      body: { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'nightly' }, spec: { cronSpec: '0 3 * * *', image: 'busybox' } },
    });
    await waitFor('the CronTab key', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();
    const cronJob = (name: string, labels: Record<string, string>, owner?: boolean) => ({
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {
        name,
        labels,
        ...(owner ? { ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'nightly', uid: ct.body.metadata.uid, controller: true, blockOwnerDeletion: true }] } : {}),
      },
      spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'busybox' }] } } } } },
    });
    await env.kube.request('POST', '/apis/batch/v1/namespaces/default/cronjobs', { body: cronJob('unmanaged', {}) });
    await env.kube.request('POST', '/apis/batch/v1/namespaces/default/cronjobs', { body: cronJob('nightly-owned', { 'app.kubernetes.io/managed-by': 'kreconcile' }, true) });
    await waitFor('the owner key from the CronJob', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await env.drainQueue();
    // Drift on the CronJob (someone deletes it) brings its CronTab back into the queue.
    await env.kube.request('DELETE', '/apis/batch/v1/namespaces/default/cronjobs/nightly-owned');
    await waitFor('the owner key after the delete', async () => (await env!.queuedKeys()).includes('CronTab/default/nightly'));
    await relay.idle();
    assert.deepEqual(await env.queuedKeys(), ['CronTab/default/nightly']);
    assert.equal(await metricValue(relay, 'kreconcile_relay_events_received_total', { resource: 'cronjobs', type: 'ADDED' }), 1, 'the unmanaged CronJob is not watched');
  });
});

describe('bad events', () => {
  test('malformed lines and unknown kinds are logged and skipped; the stream goes on', async () => {
    env = await startRelayEnv();
    // A proxy in front of kube-sim that slips bad lines into the secrets watch stream.
    const target = new URL(env.sim.url);
    const proxy = http.createServer((req, res) => {
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (req.url?.includes('watch=true')) {
          res.write('this is not json\n');
          res.write(JSON.stringify({ type: 'ADDED', object: { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p', namespace: 'default', resourceVersion: '1' } } }) + '\n');
          res.write(JSON.stringify({ type: 'ADDED', object: { kind: 'Secret', apiVersion: 'v1', data: { password: 'aHVudGVyMg==' } } }) + '\n');
        }
        upRes.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const { KubeConfig } = await import('@kubernetes/client-node');
      const kc = new KubeConfig();
      kc.loadFromString(env.sim.kubeconfigYaml.replace(env.sim.url, `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`));
      const logged: string[] = [];
      const { createLogger } = await import('../../services/common/logger.ts');
      const { Writable } = await import('node:stream');
      const log = createLogger({ level: 'warn', destination: new Writable({ write: (c, _e, cb) => (logged.push(String(c)), cb()) }) });
      const relay = await env.startRelay({ kubeconfig: kc, log });
      await relay.synced();
      await env.createSecret('default', 'good');
      await waitFor('the good event', async () => (await env!.queuedKeys()).includes('Secret/default/good'));
      assert.equal(await metricValue(relay, 'kreconcile_relay_bad_events_total', { reason: 'not JSON' }), 1);
      assert.equal(await metricValue(relay, 'kreconcile_relay_bad_events_total', { reason: 'unexpected kind "Pod" on the secrets watch' }), 1);
      assert.equal(await metricValue(relay, 'kreconcile_relay_bad_events_total', { reason: 'object without metadata' }), 1);
      assert.ok(logged.some((l) => l.includes('skipping a bad watch event')));
      assert.ok(logged.every((l) => !l.includes('aHVudGVyMg')), 'no Secret data in logs');
      assert.deepEqual(await env.queuedKeys(), ['Secret/default/good']);
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });
});
