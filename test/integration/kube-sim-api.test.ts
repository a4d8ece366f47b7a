// kube-sim over plain HTTP: bad input, discovery, metadata rules, status subresource,
// finalizers, garbage collection, CRD lifecycle, Events, Table output, watch details.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { eventually } from '../support/wait.ts';

let sim: KubeSim;
const CRD = YAML.parse(fs.readFileSync(new URL('../../infra/k8s/crontab-crd.yaml', import.meta.url), 'utf8'));
const CT = '/apis/stable.example.com/v1/namespaces/default/crontabs';

interface Res {
  status: number;
  body: any;
  headers: Headers;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
  const res = await fetch(`${sim.url}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

function cronTab(name: string, spec: Record<string, unknown> = { cronSpec: '* * * * *', image: 'x' }, extra: Record<string, unknown> = {}) {
  return { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, ...extra }, spec };
}

before(async () => {
  sim = await startKubeSim({ bookmarkIntervalMs: 100 });
  const r = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', CRD);
  assert.equal(r.status, 201, JSON.stringify(r.body));
});
after(() => sim.stop());

describe('bad input gets a Status with the right code, and the server keeps serving', () => {
  test('malformed JSON and YAML are 400', async () => {
    const json = await call('POST', '/api/v1/namespaces/default/secrets', '{"metadata": ');
    assert.equal(json.status, 400);
    assert.equal(json.body.kind, 'Status');
    assert.equal(json.body.reason, 'BadRequest');
    assert.match(json.body.message, /json parse error/);
    const yaml = await call('POST', '/api/v1/namespaces/default/secrets', 'metadata: [unclosed', { 'content-type': 'application/yaml' });
    assert.equal(yaml.status, 400);
    assert.match(yaml.body.message, /^error converting YAML to JSON/);
    const fine = await call('POST', '/api/v1/namespaces/default/secrets', 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: from-yaml\n', { 'content-type': 'application/yaml' });
    assert.equal(fine.status, 201);
  });

  test('unknown resources and paths are 404 Status', async () => {
    for (const p of ['/api/v1/namespaces/default/pods', '/apis/nope.example.com/v1/things', '/nothing/here', '/api/v1/namespaces/default/secrets/a/b/c']) {
      const r = await call('GET', p);
      assert.equal(r.status, 404, p);
      assert.equal(r.body.message, 'the server could not find the requested resource');
    }
  });

  test('wrong apiVersion or kind is 400; names that are not DNS-1123 are 422', async () => {
    const v = await call('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v2', kind: 'Secret', metadata: { name: 'a' } });
    assert.equal(v.status, 400);
    assert.equal(v.body.message, 'the API version in the data (v2) does not match the expected API version (v1)');
    const k = await call('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
    assert.equal(k.status, 400);
    const missingKind = await call('POST', CT, { apiVersion: 'stable.example.com/v1', metadata: { name: 'a' }, spec: {} });
    assert.equal(missingKind.status, 400);
    assert.match(missingKind.body.message, /Object 'Kind' is missing/);
    const name = await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'has.dot' } });
    assert.equal(name.status, 422);
    assert.match(name.body.message, /^Namespace "has.dot" is invalid: metadata.name: Invalid value: "has.dot": a lowercase RFC 1123 label/);
  });

  test('bodies over 3 MiB are 413', async () => {
    const big = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big' }, data: { x: 'a'.repeat(3 * 1024 * 1024 + 10) } };
    const r = await call('POST', '/api/v1/namespaces/default/configmaps', big);
    assert.equal(r.status, 413);
    assert.equal(r.body.message, 'Request entity too large: limit is 3145728');
    assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps')).status, 200);
  });

  test('unsupported media types are 415; strategic merge is refused for custom resources', async () => {
    const r = await call('POST', '/api/v1/namespaces/default/secrets', 'x', { 'content-type': 'text/plain' });
    assert.equal(r.status, 415);
    assert.equal(r.body.reason, 'UnsupportedMediaType');
    await call('POST', CT, cronTab('smp'));
    const smp = await call('PATCH', `${CT}/smp`, { spec: { image: 'y' } }, { 'content-type': 'application/strategic-merge-patch+json' });
    assert.equal(smp.status, 415);
    assert.equal(smp.body.message, 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');
  });

  test('unsupported verbs are 405', async () => {
    const r = await call('POST', '/api/v1/namespaces/default/secrets/x');
    assert.equal(r.status, 405);
    assert.equal(r.body.reason, 'MethodNotAllowed');
    const across = await call('POST', '/api/v1/secrets', { metadata: { name: 'x', namespace: 'default' } });
    assert.equal(across.status, 405);
  });
});

describe('discovery', () => {
  test('/api, /apis, /api/v1 and a CRD group-version in the legacy shapes; aggregated Accept gets plain JSON', async () => {
    const aggregated = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json';
    const api = await call('GET', '/api', undefined, { accept: aggregated });
    assert.equal(api.headers.get('content-type'), 'application/json');
    assert.deepEqual(api.body.versions, ['v1']);
    const apis = await call('GET', '/apis', undefined, { accept: aggregated });
    assert.equal(apis.body.kind, 'APIGroupList');
    const names = apis.body.groups.map((g: { name: string }) => g.name);
    for (const g of ['batch', 'coordination.k8s.io', 'apiextensions.k8s.io', 'admissionregistration.k8s.io', 'events.k8s.io', 'stable.example.com']) assert.ok(names.includes(g), g);
    const v1 = await call('GET', '/api/v1');
    const secrets = v1.body.resources.find((r: { name: string }) => r.name === 'secrets');
    assert.deepEqual(secrets.verbs, ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']);
    const ct = await call('GET', '/apis/stable.example.com/v1');
    assert.deepEqual(
      ct.body.resources.map((r: { name: string }) => r.name),
      ['crontabs', 'crontabs/status'],
    );
    assert.deepEqual(ct.body.resources[0].shortNames, ['ct']);
    const version = await call('GET', '/version');
    assert.equal(version.body.gitVersion, 'v1.32.4');
    assert.equal((await call('GET', '/openapi/v2')).status, 404);
    const openapi = await call('GET', '/openapi/v3');
    assert.ok(openapi.body.paths['apis/stable.example.com/v1'].serverRelativeURL.startsWith('/openapi/v3/apis/stable.example.com/v1?hash='));
  });
});

describe('object semantics', () => {
  test('status subresource: main writes keep status, /status writes keep the rest; generation moves only on spec', async () => {
    const created = await call('POST', CT, { ...cronTab('gen'), status: { observedGeneration: 99 } });
    assert.equal(created.body.status, undefined, 'status dropped on create');
    assert.equal(created.body.metadata.generation, 1);
    const st = await call('PUT', `${CT}/gen/status`, { ...created.body, spec: { cronSpec: 'changed', image: 'x' }, status: { observedGeneration: 1 } });
    assert.equal(st.status, 200);
    assert.equal(st.body.spec.cronSpec, '* * * * *');
    assert.equal(st.body.status.observedGeneration, 1);
    assert.equal(st.body.metadata.generation, 1);
    const labelled = await call('PATCH', `${CT}/gen`, { metadata: { labels: { a: 'b' } }, status: { observedGeneration: 5 } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(labelled.body.metadata.generation, 1);
    assert.equal(labelled.body.status.observedGeneration, 1);
    const spec = await call('PATCH', `${CT}/gen`, { spec: { image: 'y' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(spec.body.metadata.generation, 2);
  });

  test('PUT without resourceVersion: refused for custom resources, unconditional for built-ins; PUT of a missing object is 404', async () => {
    const cr = await call('PUT', `${CT}/gen`, cronTab('gen'));
    assert.equal(cr.status, 422);
    assert.match(cr.body.message, /metadata.resourceVersion: Invalid value: 0x0: must be specified for an update/);
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } };
    assert.equal((await call('POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', lease)).status, 201);
    const put = await call('PUT', '/apis/coordination.k8s.io/v1/namespaces/default/leases/l', { ...lease, spec: { ...lease.spec, holderIdentity: 'b' } });
    assert.equal(put.status, 200);
    assert.equal(put.body.spec.holderIdentity, 'b');
    assert.equal((await call('PUT', '/apis/coordination.k8s.io/v1/namespaces/default/leases/none', { ...lease, metadata: { name: 'none' } })).status, 404);
  });

  test('MicroTime fields take exactly six fractional digits, as Go decodes them: else 400 before validation (observed with JavaScript clients)', async () => {
    const leases = '/apis/coordination.k8s.io/v1/namespaces/default/leases';
    const lease = (name: string, renewTime: unknown) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime } });
    const ok = await call('POST', leases, lease('micro-ok', '2026-08-11T19:37:19.103000Z'));
    assert.equal(ok.status, 201);
    assert.equal(ok.body.spec.renewTime, '2026-08-11T19:37:19.103000Z');
    for (const [value, rest, element] of [
      ['2026-08-11T19:37:19.103Z', '.103Z', '.000000'],
      ['2026-08-11T19:37:19Z', 'Z', '.000000'],
      ['2026-08-11T19:37:19.103000', '', 'Z07:00'],
      ['yesterday', 'yesterday', '2006'],
    ]) {
      const res = await call('POST', leases, lease('micro-bad', value));
      assert.equal(res.status, 400, value);
      assert.equal(res.body.reason, 'BadRequest');
      assert.equal(res.body.message, `Lease in version "v1" cannot be handled as a Lease: parsing time "${value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${rest}" as "${element}"`);
    }
    for (const [value, what] of [
      ['2024-13-01T00:00:00.000000Z', 'month'],
      ['2024-02-30T00:00:00.000000Z', 'day'],
      ['2024-02-01T24:00:00.000000Z', 'hour'],
      ['2024-02-01T00:00:00.000000+99:00', 'time zone offset hour'],
    ]) {
      const res = await call('POST', leases, lease('micro-range', value));
      assert.equal(res.status, 400, value);
      assert.equal(res.body.message, `Lease in version "v1" cannot be handled as a Lease: parsing time "${value}": ${what} out of range`);
    }
    assert.equal((await call('POST', leases, lease('micro-leap', '2024-02-29T23:59:59.999999+02:00'))).status, 201);
    // A merge patch is decoded the same way once applied.
    const patched = await call('PATCH', `${leases}/micro-ok`, { spec: { renewTime: '2026-08-11T19:37:20.5Z' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(patched.status, 400);
    const event = await call('POST', '/apis/events.k8s.io/v1/namespaces/default/events', {
      apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: 'micro' }, eventTime: new Date().toISOString(),
      regarding: { kind: 'Secret', name: 's', namespace: 'default' }, reason: 'R', action: 'A', type: 'Normal', reportingController: 'c', reportingInstance: 'i',
    });
    assert.equal(event.status, 400);
    assert.match(event.body.message, /^Event in version "v1" cannot be handled as a Event: parsing time ".*Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "\.\d{3}Z" as "\.000000"$/);
  });

  test('a no-op write keeps the resourceVersion and emits no watch event', async () => {
    const s = await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'noop' }, data: { a: '1' } });
    const rv = sim.store.currentRevision;
    const again = await call('PATCH', '/api/v1/namespaces/default/configmaps/noop', { data: { a: '1' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(again.body.metadata.resourceVersion, s.body.metadata.resourceVersion);
    assert.equal(sim.store.currentRevision, rv);
  });

  test('Secret: stringData merges into data, type is immutable, immutable:true freezes data', async () => {
    const s = await call('POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'frozen' }, data: { a: Buffer.from('1').toString('base64') }, stringData: { a: '2', b: '3' }, immutable: true });
    assert.deepEqual(s.body.data, { a: Buffer.from('2').toString('base64'), b: Buffer.from('3').toString('base64') });
    assert.equal(s.body.stringData, undefined);
    const change = await call('PATCH', '/api/v1/namespaces/default/secrets/frozen', { stringData: { a: 'x' } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(change.status, 422);
    assert.match(change.body.message, /data: Forbidden: field is immutable when `immutable` is set/);
    const bad64 = await call('POST', '/api/v1/namespaces/default/secrets', { metadata: { name: 'b64' }, data: { a: 'not base64!' } });
    assert.equal(bad64.status, 400);
    assert.match(bad64.body.message, /illegal base64 data at input byte/);
  });

  test('finalizers: delete only marks; no new finalizers while deleting; removing the last deletes', async () => {
    await call('POST', CT, cronTab('fin', undefined, { finalizers: ['example.com/keep'] }));
    const del = await call('DELETE', `${CT}/fin`);
    assert.equal(del.status, 200);
    assert.ok(del.body.metadata.deletionTimestamp);
    assert.equal(del.body.metadata.generation, 2);
    const add = await call('PATCH', `${CT}/fin`, { metadata: { finalizers: ['example.com/keep', 'example.com/more'] } }, { 'content-type': 'application/merge-patch+json' });
    assert.equal(add.status, 422);
    assert.match(add.body.message, /no new finalizers can be added if the object is being deleted/);
    const drop = await call('PATCH', `${CT}/fin`, [{ op: 'remove', path: '/metadata/finalizers' }], { 'content-type': 'application/json-patch+json' });
    assert.equal(drop.status, 200);
    assert.equal((await call('GET', `${CT}/fin`)).status, 404);
  });

  test('fieldValidation: Warn (default) answers with Warning headers, Strict refuses, Ignore is silent', async () => {
    const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fv' }, data: { a: 'b' }, bogus: 1 };
    const warn = await call('POST', '/api/v1/namespaces/default/configmaps', body);
    assert.equal(warn.status, 201);
    assert.equal(warn.headers.get('warning'), '299 - "unknown field \\"bogus\\""');
    const strict = await call('POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Strict', { ...body, metadata: { name: 'fv2' } });
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'strict decoding error: unknown field "bogus"');
    const ignore = await call('POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Ignore', { ...body, metadata: { name: 'fv3' } });
    assert.equal(ignore.status, 201);
    assert.equal(ignore.headers.get('warning'), null);
    assert.equal(ignore.body.bogus, undefined);
  });

  test('a fieldManager over 128 characters is 422, naming the options of the verb', async () => {
    const long = 'm'.repeat(129);
    const create = await call('POST', `/api/v1/namespaces/default/configmaps?fieldManager=${long}`, { metadata: { name: 'fm' } });
    assert.equal(create.status, 422);
    assert.match(create.body.message, /^CreateOptions\.meta\.k8s\.io "" is invalid: fieldManager: Too long/);
    const patch = await call('PATCH', `/api/v1/namespaces/default/configmaps/fm?fieldManager=${long}`, { data: { a: 'b' } }, { 'content-type': 'application/merge-patch+json' });
    assert.match(patch.body.message, /^PatchOptions\.meta\.k8s\.io "" is invalid: fieldManager: Too long/);
  });

  test('a key written twice in a create or update body is a duplicate field: warned, refused under Strict, before unknown fields', async () => {
    const secrets = '/api/v1/namespaces/default/secrets';
    const warn = await call('POST', secrets, '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup"},"type":"Opaque","type":"Opaque"}');
    assert.equal(warn.status, 201);
    assert.equal(warn.headers.get('warning'), '299 - "duplicate field \\"type\\""');
    const strict = await call('POST', `${secrets}?fieldValidation=Strict`, '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup2"},"type":"Opaque","type":"Opaque","bogus":1}');
    assert.equal(strict.status, 400);
    assert.equal(strict.body.message, 'strict decoding error: duplicate field "type", unknown field "bogus"');
    const cr = await call('POST', `${CT}?fieldValidation=Strict`, '{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"dup"},"spec":{"cronSpec":"* * * * *","image":"a","image":"b"}}');
    assert.equal(cr.status, 400);
    assert.equal(cr.body.message, 'strict decoding error: duplicate field "spec.image"');
    const put = await call('PUT', `${secrets}/dup`, `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup","resourceVersion":"${warn.body.metadata.resourceVersion}"},"data":{},"data":{}}`);
    assert.equal(put.status, 200);
    assert.equal(put.headers.get('warning'), '299 - "duplicate field \\"data\\""');
    const ignore = await call('POST', `${secrets}?fieldValidation=Ignore`, '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dup3"},"type":"Opaque","type":"Opaque"}');
    assert.deepEqual([ignore.status, ignore.headers.get('warning')], [201, null]);
  });

  test('dryRun=All on DELETE removes nothing', async () => {
    await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'keep-me' } });
    const r = await call('DELETE', '/api/v1/namespaces/default/configmaps/keep-me?dryRun=All');
    assert.equal(r.status, 200);
    assert.equal((await call('GET', '/api/v1/namespaces/default/configmaps/keep-me')).status, 200);
  });

  test('server-side apply creates with 201, requires a fieldManager', async () => {
    const body = JSON.stringify(cronTab('applied'));
    const none = await call('PATCH', `${CT}/applied`, body, { 'content-type': 'application/apply-patch+yaml' });
    assert.equal(none.status, 400);
    const created = await call('PATCH', `${CT}/applied?fieldManager=me`, body, { 'content-type': 'application/apply-patch+yaml' });
    assert.equal(created.status, 201);
    assert.equal(created.body.metadata.managedFields[0].manager, 'me');
    assert.equal(created.body.metadata.managedFields[0].operation, 'Apply');
  });
});

describe('garbage collection', () => {
  function cronJob(name: string, owner: any, block = true) {
    return {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {
        name,
        ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: block }],
      },
      spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'c', image: 'x' }] } } } } },
    };
  }
  const CJ = '/apis/batch/v1/namespaces/default/cronjobs';

  test('Background: deleting the owner deletes its dependents', async () => {
    const owner = (await call('POST', CT, cronTab('bg-owner'))).body;
    assert.equal((await call('POST', CJ, cronJob('bg-dep', owner))).status, 201);
    await call('DELETE', `${CT}/bg-owner`);
    await eventually('dependent deleted', async () => (await call('GET', `${CJ}/bg-dep`)).status === 404, 10_000, 10);
  });

  test('Foreground: the owner stays, marked, until blocking dependents are gone', async () => {
    const owner = (await call('POST', CT, cronTab('fg-owner'))).body;
    await call('POST', CJ, { ...cronJob('fg-dep', owner), metadata: { ...cronJob('fg-dep', owner).metadata, finalizers: ['example.com/hold'] } });
    const del = await call('DELETE', `${CT}/fg-owner`, { propagationPolicy: 'Foreground' });
    assert.ok(del.body.metadata.finalizers.includes('foregroundDeletion'));
    await eventually('dependent marked for deletion', async () => (await call('GET', `${CJ}/fg-dep`)).body.metadata?.deletionTimestamp, 10_000, 10);
    await sim.gc.idle();
    assert.equal((await call('GET', `${CT}/fg-owner`)).status, 200, 'owner waits for the dependent');
    await call('PATCH', `${CJ}/fg-dep`, { metadata: { finalizers: null } }, { 'content-type': 'application/merge-patch+json' });
    await eventually('owner deleted after its dependent', async () => (await call('GET', `${CT}/fg-owner`)).status === 404, 10_000, 10);
  });

  test('Orphan: dependents lose the owner reference and stay', async () => {
    const owner = (await call('POST', CT, cronTab('or-owner'))).body;
    await call('POST', CJ, cronJob('or-dep', owner));
    await call('DELETE', `${CT}/or-owner`, { propagationPolicy: 'Orphan' });
    await eventually('owner deleted', async () => (await call('GET', `${CT}/or-owner`)).status === 404, 10_000, 10);
    const dep = await call('GET', `${CJ}/or-dep`);
    assert.equal(dep.status, 200);
    assert.equal(dep.body.metadata.ownerReferences, undefined);
  });

  test('a dependent whose owner never existed is collected', async () => {
    await call('POST', CJ, cronJob('orphaned-at-birth', { metadata: { name: 'ghost', uid: '00000000-0000-0000-0000-000000000000' } }));
    await eventually('collected', async () => (await call('GET', `${CJ}/orphaned-at-birth`)).status === 404, 10_000, 10);
  });
});

/** The CronTab CRD served again as `<singular>s.demo.example.com`, kind `kind`. */
function demoCrd(singular: string, kind: string) {
  const crd = structuredClone(CRD);
  crd.metadata.name = `${singular}s.demo.example.com`;
  crd.spec.group = 'demo.example.com';
  crd.spec.names = { plural: `${singular}s`, singular, kind, listKind: `${kind}List` };
  return crd;
}

describe('CEL validation rules (x-kubernetes-validations)', () => {
  const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const SCALERS = '/apis/demo.example.com/v1/namespaces/default/scalers';
  function scalerCrd(rules: unknown[], minRule: unknown[] = []) {
    const crd = demoCrd('scaler', 'Scaler');
    crd.spec.versions[0].schema.openAPIV3Schema.properties.spec = {
      type: 'object',
      'x-kubernetes-validations': rules,
      properties: { name: { type: 'string' }, minReplicas: { type: 'integer', 'x-kubernetes-validations': minRule }, maxReplicas: { type: 'integer' } },
    };
    return crd;
  }
  const scaler = (name: string, spec: Record<string, unknown>, rv?: string) => ({ apiVersion: 'demo.example.com/v1', kind: 'Scaler', metadata: { name, ...(rv ? { resourceVersion: rv } : {}) }, spec });

  test('a false rule is a 422 naming the field, the schema type and the message; transition rules run on updates only', async () => {
    const crd = scalerCrd(
      [
        { rule: 'self.minReplicas <= self.maxReplicas', message: 'minReplicas must not exceed maxReplicas' },
        { rule: 'self.name.startsWith("ok")' },
        { rule: 'self.maxReplicas == oldSelf.maxReplicas', message: 'maxReplicas is immutable' },
        { rule: 'self.minReplicas > 0', reason: 'FieldValueForbidden', fieldPath: '.minReplicas', messageExpression: '"must be positive, not " + string(self.minReplicas)' },
      ],
      [{ rule: 'self < 100' }],
    );
    assert.equal((await call('POST', CRDS, crd)).status, 201);
    const ok = await call('POST', SCALERS, scaler('good', { name: 'ok-1', minReplicas: 1, maxReplicas: 3 }));
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'ok', minReplicas: 5, maxReplicas: 3 }, 'spec: Invalid value: "object": minReplicas must not exceed maxReplicas'],
      [{ name: 'no', minReplicas: 1, maxReplicas: 3 }, 'spec: Invalid value: "object": failed rule: self.name.startsWith("ok")'],
      [{ name: 'ok', minReplicas: 0, maxReplicas: 3 }, 'spec.minReplicas: Forbidden: must be positive, not 0'],
      [{ name: 'ok', minReplicas: 100, maxReplicas: 300 }, 'spec.minReplicas: Invalid value: "integer": failed rule: self < 100'],
    ];
    for (const [spec, message] of cases) {
      const res = await call('POST', SCALERS, scaler('bad', spec));
      assert.equal(res.status, 422, JSON.stringify(spec));
      assert.equal(res.body.message, `Scaler.demo.example.com "bad" is invalid: ${message}`);
    }
    const moved = await call('PUT', `${SCALERS}/good`, scaler('good', { name: 'ok-1', minReplicas: 1, maxReplicas: 4 }, ok.body.metadata.resourceVersion));
    assert.equal(moved.status, 422);
    assert.equal(moved.body.message, 'Scaler.demo.example.com "good" is invalid: spec: Invalid value: "object": maxReplicas is immutable');
    const kept = await call('PUT', `${SCALERS}/good`, scaler('good', { name: 'ok-2', minReplicas: 2, maxReplicas: 3 }, ok.body.metadata.resourceVersion));
    assert.equal(kept.status, 200);
    const missing = await call('POST', SCALERS, scaler('nokey', { minReplicas: 1, maxReplicas: 3 }));
    assert.equal(missing.status, 422);
    assert.match(missing.body.message, /spec: Invalid value: "object": .*evaluating rule: self\.name\.startsWith\("ok"\)/);
    await call('DELETE', `${CRDS}/scalers.demo.example.com`);
    await eventually('CRD removed', async () => (await call('GET', `${CRDS}/scalers.demo.example.com`)).status === 404, 10_000, 10);
  });

  test('a rule that does not compile, or a message that is not a string, refuses the CRD', async () => {
    const typed = await call('POST', CRDS, scalerCrd([{ rule: 'self.minReplicas > 0', message: 5, fieldPath: ['x'] }]));
    assert.equal(typed.status, 422);
    assert.match(typed.body.message, /x-kubernetes-validations\[0\]\.message: Invalid value: 5: must be a string/);
    assert.match(typed.body.message, /x-kubernetes-validations\[0\]\.fieldPath: Invalid value: .*must be a string/);
    const res = await call('POST', CRDS, scalerCrd([{ rule: 'self.minReplicas <=' }]));
    assert.equal(res.status, 422);
    assert.match(res.body.message, /spec\.versions\[0\]\.schema\.openAPIV3Schema\.properties\[spec\]\.x-kubernetes-validations\[0\]\.rule: Invalid value: "self\.minReplicas <=": compilation failed: /);
  });
});

describe('CRD lifecycle', () => {
  test('a new CRD is served once Established; deleting it removes its objects, then stops serving', async () => {
    const crd = demoCrd('widget', 'Widget');
    crd.spec.scope = 'Cluster';
    const created = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    assert.equal(created.status, 201);
    const established = created.body.status.conditions.find((c: { type: string }) => c.type === 'Established');
    assert.equal(established.status, 'True');
    const w = await call('POST', '/apis/demo.example.com/v1/widgets', { apiVersion: 'demo.example.com/v1', kind: 'Widget', metadata: { name: 'w1' }, spec: { cronSpec: 'x', image: 'y' } });
    assert.equal(w.status, 201);
    assert.equal(w.body.metadata.namespace, undefined);
    await call('DELETE', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.demo.example.com');
    await eventually('CRD removed', async () => (await call('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.demo.example.com')).status === 404, 10_000, 10);
    assert.equal(sim.store.count('widgets.demo.example.com'), 0);
    assert.equal((await call('GET', '/apis/demo.example.com/v1/widgets')).status, 404);
  });

  test('a CRD asking for a kind another CRD of its group holds is not established until that one goes (the naming controller)', async () => {
    const CRDS = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
    const condition = (body: { status: { conditions: Array<{ type: string }> } }, type: string) => body.status.conditions.find((c) => c.type === type) as Record<string, string>;
    assert.equal((await call('POST', CRDS, demoCrd('gizmo', 'Gizmo'))).status, 201);
    const twin = demoCrd('gadget', 'Gizmo');
    twin.spec.names.listKind = 'GadgetList';
    const created = await call('POST', CRDS, twin);
    assert.equal(created.status, 201);
    assert.deepEqual(
      [condition(created.body, 'NamesAccepted').status, condition(created.body, 'NamesAccepted').reason, condition(created.body, 'NamesAccepted').message],
      ['False', 'KindConflict', '"Gizmo" is already in use'],
    );
    assert.deepEqual([condition(created.body, 'Established').status, condition(created.body, 'Established').reason], ['False', 'NotAccepted']);
    assert.equal(created.body.status.acceptedNames.kind, undefined);
    assert.equal(created.body.status.acceptedNames.plural, 'gadgets');
    assert.equal((await call('GET', '/apis/demo.example.com/v1/namespaces/default/gadgets')).status, 404);
    const discovery = await call('GET', '/apis/demo.example.com/v1');
    assert.deepEqual(discovery.body.resources.map((r: { name: string }) => r.name).filter((n: string) => !n.includes('/')), ['gizmos']);

    // Categories are never in conflict: an update's are accepted as asked.
    const gizmo = (await call('GET', `${CRDS}/gizmos.demo.example.com`)).body;
    gizmo.spec.names.categories = ['mine'];
    const recategorised = await call('PUT', `${CRDS}/gizmos.demo.example.com`, gizmo);
    assert.deepEqual(recategorised.body.status.acceptedNames.categories, ['mine']);

    await call('DELETE', `${CRDS}/gizmos.demo.example.com`);
    await eventually('the twin established once the holder is gone', async () => {
      const got = await call('GET', `${CRDS}/gadgets.demo.example.com`);
      return condition(got.body, 'Established')?.status === 'True' ? got.body : undefined;
    }, 10_000, 10);
    assert.equal((await call('GET', '/apis/demo.example.com/v1/namespaces/default/gadgets')).status, 200);
    await call('DELETE', `${CRDS}/gadgets.demo.example.com`);
  });
});

describe('CRD schema changes', () => {
  test('a default added to the schema shows on objects stored before it', async () => {
    const crd = demoCrd('gadget', 'Gadget');
    const created = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    const path = '/apis/demo.example.com/v1/namespaces/default/gadgets';
    await call('POST', path, { apiVersion: 'demo.example.com/v1', kind: 'Gadget', metadata: { name: 'old' }, spec: { cronSpec: 'x', image: 'y' } });
    assert.equal((await call('GET', `${path}/old`)).body.spec.timeZone, undefined);
    const updated = structuredClone(created.body);
    updated.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.timeZone.default = 'UTC';
    assert.equal((await call('PUT', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd.metadata.name}`, updated)).status, 200);
    assert.equal((await call('GET', `${path}/old`)).body.spec.timeZone, 'UTC');
    const listed = await call('GET', path);
    assert.equal(listed.body.items[0].spec.timeZone, 'UTC');
  });
});

describe('Events', () => {
  test('core and events.k8s.io are two views of the same objects, with involvedObject field selectors', async () => {
    const ev = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: 'ct.1' },
      involvedObject: { kind: 'CronTab', namespace: 'default', name: 'gen', apiVersion: 'stable.example.com/v1' },
      reason: 'Synced',
      message: 'CronJob created',
      type: 'Normal',
      count: 1,
      source: { component: 'kreconcile' },
    };
    assert.equal((await call('POST', '/api/v1/namespaces/default/events', ev)).status, 201);
    const v1 = await call('GET', '/apis/events.k8s.io/v1/namespaces/default/events/ct.1');
    assert.equal(v1.body.apiVersion, 'events.k8s.io/v1');
    assert.equal(v1.body.note, 'CronJob created');
    assert.equal(v1.body.regarding.name, 'gen');
    assert.equal(v1.body.deprecatedCount, 1);
    const sel = await call('GET', '/api/v1/events?fieldSelector=involvedObject.kind%3DCronTab,involvedObject.name%3Dgen,reason%3DSynced');
    assert.deepEqual(sel.body.items.map((i: any) => i.metadata.name), ['ct.1']);
    const none = await call('GET', '/api/v1/events?fieldSelector=involvedObject.name%3Dother');
    assert.equal(none.body.items.length, 0);
    assert.equal(sim.gc.expireEvents(Date.now() + 2 * 3600 * 1000), 1, 'expired after the TTL');
  });
});

describe('list and watch details', () => {
  test('Table output when asked for it', async () => {
    const accept = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
    const r = await call('GET', '/api/v1/namespaces/default/secrets?limit=500', undefined, { accept });
    assert.equal(r.headers.get('content-type'), 'application/json;as=Table;v=v1;g=meta.k8s.io');
    assert.equal(r.body.kind, 'Table');
    assert.deepEqual(r.body.columnDefinitions.slice(0, 2).map((c: { name: string }) => c.name), ['Name', 'Type']);
    const plain = await call('GET', '/api/v1/namespaces/default/secrets');
    assert.equal(plain.body.kind, 'SecretList');
    assert.equal(plain.body.items[0].kind, undefined, 'built-in list items carry no TypeMeta');
    const crs = await call('GET', CT);
    assert.equal(crs.body.items[0].kind, 'CronTab', 'custom resource list items do');
  });

  test('resourceVersionMatch without resourceVersion is 422; a future resourceVersion is 504', async () => {
    assert.equal((await call('GET', '/api/v1/secrets?resourceVersionMatch=NotOlderThan')).status, 422);
    assert.equal((await call('GET', `/api/v1/secrets?resourceVersion=${sim.store.currentRevision + 1000}`)).status, 504);
  });

  test('watch with resourceVersion=0 starts with synthetic ADDED; bookmarks and timeoutSeconds end it', async () => {
    const res = await fetch(`${sim.url}/api/v1/namespaces?watch=true&resourceVersion=0&allowWatchBookmarks=true&timeoutSeconds=1`);
    const text = await res.text();
    const events = text.trim().split('\n').map((l) => JSON.parse(l));
    const added = events.filter((e) => e.type === 'ADDED').map((e) => e.object.metadata.name);
    assert.ok(added.includes('default') && added.includes('kube-system'));
    const bookmark = events.find((e) => e.type === 'BOOKMARK');
    assert.deepEqual(Object.keys(bookmark.object.metadata), ['resourceVersion']);
    assert.equal(bookmark.object.kind, 'Namespace');
  });

  test('sendInitialEvents: current state, a bookmark marking its end, then live events', async () => {
    await call('POST', '/api/v1/namespaces', { metadata: { name: 'wl' } });
    await call('POST', '/api/v1/namespaces/wl/configmaps', { metadata: { name: 'first' } });
    const refused = await call('GET', '/api/v1/namespaces/wl/configmaps?watch=true&sendInitialEvents=true');
    assert.equal(refused.status, 422);
    const ctl = new AbortController();
    const res = await fetch(`${sim.url}/api/v1/namespaces/wl/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true`, { signal: ctl.signal });
    const reader = res.body!.getReader();
    const events: any[] = [];
    let buf = '';
    const read = async (n: number) => {
      while (events.length < n) {
        const { value, done } = await reader.read();
        if (done) throw new Error('stream ended');
        buf += Buffer.from(value).toString('utf8');
        const parts = buf.split('\n');
        buf = parts.pop()!;
        events.push(...parts.filter(Boolean).map((l) => JSON.parse(l)));
      }
    };
    await read(2);
    await call('POST', '/api/v1/namespaces/wl/configmaps', { metadata: { name: 'second' } });
    await read(3);
    ctl.abort();
    assert.equal(`${events[0].type} ${events[0].object.metadata.name}`, 'ADDED first');
    assert.equal(events[1].type, 'BOOKMARK');
    assert.equal(events[1].object.metadata.annotations['k8s.io/initial-events-end'], 'true');
    assert.equal(`${events[2].type} ${events[2].object.metadata.name}`, 'ADDED second');
  });

  test('deletecollection deletes what the selector picks', async () => {
    await call('POST', '/api/v1/namespaces', { metadata: { name: 'dc' } });
    for (const [name, app] of [['a', 'x'], ['b', 'x'], ['c', 'y']]) await call('POST', '/api/v1/namespaces/dc/configmaps', { metadata: { name, labels: { app } } });
    const r = await call('DELETE', '/api/v1/namespaces/dc/configmaps?labelSelector=app%3Dx');
    assert.equal(r.status, 200);
    const left = await call('GET', '/api/v1/namespaces/dc/configmaps');
    assert.deepEqual(left.body.items.map((i: any) => i.metadata.name), ['c']);
  });

  test('a watcher that stops reading is dropped instead of buffering without bound', async () => {
    const small = await startKubeSim({ maxWatchBufferBytes: 256 * 1024 });
    try {
      const url = new URL(`${small.url}/api/v1/namespaces/default/configmaps?watch=true`);
      const closed = new Promise<void>((resolve) => {
        const req = http.get(url, (res) => {
          res.pause(); // never read
          res.on('close', () => resolve());
          res.on('error', () => resolve());
        });
        req.on('error', () => resolve());
      });
      await eventually('watch open', () => small.watches.size === 1, 10_000, 10);
      const ctx = { user: { username: 't', groups: [] }, dryRun: false, fieldValidation: 'Ignore' as const, warnings: [] };
      const info = small.registry.lookup('', 'v1', 'configmaps')!;
      const blob = 'x'.repeat(512 * 1024);
      for (let i = 0; i < 200 && small.watches.size > 0; i++) await small.api.create(ctx, info, 'default', { metadata: { name: `big-${i}` }, data: { blob } });
      assert.equal(small.watches.size, 0, 'the slow watcher was closed');
      await closed;
    } finally {
      await small.stop();
    }
  });
});

describe('request hook (for audit backends)', () => {
  test('onRequestComplete reports each finished request with verb, resource, code and user', async () => {
    const seen: Array<{ verb: string; resource?: string; name?: string; namespace?: string; code: number; user: { username: string } }> = [];
    const off = sim.onRequestComplete((info) => seen.push(info));
    await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'audited' } });
    await call('DELETE', '/api/v1/namespaces/default/configmaps/audited', undefined, { 'impersonate-user': 'alice' });
    await call('GET', '/api/v1/namespaces/default/configmaps/audited');
    await eventually('three completed requests', () => seen.length >= 3, 10_000, 10);
    off();
    assert.deepEqual(
      seen.map((s) => [s.verb, s.resource, s.namespace, s.name, s.code, s.user.username]),
      [
        ['create', 'configmaps', 'default', undefined, 201, 'kubernetes-admin'],
        ['delete', 'configmaps', 'default', 'audited', 200, 'alice'],
        ['get', 'configmaps', 'default', 'audited', 404, 'kubernetes-admin'],
      ],
    );
  });
});
