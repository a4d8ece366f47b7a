// OpenAPI v3 documents and built-in schemas, checked for shape and by kubectl itself:
// a small HTTP server here serves discovery plus these documents, and kubectl must get past
// validation on `apply --dry-run=server` (sending fieldValidation=Strict) and `explain` fields.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { openApiV3Root, openApiV3GroupVersion, openApiV3Document } from '../../services/kube-sim/openapi.ts';
import { builtinSchema } from '../../services/kube-sim/builtin-schemas.ts';
import { groupVersion, type JSONSchemaProps, type ResourceInfo } from '../../services/kube-sim/types.ts';

const run = promisify(execFile);
const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(group: string, resource: string, kind: string, namespaced = true, statusSubresource = false): ResourceInfo {
  return { group, version: 'v1', resource, singular: kind.toLowerCase(), kind, listKind: `${kind}List`, namespaced, verbs: VERBS, statusSubresource, builtin: true };
}

let crontabs: ResourceInfo;
let resources: ResourceInfo[];

before(async () => {
  const crd = parseYaml(await readFile(new URL('../../infra/k8s/crontab-crd.yaml', import.meta.url), 'utf8'));
  const v = crd.spec.versions[0];
  crontabs = {
    group: crd.spec.group, version: v.name, resource: crd.spec.names.plural, singular: crd.spec.names.singular, kind: crd.spec.names.kind,
    listKind: crd.spec.names.listKind, namespaced: true, shortNames: crd.spec.names.shortNames, verbs: VERBS, statusSubresource: true,
    builtin: false, printerColumns: v.additionalPrinterColumns, schema: v.schema.openAPIV3Schema as JSONSchemaProps,
  };
  resources = [
    builtin('', 'secrets', 'Secret'),
    builtin('', 'configmaps', 'ConfigMap'),
    builtin('', 'namespaces', 'Namespace', false, true),
    builtin('', 'events', 'Event'),
    builtin('batch', 'cronjobs', 'CronJob', true, true),
    builtin('batch', 'jobs', 'Job', true, true),
    builtin('coordination.k8s.io', 'leases', 'Lease'),
    builtin('events.k8s.io', 'events', 'Event'),
    builtin('apiextensions.k8s.io', 'customresourcedefinitions', 'CustomResourceDefinition', false, true),
    builtin('admissionregistration.k8s.io', 'validatingwebhookconfigurations', 'ValidatingWebhookConfiguration', false),
    crontabs,
  ];
});

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } };

describe('documents', () => {
  test('root lists every served group-version with a hashed URL', () => {
    const root = openApiV3Root(resources) as { paths: Record<string, { serverRelativeURL: string }> };
    assert.deepEqual(Object.keys(root.paths).sort(), [
      'api/v1', 'apis/admissionregistration.k8s.io/v1', 'apis/apiextensions.k8s.io/v1', 'apis/batch/v1', 'apis/coordination.k8s.io/v1', 'apis/events.k8s.io/v1', 'apis/stable.example.com/v1',
    ]);
    assert.match(root.paths['apis/stable.example.com/v1']!.serverRelativeURL, /^\/openapi\/v3\/apis\/stable\.example\.com\/v1\?hash=[0-9A-F]{128}$/);
  });

  test('the hash changes when the group-version\'s resources change, and only then', () => {
    const before = openApiV3Document('apis/stable.example.com/v1', resources)!.hash;
    assert.equal(openApiV3Document('apis/stable.example.com/v1', [...resources])!.hash, before);
    const changed = resources.map((r) => (r === crontabs ? { ...r, schema: { ...r.schema, description: 'changed' } } : r));
    assert.notEqual(openApiV3Document('apis/stable.example.com/v1', changed)!.hash, before);
    assert.equal(openApiV3Document('apis/batch/v1', changed)!.hash, openApiV3Document('apis/batch/v1', resources)!.hash);
  });

  test('unknown group-versions and paths are undefined', () => {
    assert.equal(openApiV3GroupVersion('apis/nope.example.com/v1', resources), undefined);
    assert.equal(openApiV3GroupVersion('apis/batch', resources), undefined);
    assert.equal(openApiV3GroupVersion('api/v2', resources), undefined);
  });

  test('every PATCH operation names its kind and takes fieldValidation', () => {
    for (const gv of Object.keys((openApiV3Root(resources) as any).paths)) {
      const doc = openApiV3GroupVersion(gv, resources) as Doc;
      assert.equal(doc.openapi, '3.0.0');
      let patches = 0;
      for (const [p, item] of Object.entries(doc.paths)) {
        if (!item.patch) continue;
        patches++;
        assert.ok(item.patch['x-kubernetes-group-version-kind']?.kind, `${p} PATCH lacks its GVK`);
        assert.ok(item.patch.parameters.some((x: any) => x.name === 'fieldValidation'), `${p} PATCH lacks fieldValidation`);
      }
      assert.ok(patches > 0, `${gv} has no PATCH operation`);
    }
  });

  test('CronTab: namespaced paths incl. status and all-namespaces list; schema from the CRD', () => {
    const doc = openApiV3GroupVersion('apis/stable.example.com/v1', resources) as Doc;
    assert.deepEqual(Object.keys(doc.paths).sort(), [
      '/apis/stable.example.com/v1/crontabs',
      '/apis/stable.example.com/v1/namespaces/{namespace}/crontabs',
      '/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}',
      '/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}/status',
    ]);
    const item = doc.paths['/apis/stable.example.com/v1/namespaces/{namespace}/crontabs/{name}']!;
    assert.deepEqual(Object.keys(item).sort(), ['delete', 'get', 'parameters', 'patch', 'put']);
    assert.deepEqual(item.patch['x-kubernetes-group-version-kind'], { group: 'stable.example.com', version: 'v1', kind: 'CronTab' });
    assert.equal('application/strategic-merge-patch+json' in item.patch.requestBody.content, false);
    const schema = doc.components.schemas['com.example.stable.v1.CronTab'];
    assert.deepEqual(schema['x-kubernetes-group-version-kind'], [{ group: 'stable.example.com', version: 'v1', kind: 'CronTab' }]);
    assert.equal(schema.properties.spec.properties.replicas.minimum, 1);
    assert.deepEqual(schema.properties.spec.required, ['cronSpec', 'image']);
    assert.ok(schema.properties.apiVersion.description);
    assert.deepEqual(schema.properties.metadata.allOf, [{ $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' }]);
    assert.ok(doc.components.schemas['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta']);
    assert.ok(doc.components.schemas['com.example.stable.v1.CronTabList']);
  });

  test('every $ref points at a schema in the same document', () => {
    for (const gv of ['api/v1', 'apis/batch/v1', 'apis/stable.example.com/v1', 'apis/apiextensions.k8s.io/v1']) {
      const doc = openApiV3GroupVersion(gv, resources) as Doc;
      const refs = JSON.stringify(doc).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? [];
      for (const r of refs) {
        const id = r.slice('"$ref":"#/components/schemas/'.length, -1);
        assert.ok(doc.components.schemas[id], `${gv}: dangling $ref ${id}`);
      }
    }
  });
});

describe('builtinSchema (from kubernetes-models)', () => {
  test('every served built-in kind has a schema with its GVK', () => {
    for (const r of resources.filter((x) => x.builtin)) {
      const s = builtinSchema(r.group, r.version, r.kind);
      assert.ok(s, `${groupVersion(r)} ${r.kind}`);
      assert.deepEqual(s['x-kubernetes-group-version-kind'], [{ group: r.group, version: r.version, kind: r.kind }]);
      assert.equal(s.type, 'object');
      assert.ok(s.properties?.metadata?.properties?.name, `${r.kind} metadata resolved`);
    }
    assert.equal(builtinSchema('', 'v1', 'NoSuchKind'), undefined);
  });

  test('refs resolved, integers told from numbers, required and enums kept', () => {
    const cj = builtinSchema('batch', 'v1', 'CronJob')!;
    const spec = cj.properties!.spec!;
    assert.deepEqual(spec.required, ['jobTemplate', 'schedule']);
    assert.equal(spec.properties!.successfulJobsHistoryLimit!.type, 'integer');
    assert.deepEqual(spec.properties!.concurrencyPolicy!.enum, ['Allow', 'Forbid', 'Replace']);
    const container = spec.properties!.jobTemplate!.properties!.spec!.properties!.template!.properties!.spec!.properties!.containers!.items!;
    assert.deepEqual(container.required, ['name']);
    assert.equal(container.properties!.image!.type, 'string');
    assert.equal(cj.properties!.metadata!.properties!.creationTimestamp!.format, 'date-time');
    const secret = builtinSchema('', 'v1', 'Secret')!;
    assert.deepEqual(secret.properties!.data!.additionalProperties, { type: 'string' });
    assert.match(secret.properties!.stringData!.description!, /write-only/);
    const lease = builtinSchema('coordination.k8s.io', 'v1', 'Lease')!;
    assert.equal(lease.properties!.spec!.properties!.leaseDurationSeconds!.type, 'integer');
  });

  test('self-referencing types are cut into free-form objects', () => {
    const crd = builtinSchema('apiextensions.k8s.io', 'v1', 'CustomResourceDefinition')!;
    const schema = crd.properties!.spec!.properties!.versions!.items!.properties!.schema!.properties!.openAPIV3Schema!;
    assert.equal(schema.properties!.type!.type, 'string');
    const nested = schema.properties!.properties!.additionalProperties as JSONSchemaProps;
    assert.equal(nested['x-kubernetes-preserve-unknown-fields'], true);
  });
});

describe('kubectl against these documents', () => {
  let server: http.Server;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  const requests: { method: string; url: string }[] = [];

  function resourceList(group: string, version: string) {
    return {
      kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version,
      resources: resources.filter((r) => r.group === group && r.version === version).flatMap((r) => [
        { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs, ...(r.shortNames ? { shortNames: r.shortNames } : {}) },
        ...(r.statusSubresource ? [{ name: `${r.resource}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] }] : []),
      ]),
    };
  }

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, 'http://x');
      requests.push({ method: req.method!, url: req.url! });
      const json = (code: number, body: unknown) => {
        res.writeHead(code, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const notFound = () => json(404, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', reason: 'NotFound', code: 404, message: 'the server could not find the requested resource' });
      const p = url.pathname;
      if (p === '/version') return json(200, { major: '1', minor: '32', gitVersion: 'v1.32.4' });
      if (p === '/api') return json(200, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: req.headers.host }] });
      if (p === '/apis') {
        const groups = [...new Set(resources.filter((r) => r.group).map((r) => r.group))].map((g) => ({
          name: g, versions: [{ groupVersion: `${g}/v1`, version: 'v1' }], preferredVersion: { groupVersion: `${g}/v1`, version: 'v1' },
        }));
        return json(200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
      }
      if (p === '/api/v1') return json(200, resourceList('', 'v1'));
      let m = /^\/apis\/([^/]+)\/([^/]+)$/.exec(p);
      if (m) return json(200, resourceList(m[1]!, m[2]!));
      if (p === '/openapi/v3') return json(200, openApiV3Root(resources));
      if (p.startsWith('/openapi/v3/')) {
        const doc = openApiV3GroupVersion(p.slice('/openapi/v3/'.length), resources);
        return doc ? json(200, doc) : notFound();
      }
      if (p.startsWith('/openapi/')) return notFound();
      // Object paths: nothing exists; a dry-run create echoes the object back.
      m = /^\/(?:api|apis\/[^/]+)\/v1\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(p);
      if (m && req.method === 'GET' && m[3]) return notFound();
      if (m && req.method === 'POST') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => json(201, JSON.parse(Buffer.concat(chunks).toString())));
        return;
      }
      return notFound();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    dir = await mkdtemp(join(tmpdir(), 'kube-sim-openapi-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await writeFile(kubeconfig, [
      'apiVersion: v1', 'kind: Config', 'current-context: t',
      'clusters: [{name: t, cluster: {server: "http://127.0.0.1:' + (server.address() as AddressInfo).port + '"}}]',
      'users: [{name: t, user: {token: x}}]',
      'contexts: [{name: t, context: {cluster: t, user: t, namespace: default}}]',
    ].join('\n'));
    env = { ...process.env, KUBECONFIG: kubeconfig, HOME: dir };
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  async function kubectl(...args: string[]): Promise<string> {
    const { stdout } = await run('kubectl', ['--cache-dir', join(dir, 'cache'), ...args], { env, timeout: 30_000 });
    return stdout;
  }

  test('apply --dry-run=server of a CronTab passes validation and sends fieldValidation=Strict', async () => {
    const file = join(dir, 'ct.yaml');
    await writeFile(file, 'apiVersion: stable.example.com/v1\nkind: CronTab\nmetadata:\n  name: ct\nspec:\n  cronSpec: "* * * * *"\n  image: busybox\n');
    const out = await kubectl('apply', '--dry-run=server', '-f', file);
    assert.match(out, /crontab\.stable\.example\.com\/ct created \(server dry run\)/);
    const post = requests.find((r) => r.method === 'POST' && r.url.includes('/crontabs'));
    assert.ok(post, JSON.stringify(requests));
    const q = new URL(post.url, 'http://x').searchParams;
    assert.equal(q.get('fieldValidation'), 'Strict');
    assert.equal(q.get('dryRun'), 'All');
    assert.ok(!requests.some((r) => r.url.startsWith('/openapi/v2')), 'kubectl fell back to OpenAPI v2');
  });

  test('apply --dry-run=server of a Secret passes too', async () => {
    const file = join(dir, 's.yaml');
    await writeFile(file, 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: correct-horse-battery\n');
    const out = await kubectl('apply', '--dry-run=server', '-f', file);
    assert.match(out, /secret\/s created \(server dry run\)/);
  });

  test('explain crontabs.spec shows the CRD\'s fields and descriptions', async () => {
    const out = await kubectl('explain', 'crontabs.spec');
    assert.match(out, /KIND:\s+CronTab/);
    assert.match(out, /cronSpec\s+<string> -required-/);
    assert.match(out, /Five-field cron expression/);
    assert.match(out, /concurrencyPolicy\s+<string>/);
    assert.match(out, /replicas\s+<integer>/);
  });

  test('explain works on built-ins through $refs', async () => {
    const out = await kubectl('explain', 'cronjobs.spec.jobTemplate.spec.template.spec.containers.image');
    assert.match(out, /KIND:\s+CronJob/);
    assert.match(out, /FIELD:\s+image <string>/);
    const meta = await kubectl('explain', 'secrets.metadata.labels');
    assert.match(meta, /labels\s+<map\[string\]string>/);
    const lease = await kubectl('explain', 'leases.spec');
    assert.match(lease, /leaseDurationSeconds\s+<integer>/);
  });
});
