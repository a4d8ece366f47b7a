// kube-sim's Accept negotiation over plain HTTP: the first media range it can serve wins,
// none is a 406, PartialObjectMetadata(List) transforms, and what kubectl sends still works.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { makeKubectl, type Kubectl } from './kube-sim-helpers.ts';

let sim: KubeSim;
let kubectl: Kubectl;
const NS = '/api/v1/namespaces/default';
const KUBECTL_TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';
const POM = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
const POM_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';
const NOT_ACCEPTABLE = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf',
  reason: 'NotAcceptable',
  code: 406,
};

interface Res {
  status: number;
  contentType: string | undefined;
  body: any;
}

/** node:http rather than fetch, which would add `Accept: *\/*` when none is given. */
function call(method: string, path: string, accept?: string, body?: unknown): Promise<Res> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (accept !== undefined) headers.accept = accept;
    const req = http.request(`${sim.url}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The first event of a watch, with the stream's Content-Type; `trigger` runs once the stream is open. */
function firstWatchEvent(path: string, accept: string, trigger: () => Promise<unknown>): Promise<{ contentType: string | undefined; event: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${sim.url}${path}`, { headers: { accept } }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        resolve({ contentType: res.headers['content-type'], event: JSON.parse(buf.slice(0, nl)) });
        req.destroy();
      });
      trigger().catch(reject);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
  });
}

const secret = (name: string, labels: Record<string, string> = {}) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, labels }, stringData: { k: name } });

before(async () => {
  sim = await startKubeSim();
  kubectl = makeKubectl(sim.kubeconfigPath);
  for (const name of ['a1', 'a2', 'a3']) assert.equal((await call('POST', `${NS}/secrets`, 'application/json', secret(name, { team: 'x' }))).status, 201);
});
after(async () => {
  await sim.stop();
  kubectl.cleanup();
});

describe('Accept negotiation on resource requests', () => {
  test('an Accept with nothing servable is a 406 NotAcceptable Status on list and get', async () => {
    for (const accept of ['application/foo', 'text/html', '*/json']) {
      for (const path of [`${NS}/secrets`, `${NS}/secrets/a1`]) {
        const r = await call('GET', path, accept);
        assert.equal(r.status, 406, `${accept} ${path}`);
        assert.equal(r.contentType, 'application/json');
        assert.deepEqual(r.body, NOT_ACCEPTABLE);
      }
    }
  });

  test('a write refused with 406 stores nothing', async () => {
    const r = await call('POST', `${NS}/secrets`, 'text/html', secret('never'));
    assert.equal(r.status, 406);
    assert.deepEqual(r.body, NOT_ACCEPTABLE);
    assert.equal((await call('GET', `${NS}/secrets/never`)).status, 404);
  });

  test('*/*, application/*, application/json, yaml and protobuf ranges and no Accept at all get JSON', async () => {
    for (const accept of [undefined, '', '*/*', 'application/*', 'application/json', 'text/html,application/json;q=0.5', 'application/yaml', 'application/vnd.kubernetes.protobuf,application/json']) {
      const list = await call('GET', `${NS}/secrets`, accept);
      assert.equal(list.status, 200, String(accept));
      assert.equal(list.contentType, 'application/json');
      assert.equal(list.body.kind, 'SecretList');
      const one = await call('GET', `${NS}/secrets/a1`, accept);
      assert.equal(one.status, 200, String(accept));
      assert.equal(one.body.kind, 'Secret');
    }
  });

  test('a range with an unknown as= kind or an unserved group-version is skipped for the next', async () => {
    for (const accept of ['application/json;as=Foo;g=meta.k8s.io;v=v1,application/json', 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1,application/json']) {
      const r = await call('GET', `${NS}/secrets`, accept);
      assert.equal(r.status, 200, accept);
      assert.equal(r.contentType, 'application/json');
      assert.equal(r.body.kind, 'SecretList');
    }
    assert.deepEqual((await call('GET', `${NS}/secrets`, 'application/json;as=Foo;g=meta.k8s.io;v=v1')).body, NOT_ACCEPTABLE);
  });

  test('PartialObjectMetadata on a get carries the whole metadata', async () => {
    const full = await call('GET', `${NS}/secrets/a1`);
    const r = await call('GET', `${NS}/secrets/a1`, POM);
    assert.equal(r.status, 200);
    assert.equal(r.contentType, POM);
    assert.deepEqual(r.body, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: full.body.metadata });
    // client-go's metadata client puts protobuf first; kube-sim answers the JSON form.
    const meta = await call('GET', `${NS}/secrets/a1`, `application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,${POM},application/json`);
    assert.equal(meta.body.kind, 'PartialObjectMetadata');
  });

  test('PartialObjectMetadataList on a list keeps resourceVersion, continue and remainingItemCount', async () => {
    const full = await call('GET', `${NS}/secrets`);
    const r = await call('GET', `${NS}/secrets`, POM_LIST);
    assert.equal(r.status, 200);
    assert.equal(r.contentType, POM_LIST);
    assert.equal(r.body.kind, 'PartialObjectMetadataList');
    assert.equal(r.body.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(r.body.metadata, { resourceVersion: full.body.metadata.resourceVersion });
    assert.deepEqual(r.body.items, full.body.items.map((i: any) => ({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: i.metadata })));
    const page = await call('GET', `${NS}/secrets?limit=1`, POM_LIST);
    assert.equal(page.body.items.length, 1);
    assert.equal(typeof page.body.metadata.continue, 'string');
    assert.equal(page.body.metadata.remainingItemCount, full.body.items.length - 1);
  });

  test('a PartialObjectMetadata of the wrong shape is a 406 with kube-apiserver wording', async () => {
    const one = await call('GET', `${NS}/secrets/a1`, POM_LIST);
    assert.equal(one.status, 406);
    assert.equal(one.body.reason, 'NotAcceptable');
    assert.equal(one.body.message, 'you requested PartialObjectMetadataList, but the requested object is not a list (*core.Secret)');
    const list = await call('GET', `${NS}/secrets`, POM);
    assert.equal(list.body.message, 'you requested PartialObjectMetadata, but the requested object is a list (*core.SecretList)');
  });

  test('a watch with PartialObjectMetadata sends each event object as PartialObjectMetadata', async () => {
    const rv = (await call('GET', `${NS}/secrets`)).body.metadata.resourceVersion;
    const { contentType, event } = await firstWatchEvent(`${NS}/secrets?watch=true&resourceVersion=${rv}`, POM, () => call('POST', `${NS}/secrets`, 'application/json', secret('watched')));
    assert.equal(contentType, POM);
    assert.equal(event.type, 'ADDED');
    assert.deepEqual(Object.keys(event.object), ['kind', 'apiVersion', 'metadata']);
    assert.equal(event.object.kind, 'PartialObjectMetadata');
    assert.equal(event.object.apiVersion, 'meta.k8s.io/v1');
    assert.equal(event.object.metadata.name, 'watched');
    assert.ok(event.object.metadata.uid);
  });

  test('Table is unchanged: kubectl get\'s Accept on a list, a get and a watch', async () => {
    const list = await call('GET', `${NS}/secrets?limit=500`, KUBECTL_TABLE);
    assert.equal(list.contentType, 'application/json;as=Table;v=v1;g=meta.k8s.io');
    assert.equal(list.body.kind, 'Table');
    assert.deepEqual(list.body.columnDefinitions.map((c: { name: string }) => c.name), ['Name', 'Type', 'Data', 'Age']);
    assert.equal(list.body.rows[0].object.kind, 'PartialObjectMetadata');
    const one = await call('GET', `${NS}/secrets/a1`, KUBECTL_TABLE);
    assert.equal(one.body.kind, 'Table');
    assert.equal(one.body.rows.length, 1);
    const { contentType, event } = await firstWatchEvent(`${NS}/secrets?watch=true&resourceVersion=0`, KUBECTL_TABLE, async () => undefined);
    assert.equal(contentType, 'application/json;as=Table;v=v1;g=meta.k8s.io');
    assert.equal(event.object.kind, 'Table');
  });

  test('writes answer kubectl\'s protobuf-first Accept and Table Accept with JSON, as before', async () => {
    const created = await call('POST', `${NS}/secrets`, 'application/vnd.kubernetes.protobuf,application/json', secret('pb'));
    assert.equal(created.status, 201);
    assert.equal(created.contentType, 'application/json');
    assert.equal(created.body.kind, 'Secret');
    const deleted = await call('DELETE', `${NS}/secrets/pb`, KUBECTL_TABLE);
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.kind, 'Status');
  });

  test('discovery, /version and /openapi answer whatever kubectl sends, as before', async () => {
    const aggregated = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';
    assert.equal((await call('GET', '/api', aggregated)).body.kind, 'APIVersions');
    assert.equal((await call('GET', '/apis', aggregated)).body.kind, 'APIGroupList');
    assert.equal((await call('GET', '/api/v1', 'application/json, */*')).body.kind, 'APIResourceList');
    assert.equal((await call('GET', '/version', 'application/json, */*')).status, 200);
    assert.equal((await call('GET', '/openapi/v3', 'application/json')).status, 200);
  });
});

describe('kubectl still reads secrets', () => {
  test('get -o name (plain JSON Accept) and get (Table Accept)', async () => {
    assert.deepEqual((await kubectl.ok(['get', 'secrets', '-o', 'name', '-l', 'team=x'])).trim().split('\n'), ['secret/a1', 'secret/a2', 'secret/a3']);
    assert.match(await kubectl.ok(['get', 'secrets', '-l', 'team=x']), /^NAME\s+TYPE\s+DATA\s+AGE\na1\s+Opaque\s+1\s+/);
  });
});
