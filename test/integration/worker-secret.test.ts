// The Secret password policy against kube-sim: audit annotates once and un-annotates
// when fixed, exemptions hold, enforce deletes only the Secret it judged, and the
// password never shows up in logs, Events, job results or metrics.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../services/common/logger.ts';
import { EVENTS, SECRETS } from '../../services/worker/kube.ts';
import type { Secret } from '../../services/worker/reconcilers/secret.ts';
import { startWorkerEnv, type WorkerEnv } from './worker-env.ts';

// Distinctive values so a leak anywhere is found by a plain substring search.
const WEAK = 'Qz7-wk9';
const STRONG = 'Vt4!rp0-long-enough-Kx';
const ANNOTATION = 'kreconcile.io/password-policy';

const logLines: string[] = [];
const sink = new Writable({
  write(chunk, _enc, cb) {
    logLines.push(String(chunk));
    cb();
  },
});

function secret(ns: string, name: string, password: string, labels: Record<string, string> = {}) {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns, labels }, type: 'Opaque', stringData: { password } };
}

async function namespace(prefix: string, labels: Record<string, string> = {}): Promise<string> {
  const ns = `${prefix}-${randomUUID().slice(0, 8)}`;
  await env.kube.create({ group: '', version: 'v1', plural: 'namespaces', namespaced: false }, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } });
  return ns;
}

async function events(ns: string): Promise<{ reason: string; type: string; note: string }[]> {
  return (await env.kube.list<any>(EVENTS, ns)).items;
}

let env: WorkerEnv;
const results: unknown[] = [];

describe('Secret policy, audit mode', () => {
  let worker: Awaited<ReturnType<WorkerEnv['startWorker']>>;
  before(async () => {
    env = await startWorkerEnv();
    worker = await env.startWorker({ log: createLogger({ level: 'debug', destination: sink }), secretPolicy: { mode: 'audit' } });
  });
  after(() => env.stop());

  const reconcile = async (key: string) => {
    const r = await env.reconcile(key);
    results.push(r);
    return r as { result: string; changes: string[] };
  };

  test('a weak Secret is annotated with one Warning Event; a second pass writes nothing', async () => {
    const ns = await namespace('audit');
    await env.kube.create(SECRETS, ns, secret(ns, 'db', WEAK));
    const r = await reconcile(`Secret/${ns}/db`);
    assert.equal(r.result, 'changed');
    const s = await env.kube.get<Secret>(SECRETS, ns, 'db');
    assert.equal(s!.metadata!.annotations![ANNOTATION], 'weak');
    const warnings = (await events(ns)).filter((e) => e.reason === 'WeakPassword');
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]!.type, 'Warning');
    assert.match(warnings[0]!.note, /key "password".*min-length/);

    const writes = env.workerWrites();
    assert.equal((await reconcile(`Secret/${ns}/db`)).result, 'unchanged');
    assert.equal(env.workerWrites(), writes, 'an already-annotated weak Secret costs no write');
    assert.equal((await events(ns)).filter((e) => e.reason === 'WeakPassword').length, 1, 'no repeated Event');

    const metrics = await worker.registry.metrics();
    assert.match(metrics, /kreconcile_worker_weak_passwords_total\{mode="audit",rule="min-length",action="annotated"\} 1/);
  });

  test('a fixed password gets the annotation removed', async () => {
    const ns = await namespace('fixed');
    await env.kube.create(SECRETS, ns, secret(ns, 'db', WEAK));
    await reconcile(`Secret/${ns}/db`);
    await env.kube.mergePatch(SECRETS, ns, 'db', { stringData: { password: STRONG } });
    const r = await reconcile(`Secret/${ns}/db`);
    assert.deepEqual(r.changes, ['annotation removed (fixed)']);
    const s = await env.kube.get<Secret>(SECRETS, ns, 'db');
    assert.equal(s!.metadata!.annotations?.[ANNOTATION], undefined);
  });

  test('a strong Secret costs one read and no write', async () => {
    const ns = await namespace('strong');
    await env.kube.create(SECRETS, ns, secret(ns, 'db', STRONG));
    const writes = env.workerWrites();
    const requests = await env.workerRequests(async () => assert.equal((await reconcile(`Secret/${ns}/db`)).result, 'unchanged'));
    assert.deepEqual(requests, ['get secrets']);
    assert.equal(env.workerWrites(), writes);
  });

  test('exempt by label on the Secret, or on its Namespace', async () => {
    const ns = await namespace('exempt');
    await env.kube.create(SECRETS, ns, secret(ns, 'own', WEAK, { [ANNOTATION]: 'exempt' }));
    assert.equal((await reconcile(`Secret/${ns}/own`)).result, 'unchanged');
    const exemptNs = await namespace('exns', { [ANNOTATION]: 'exempt' });
    await env.kube.create(SECRETS, exemptNs, secret(exemptNs, 'db', WEAK));
    assert.equal((await reconcile(`Secret/${exemptNs}/db`)).result, 'unchanged');
    assert.equal((await env.kube.get<Secret>(SECRETS, exemptNs, 'db'))!.metadata!.annotations?.[ANNOTATION], undefined);
  });

  test('a Secret that is gone is done', async () => {
    const ns = await namespace('gone');
    assert.equal((await reconcile(`Secret/${ns}/nothing`)).result, 'unchanged');
  });

  test('the password appears in no log line, Event, or job result', async () => {
    const all = [...logLines, JSON.stringify(results), await worker.registry.metrics()].join('\n');
    assert.ok(logLines.length > 0, 'the worker logged something');
    assert.ok(!all.includes(WEAK) && !all.includes(STRONG), 'no password in logs, results or metrics');
    assert.ok(!all.includes(Buffer.from(WEAK).toString('base64')), 'nor its base64');
    for (const ns of (await env.kube.list<any>({ group: '', version: 'v1', plural: 'namespaces', namespaced: false }, undefined)).items.map((n) => n.metadata.name)) {
      const text = JSON.stringify(await events(ns));
      assert.ok(!text.includes(WEAK) && !text.includes(STRONG), `no password in Events of ${ns}`);
    }
  });
});

describe('Secret policy, enforce mode', () => {
  before(async () => {
    env = await startWorkerEnv();
    await env.startWorker({ secretPolicy: { mode: 'enforce' } });
  });
  after(() => env.stop());

  test('a weak Secret is deleted, with a Warning Event in its namespace', async () => {
    const ns = await namespace('enforce');
    await env.kube.create(SECRETS, ns, secret(ns, 'db', WEAK));
    const r = (await env.reconcile(`Secret/${ns}/db`)) as { changes: string[] };
    assert.match(r.changes[0]!, /^deleted weak/);
    assert.equal(await env.kube.get(SECRETS, ns, 'db'), undefined);
    const e = (await events(ns)).find((x) => x.reason === 'WeakPasswordDeleted');
    assert.ok(e);
    assert.ok(!e.note.includes(WEAK));
  });

  test('a strong or exempt Secret is kept', async () => {
    const ns = await namespace('keep');
    await env.kube.create(SECRETS, ns, secret(ns, 'strong', STRONG));
    await env.kube.create(SECRETS, ns, secret(ns, 'exempt', WEAK, { [ANNOTATION]: 'exempt' }));
    await env.reconcile(`Secret/${ns}/strong`);
    await env.reconcile(`Secret/${ns}/exempt`);
    assert.ok(await env.kube.get(SECRETS, ns, 'strong'));
    assert.ok(await env.kube.get(SECRETS, ns, 'exempt'));
  });

  test('the delete preconditions protect a Secret changed after it was judged', async () => {
    const ns = await namespace('race');
    const judged = await env.kube.create<Secret>(SECRETS, ns, secret(ns, 'db', WEAK));
    // Fixed between the worker's read and its delete: the delete carries the judged uid and resourceVersion.
    await env.kube.mergePatch(SECRETS, ns, 'db', { stringData: { password: STRONG } });
    await assert.rejects(env.kube.delete(SECRETS, ns, 'db', { uid: judged.metadata!.uid, resourceVersion: judged.metadata!.resourceVersion }), (err: { code?: number }) => err.code === 409);
    // And the worker, reading again, keeps it.
    await env.reconcile(`Secret/${ns}/db`);
    assert.ok(await env.kube.get(SECRETS, ns, 'db'));
  });
});
