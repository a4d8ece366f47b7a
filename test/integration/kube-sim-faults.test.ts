// Fault switches: each one through the admin port, with its effect seen by real clients.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { createLogger } from '../../services/common/logger.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { eventually } from '../support/wait.ts';

let sim: KubeSim;
let core: k8s.CoreV1Api;
const logLines: Array<Record<string, unknown>> = [];

before(async () => {
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      cb();
    },
  });
  sim = await startKubeSim({ adminPort: 0, log: createLogger({ level: 'info', destination }) });
  core = sim.kubeconfig.makeApiClient(k8s.CoreV1Api);
});
after(() => sim.stop());

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sim.adminUrl}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 200, await res.clone().text());
  return res.json();
}

function logged(fault: string): boolean {
  return logLines.some((l) => l.fault === fault && l.level === 'warn');
}

describe('fault switches', () => {
  test('all off by default, and the admin endpoint is not on the API port', async () => {
    assert.deepEqual(await admin('GET', '/faults'), { errors: [], hangs: [] });
    assert.notEqual(new URL(sim.adminUrl!).port, String(sim.port));
    const res = await fetch(`${sim.url}/faults`);
    assert.equal(res.status, 404);
  });

  test('drop-watches ends every open watch', async () => {
    const watch = new k8s.Watch(sim.kubeconfig);
    const ended = [0, 1].map(
      () =>
        new Promise<void>((resolve) => {
          void watch.watch('/api/v1/namespaces/default/configmaps', {}, () => {}, () => resolve());
        }),
    );
    await eventually('two open watches', () => sim.watches.size === 2, 10_000, 10);
    const { dropped } = await admin('POST', '/faults/drop-watches');
    assert.equal(dropped, 2);
    await Promise.all(ended);
    assert.equal(sim.watches.size, 0);
    assert.ok(logged('drop-watches'));
  });

  test('compact makes a watch from an older revision get 410', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'before-compact' } } });
    const old = String(sim.store.currentRevision - 1);
    await admin('POST', '/faults/compact');
    const res = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${old}`);
    assert.equal(res.status, 200);
    const text = await res.text(); // the server closes right after the ERROR event
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.length, 1);
    assert.equal(events[0].type, 'ERROR');
    assert.equal(events[0].object.code, 410);
    const list = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps?resourceVersion=${old}&resourceVersionMatch=Exact`);
    assert.equal(list.status, 410);
    assert.ok(logged('compact'));
  });

  test('errors: a share of one resource’s requests answered 503 or 500, others untouched', async () => {
    await admin('POST', '/faults/errors', { resource: 'secrets', code: 503, ratio: 1 });
    const r503 = await fetch(`${sim.url}/api/v1/namespaces/default/secrets`);
    assert.equal(r503.status, 503);
    assert.equal(((await r503.json()) as { reason: string }).reason, 'ServiceUnavailable');
    assert.equal(r503.headers.get('retry-after'), '1');
    assert.equal((await fetch(`${sim.url}/api/v1/namespaces/default/configmaps`)).status, 200);
    await admin('POST', '/faults/errors', { resource: 'secrets', code: 500, ratio: 1 });
    const r500 = await fetch(`${sim.url}/api/v1/namespaces/default/secrets`);
    assert.equal(r500.status, 500);
    assert.equal(((await r500.json()) as { reason: string }).reason, 'InternalError');
    // A ratio of 0.5 fails some and passes some (seeded by chance; 40 tries make both near-certain).
    await admin('POST', '/faults/errors', { resource: 'secrets', code: 500, ratio: 0.5 });
    const codes = new Set<number>();
    for (let i = 0; i < 40; i++) codes.add((await fetch(`${sim.url}/api/v1/namespaces/default/secrets`)).status);
    assert.deepEqual([...codes].sort(), [200, 500]);
    // A rule for one resource wins over a rule for all.
    await admin('POST', '/faults/errors', { code: 500, ratio: 1 });
    await admin('POST', '/faults/errors', { resource: 'secrets', code: 503, ratio: 1 });
    assert.equal((await fetch(`${sim.url}/api/v1/namespaces/default/secrets`)).status, 503);
    assert.equal((await fetch(`${sim.url}/api/v1/namespaces/default/configmaps`)).status, 500);
    await admin('DELETE', '/faults');
    assert.equal((await fetch(`${sim.url}/api/v1/namespaces/default/secrets`)).status, 200);
    assert.ok(logged('errors'));
    assert.ok(logged('reset'));
  });

  test('hang: requests to one resource wait N seconds', async () => {
    await admin('POST', '/faults/hang', { resource: 'configmaps', seconds: 1, ratio: 1 });
    const t0 = Date.now();
    const slow = await fetch(`${sim.url}/api/v1/namespaces/default/configmaps`);
    const took = Date.now() - t0;
    assert.equal(slow.status, 200);
    assert.ok(took >= 950, `took ${took} ms`);
    const t1 = Date.now();
    await fetch(`${sim.url}/api/v1/namespaces/default/secrets`);
    assert.ok(Date.now() - t1 < 900);
    await admin('DELETE', '/faults');
    assert.ok(logged('hang'));
  });

  test('pause: nothing is answered and no watch event delivered until it ends', async () => {
    const events: string[] = [];
    const watch = new k8s.Watch(sim.kubeconfig);
    const req = await watch.watch('/api/v1/namespaces/default/secrets', { resourceVersion: String(sim.store.currentRevision) }, (type, obj) => events.push(`${type} ${obj.metadata.name}`), () => {});
    await admin('POST', '/faults/pause', { seconds: 1 });
    const t0 = Date.now();
    // Written in-process during the pause: watchers must not see it yet.
    await sim.api.create({ user: { username: 't', groups: [] }, dryRun: false, fieldValidation: 'Ignore', warnings: [] }, sim.registry.lookup('', 'v1', 'secrets')!, 'default', { metadata: { name: 'during-pause' } });
    const res = await fetch(`${sim.url}/api/v1/namespaces/default/secrets/during-pause`);
    const took = Date.now() - t0;
    assert.equal(res.status, 200);
    assert.ok(took >= 900, `answered after ${took} ms`);
    await eventually('the held watch event', () => events.includes('ADDED during-pause'), 10_000, 10);
    req.abort();
    assert.ok(logged('pause'));
  });
});
