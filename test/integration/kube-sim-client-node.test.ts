// kube-sim through @kubernetes/client-node 1.4.0: CRUD, pagination, Watch, informers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { waitFor } from '../support/wait.ts';

let sim: KubeSim;
let core: k8s.CoreV1Api;

before(async () => {
  sim = await startKubeSim({ bookmarkIntervalMs: 200 });
  core = sim.kubeconfig.makeApiClient(k8s.CoreV1Api);
});
after(() => sim.stop());

async function rejects(p: Promise<unknown>, code: number): Promise<any> {
  try {
    await p;
  } catch (err: any) {
    assert.equal(err.code, code, `expected HTTP ${code}, got ${err.code}: ${err.body}`);
    return JSON.parse(err.body);
  }
  assert.fail(`expected HTTP ${code}, but the call succeeded`);
}

describe('CRUD on Secrets', () => {
  test('create, get, update, patch, delete with metadata the API server sets', async () => {
    const created = await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'crud' }, stringData: { password: 'hunter22' } } });
    assert.match(created.metadata!.uid!, /^[0-9a-f-]{36}$/);
    assert.ok(created.metadata!.creationTimestamp instanceof Date);
    assert.equal(created.type, 'Opaque');
    assert.equal(created.data!.password, Buffer.from('hunter22').toString('base64'));
    assert.equal(created.stringData, undefined);

    const got = await core.readNamespacedSecret({ namespace: 'default', name: 'crud' });
    assert.equal(got.metadata!.resourceVersion, created.metadata!.resourceVersion);

    // No-op update: same resourceVersion, nothing written.
    const same = await core.replaceNamespacedSecret({ namespace: 'default', name: 'crud', body: got });
    assert.equal(same.metadata!.resourceVersion, got.metadata!.resourceVersion);

    got.metadata!.labels = { tier: 'db' };
    const updated = await core.replaceNamespacedSecret({ namespace: 'default', name: 'crud', body: got });
    assert.ok(Number(updated.metadata!.resourceVersion) > Number(got.metadata!.resourceVersion));

    // A stale resourceVersion is a Conflict.
    const status = await rejects(core.replaceNamespacedSecret({ namespace: 'default', name: 'crud', body: got }), 409);
    assert.equal(status.reason, 'Conflict');
    assert.equal(status.message, 'Operation cannot be fulfilled on secrets "crud": the object has been modified; please apply your changes to the latest version and try again');

    const patched = await core.patchNamespacedSecret(
      { namespace: 'default', name: 'crud', body: { metadata: { annotations: { note: 'x' } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    assert.equal(patched.metadata!.annotations!.note, 'x');
    assert.equal(patched.metadata!.labels!.tier, 'db');

    const typeChange = await rejects(core.replaceNamespacedSecret({ namespace: 'default', name: 'crud', body: { ...patched, type: 'kubernetes.io/tls' } }), 422);
    assert.match(typeChange.message, /Secret "crud" is invalid: .*type: Invalid value: "kubernetes.io\/tls": field is immutable/);

    const deleted = (await core.deleteNamespacedSecret({ namespace: 'default', name: 'crud' })) as any;
    assert.equal(deleted.status, 'Success');
    assert.equal(deleted.details.uid, created.metadata!.uid);
    const nf = await rejects(core.readNamespacedSecret({ namespace: 'default', name: 'crud' }), 404);
    assert.equal(nf.message, 'secrets "crud" not found');
  });

  test('writes into a missing namespace are 404; duplicates are 409 AlreadyExists', async () => {
    const missing = await rejects(core.createNamespacedSecret({ namespace: 'nope', body: { metadata: { name: 'x' } } }), 404);
    assert.equal(missing.message, 'namespaces "nope" not found');
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'dup' }, data: { a: 'b' } } });
    const dup = await rejects(core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'dup' } } }), 409);
    assert.equal(dup.reason, 'AlreadyExists');
    assert.equal(dup.message, 'configmaps "dup" already exists');
  });

  test('generateName makes a name; bad names are 422', async () => {
    const made = await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { generateName: 'gen-' } } });
    assert.match(made.metadata!.name!, /^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const bad = await rejects(core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'Bad_Name' } } }), 422);
    assert.equal(bad.reason, 'Invalid');
    assert.match(bad.message, /^Secret "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/);
    assert.equal(bad.details.causes[0].field, 'metadata.name');
  });

  test('dryRun=All validates and answers like a real write but stores nothing', async () => {
    const before = sim.store.currentRevision;
    const dry = await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'dry' } }, dryRun: 'All' });
    assert.equal(dry.metadata!.name, 'dry');
    assert.ok(dry.metadata!.uid);
    assert.equal(sim.store.currentRevision, before);
    await rejects(core.readNamespacedSecret({ namespace: 'default', name: 'dry' }), 404);
  });

  test('delete preconditions on uid and resourceVersion', async () => {
    const s = await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'pre' } } });
    const wrong = await rejects(core.deleteNamespacedSecret({ namespace: 'default', name: 'pre', body: { preconditions: { uid: 'other' } } }), 409);
    assert.equal(wrong.message, `Operation cannot be fulfilled on secrets "pre": Precondition failed: UID in precondition: other, UID in object meta: ${s.metadata!.uid}`);
    await core.deleteNamespacedSecret({ namespace: 'default', name: 'pre', body: { preconditions: { uid: s.metadata!.uid, resourceVersion: s.metadata!.resourceVersion } } });
    await rejects(core.readNamespacedSecret({ namespace: 'default', name: 'pre' }), 404);
  });
});

describe('list', () => {
  test('limit/continue pages are consistent at the first page revision', async () => {
    await core.createNamespace({ body: { metadata: { name: 'paging' } } });
    for (let i = 0; i < 25; i++) await core.createNamespacedSecret({ namespace: 'paging', body: { metadata: { name: `p-${String(i).padStart(2, '0')}`, labels: { even: String(i % 2 === 0) } } } });
    const first = await core.listNamespacedSecret({ namespace: 'paging', limit: 10 });
    assert.equal(first.items.length, 10);
    assert.equal(first.metadata!.remainingItemCount, 15);
    // Changes after the first page do not show in later pages.
    await core.createNamespacedSecret({ namespace: 'paging', body: { metadata: { name: 'p-99' } } });
    await core.deleteNamespacedSecret({ namespace: 'paging', name: 'p-24' });
    const names = first.items.map((s) => s.metadata!.name);
    let cont = first.metadata!._continue;
    while (cont) {
      const page = await core.listNamespacedSecret({ namespace: 'paging', limit: 10, _continue: cont });
      assert.equal(page.metadata!.resourceVersion, first.metadata!.resourceVersion);
      names.push(...page.items.map((s) => s.metadata!.name));
      cont = page.metadata!._continue;
    }
    assert.deepEqual(names, Array.from({ length: 25 }, (_, i) => `p-${String(i).padStart(2, '0')}`));

    const even = await core.listNamespacedSecret({ namespace: 'paging', labelSelector: 'even=true' });
    assert.equal(even.items.length, 12);
    const byName = await core.listSecretForAllNamespaces({ fieldSelector: 'metadata.name=p-03' });
    assert.deepEqual(byName.items.map((s) => s.metadata!.namespace), ['paging']);
    const badSelector = await rejects(core.listNamespacedSecret({ namespace: 'paging', fieldSelector: 'spec.foo=bar' }), 400);
    assert.equal(badSelector.message, 'field label not supported: spec.foo');
  });

  test('an expired continue token is 410', async () => {
    const first = await core.listNamespace({ limit: 1 });
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { generateName: 'bump-' } } });
    sim.faults.compact();
    const status = await rejects(core.listNamespace({ limit: 1, _continue: first.metadata!._continue }), 410);
    assert.equal(status.reason, 'Expired');
  });
});

describe('watch', () => {
  test('Watch from a resourceVersion sees ADDED, MODIFIED, DELETED in order, and bookmarks', async () => {
    await core.createNamespace({ body: { metadata: { name: 'watching' } } });
    const list = await core.listNamespacedConfigMap({ namespace: 'watching' });
    const events: Array<{ type: string; name?: string; rv?: string }> = [];
    const watch = new k8s.Watch(sim.kubeconfig);
    const req = await watch.watch(
      '/api/v1/namespaces/watching/configmaps',
      { resourceVersion: list.metadata!.resourceVersion, allowWatchBookmarks: true },
      (type, obj) => events.push({ type, name: obj.metadata?.name, rv: obj.metadata?.resourceVersion }),
      () => {},
    );
    await core.createNamespacedConfigMap({ namespace: 'watching', body: { metadata: { name: 'w1' }, data: { a: '1' } } });
    await core.patchNamespacedConfigMap({ namespace: 'watching', name: 'w1', body: { data: { a: '2' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await core.deleteNamespacedConfigMap({ namespace: 'watching', name: 'w1' });
    await waitFor('events and a bookmark', () => events.some((e) => e.type === 'BOOKMARK') && events.filter((e) => e.type !== 'BOOKMARK').length >= 3, 5_000, 10);
    req.abort();
    const changes = events.filter((e) => e.type !== 'BOOKMARK');
    assert.deepEqual(changes.map((e) => `${e.type} ${e.name}`), ['ADDED w1', 'MODIFIED w1', 'DELETED w1']);
    const rvs = changes.map((e) => Number(e.rv));
    assert.deepEqual([...rvs].sort((a, b) => a - b), rvs);
  });

  test('a watch from a compacted resourceVersion gets an ERROR 410 event and is closed', async () => {
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { generateName: 'old-' } } });
    const old = String(sim.store.currentRevision - 1);
    sim.faults.compact();
    const watch = new k8s.Watch(sim.kubeconfig);
    const got: any[] = [];
    const done = new Promise<unknown>((resolve) => {
      void watch.watch('/api/v1/configmaps', { resourceVersion: old }, (type, obj) => got.push({ type, obj }), resolve);
    });
    await done;
    assert.equal(got.length, 1);
    assert.equal(got[0].type, 'ERROR');
    assert.equal(got[0].obj.code, 410);
    assert.equal(got[0].obj.reason, 'Expired');
  });

  test('label selectors apply per event: leaving the selection is DELETED', async () => {
    const events: string[] = [];
    const watch = new k8s.Watch(sim.kubeconfig);
    const rv = String(sim.store.currentRevision);
    const req = await watch.watch('/api/v1/namespaces/default/configmaps', { resourceVersion: rv, labelSelector: 'app=x' }, (type, obj) => events.push(`${type} ${obj.metadata.name}`), () => {});
    await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'sel', labels: { app: 'x' } } } });
    await core.patchNamespacedConfigMap({ namespace: 'default', name: 'sel', body: { metadata: { labels: { app: 'y' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await core.patchNamespacedConfigMap({ namespace: 'default', name: 'sel', body: { metadata: { labels: { app: 'x' } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await waitFor('three events', () => events.length >= 3, 5_000, 10);
    req.abort();
    assert.deepEqual(events, ['ADDED sel', 'DELETED sel', 'ADDED sel']);
  });

  test('makeInformer lists, watches, and relists after a 410', async () => {
    await core.createNamespace({ body: { metadata: { name: 'informed' } } });
    await core.createNamespacedSecret({ namespace: 'informed', body: { metadata: { name: 'before' } } });
    const informer = k8s.makeInformer(sim.kubeconfig, '/api/v1/namespaces/informed/secrets', () => core.listNamespacedSecret({ namespace: 'informed' }));
    const added: string[] = [];
    informer.on('add', (s) => added.push(s.metadata!.name!));
    const errors: unknown[] = [];
    informer.on('error', (err) => errors.push(err)); // a 410 is not an error: the informer relists by itself
    await informer.start();
    await waitFor('initial list', () => added.includes('before'), 5_000, 10);
    await core.createNamespacedSecret({ namespace: 'informed', body: { metadata: { name: 'live' } } });
    await waitFor('live add', () => added.includes('live'), 5_000, 10);

    // Drop the watch while history is compacted, and make a change nobody watched:
    // the informer rewatches from its old revision, gets 410, and must relist to see it.
    sim.faults.compact();
    await core.createNamespacedSecret({ namespace: 'informed', body: { metadata: { name: 'missed' } } });
    sim.faults.compact();
    sim.faults.dropWatches();
    await waitFor('relist after 410', () => informer.list().some((s) => s.metadata!.name === 'missed'), 5_000, 10);
    assert.deepEqual(errors, []);
    await informer.stop();
    assert.deepEqual(informer.list().map((s) => s.metadata!.name).sort(), ['before', 'live', 'missed']);
  });
});
