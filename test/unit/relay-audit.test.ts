import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Registry } from 'prom-client';
import request from 'supertest';
import { silentLogger } from '../../services/common/logger.ts';
import { toAuditEvent } from '../../services/kube-sim/audit.ts';
import type { RequestInfo } from '../../services/kube-sim/server.ts';
import { createAuditApp, keysFromAuditEvents, tokenFromFile } from '../../services/relay/audit.ts';
import { createRelayMetrics } from '../../services/relay/metrics.ts';
import { desiredCronJob } from '../../services/worker/reconcilers/crontab.ts';

function event(over: Record<string, unknown> = {}, ref: Record<string, unknown> = {}) {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: 'a1',
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/team-a/secrets/db',
    verb: 'update',
    user: { username: 'alice' },
    objectRef: { resource: 'secrets', namespace: 'team-a', name: 'db', apiVersion: 'v1', ...ref },
    responseStatus: { code: 200 },
    ...over,
  };
}

const list = (items: unknown[]) => ({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });

describe('keysFromAuditEvents', () => {
  test('completed writes on watched resources become keys', () => {
    const out = keysFromAuditEvents([
      event(),
      event({ verb: 'create' }, { resource: 'crontabs', apiGroup: 'stable.example.com', name: 'nightly' }),
      event({ verb: 'delete' }, { name: 'gone' }),
      event({ verb: 'patch' }, { name: 'patched' }),
    ]);
    assert.deepEqual(out.keys.map((k) => k.key), ['Secret/team-a/db', 'CronTab/team-a/nightly', 'Secret/team-a/gone', 'Secret/team-a/patched']);
    assert.equal(out.ignored, 0);
  });

  test('reads, other stages, failures, dry runs and other resources are ignored', () => {
    const out = keysFromAuditEvents([
      event({ verb: 'get' }),
      event({ verb: 'watch' }),
      event({ stage: 'RequestReceived' }),
      event({ responseStatus: { code: 409 } }),
      event({ requestURI: '/api/v1/namespaces/team-a/secrets?dryRun=All' }),
      event({}, { resource: 'configmaps' }),
      event({}, { resource: 'crontabs' }), // wrong group
      null,
      'junk',
    ]);
    assert.deepEqual(out.keys, []);
    assert.equal(out.ignored, 9);
  });

  test('a create by generateName takes the name from the response object', () => {
    const out = keysFromAuditEvents([event({ verb: 'create', responseObject: { metadata: { name: 'gen-x7k2p', namespace: 'team-a', resourceVersion: '55' } } }, { name: undefined })]);
    assert.deepEqual(out.keys, [{ key: 'Secret/team-a/gen-x7k2p', resourceVersion: '55' }]);
  });

  test('a CronJob maps to its CronTab: from the object when the policy sends it, else from what the watch knows', () => {
    const cj = { resource: 'cronjobs', apiGroup: 'batch', name: 'nightly-cj' };
    const withObject = keysFromAuditEvents([
      event({ responseObject: { metadata: { name: 'nightly-cj', namespace: 'team-a', labels: { 'app.kubernetes.io/managed-by': 'kreconcile' }, ownerReferences: [{ kind: 'CronTab', name: 'nightly', controller: true }] } } }, cj),
    ]);
    assert.deepEqual(withObject.keys.map((k) => k.key), ['CronTab/team-a/nightly']);
    const unmanaged = keysFromAuditEvents([event({ responseObject: { metadata: { name: 'x', namespace: 'team-a', labels: {} } } }, cj)]);
    assert.equal(unmanaged.keys.length, 0);
    const known = keysFromAuditEvents([event({}, cj)], (resource, id) => (resource === 'cronjobs' && id === 'team-a/nightly-cj' ? { resourceVersion: '9', key: 'CronTab/team-a/nightly' } : undefined));
    assert.deepEqual(known.keys.map((k) => k.key), ['CronTab/team-a/nightly']);
    const unknown = keysFromAuditEvents([event({}, cj)]);
    assert.equal(unknown.unmapped, 1);
  });

  test('names the API server would refuse are unmapped, not made into keys', () => {
    const huge = 'x'.repeat(1 << 20);
    const out = keysFromAuditEvents([event({}, { namespace: huge, name: huge }), event({}, { name: 'UPPER' }), event({}, { namespace: 'a.b' })]);
    assert.deepEqual(out.keys, []);
    assert.equal(out.unmapped, 3);
  });

  test("a CronJob write that leaves it as a worker wrote it is skipped, as the watch skips it; drift, status and delete are not", () => {
    const written = desiredCronJob({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'nightly', namespace: 'team-a', uid: 'u-1', generation: 1 }, spec: { cronSpec: '0 3 * * *', image: 'busybox' } });
    const cj = { resource: 'cronjobs', apiGroup: 'batch', name: written.metadata!.name };
    const drifted = structuredClone(written);
    drifted.spec!.schedule = '0 4 * * *';
    const out = keysFromAuditEvents([
      event({ verb: 'create', responseObject: written }, cj),
      event({ verb: 'update', responseObject: written }, cj),
      event({ verb: 'update', responseObject: drifted }, cj),
      event({ verb: 'update', responseObject: written }, { ...cj, subresource: 'status' }),
      event({ verb: 'delete', responseObject: written }, cj),
      event({ verb: 'patch', responseObject: { ...written, metadata: { ...written.metadata!, ownerReferences: 'not a list' } } }, cj),
    ]);
    assert.equal(out.ownWrites, 2);
    // Drift, status, delete, and the malformed one (the worker looks at it; nothing throws).
    assert.deepEqual(out.keys.map((k) => k.key), Array(4).fill('CronTab/team-a/nightly'));
  });
});

describe('POST /audit', () => {
  function app(extra: { token?: () => string | undefined; maxBodyBytes?: number } = {}) {
    const enqueued: string[] = [];
    const metrics = createRelayMetrics(new Registry());
    const a = createAuditApp({ enqueue: (k) => enqueued.push(k), maxBodyBytes: extra.maxBodyBytes ?? 64 * 1024, metrics, log: silentLogger, token: extra.token });
    return { a, enqueued, metrics };
  }

  test('a good batch is 200 and its keys are enqueued', async () => {
    const { a, enqueued } = app();
    const res = await request(a).post('/audit').send(list([event(), event({ verb: 'get' })]));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { enqueued: 1 });
    assert.deepEqual(enqueued, ['Secret/team-a/db']);
  });

  test('malformed batches are 400 and say what is wrong, without echoing the body', async () => {
    const { a, enqueued } = app();
    const bad = await request(a).post('/audit').set('content-type', 'application/json').send('{"kind":"EventList","items":[{"password":"hunter2"');
    assert.equal(bad.status, 400);
    assert.doesNotMatch(JSON.stringify(bad.body), /hunter2/);
    assert.equal((await request(a).post('/audit').send({ kind: 'PodList', apiVersion: 'v1', items: [] })).status, 400);
    assert.match((await request(a).post('/audit').send({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: 'x' })).body.error, /items must be an array/);
    assert.equal((await request(a).post('/audit').set('content-type', 'application/json').send('[1,2]')).status, 400);
    const deep = await request(a).post('/audit').set('content-type', 'application/json').send(`{"kind":${'['.repeat(10_000)}${']'.repeat(10_000)}}`);
    assert.deepEqual([deep.status, deep.body.error], [400, 'kind must be EventList, got object']);
    assert.deepEqual(enqueued, []);
  });

  test('oversized batches are 413', async () => {
    const { a } = app({ maxBodyBytes: 1024 });
    const res = await request(a).post('/audit').send(list(Array.from({ length: 50 }, () => event())));
    assert.equal(res.status, 413);
  });

  test('a configured token is required', async () => {
    const { a, enqueued } = app({ token: () => 's3cret-token' });
    assert.equal((await request(a).post('/audit').send(list([event()]))).status, 401);
    assert.equal((await request(a).post('/audit').set('authorization', 'Bearer wrong').send(list([event()]))).status, 401);
    assert.equal((await request(a).post('/audit').set('authorization', 'Bearer s3cret-token').send(list([event()]))).status, 200);
    assert.deepEqual(enqueued, ['Secret/team-a/db']);
  });

  test('other methods are 405, other paths 404', async () => {
    const { a } = app();
    assert.equal((await request(a).get('/audit')).status, 405);
    assert.equal((await request(a).post('/elsewhere').send({})).status, 404);
  });

  test('the token file is re-read when it changes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-audit-'));
    const file = path.join(dir, 'token');
    fs.writeFileSync(file, 'first\n');
    const token = tokenFromFile(file);
    assert.equal(token(), 'first');
    fs.writeFileSync(file, 'second-longer\n');
    assert.equal(token(), 'second-longer');
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("kube-sim's audit backend events", () => {
  const info = (over: Partial<RequestInfo> = {}): RequestInfo => ({
    auditID: 'id-1',
    verb: 'create',
    requestURI: '/api/v1/namespaces/team-a/secrets',
    method: 'POST',
    group: '',
    version: 'v1',
    resource: 'secrets',
    namespace: 'team-a',
    code: 201,
    user: { username: 'alice', groups: ['system:authenticated'] },
    sourceIPs: ['127.0.0.1'],
    requestReceivedTimestamp: '2025-01-02T03:04:05.123Z',
    stageTimestamp: '2025-01-02T03:04:05.456Z',
    responseObject: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'gen-abcde', namespace: 'team-a', uid: 'u1', resourceVersion: '77' }, data: { password: 'aHVudGVyMg==' } } as never,
    ...over,
  });

  test('a write is a Metadata-level ResponseComplete event whose objectRef names the created object, with no body', () => {
    const ev = toAuditEvent(info())!;
    assert.equal(ev.level, 'Metadata');
    assert.equal(ev.stage, 'ResponseComplete');
    assert.deepEqual(ev.objectRef, { resource: 'secrets', apiVersion: 'v1', namespace: 'team-a', name: 'gen-abcde', uid: 'u1', resourceVersion: '77' });
    assert.equal(ev.requestReceivedTimestamp, '2025-01-02T03:04:05.123000Z');
    assert.doesNotMatch(JSON.stringify(ev), /aHVudGVyMg|password/);
    // And the relay reads it back as the key.
    assert.deepEqual(keysFromAuditEvents([ev]).keys, [{ key: 'Secret/team-a/gen-abcde', resourceVersion: '77' }]);
  });

  test('reads and non-resource requests are not audited', () => {
    assert.equal(toAuditEvent(info({ verb: 'get' })), undefined);
    assert.equal(toAuditEvent(info({ verb: 'watch' })), undefined);
    assert.equal(toAuditEvent(info({ resource: undefined, verb: 'create' })), undefined);
  });
});
