// kube-sim through kubectl 1.32: the commands of contract §11, as a person would type them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { lines, makeKubectl, type Kubectl } from './kube-sim-helpers.ts';
import { eventually } from '../support/wait.ts';

const CRD = fs.readFileSync(new URL('../../infra/k8s/crontab-crd.yaml', import.meta.url), 'utf8');

function cronTab(name: string, spec: Record<string, unknown>): string {
  return JSON.stringify({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name }, spec });
}

let sim: KubeSim;
let kubectl: Kubectl;

before(async () => {
  sim = await startKubeSim();
  kubectl = makeKubectl(sim.kubeconfigPath);
  await kubectl.ok(['apply', '-f', kubectl.file('crd.yaml', CRD)]);
  const out = await kubectl.ok(['wait', '--for', 'condition=established', 'crd/crontabs.stable.example.com', '--timeout=10s']);
  assert.match(out, /condition met/);
});
after(async () => {
  await sim.stop();
  kubectl.cleanup();
});

describe('CronTab with kubectl', () => {
  test('apply creates, re-apply is unchanged, get shows printer columns and -o json|yaml|jsonpath', async () => {
    const file = kubectl.file('ct1.yaml', cronTab('ct1', { cronSpec: '*/5 * * * *', image: 'busybox' }));
    assert.match(await kubectl.ok(['apply', '-f', file]), /crontab.stable.example.com\/ct1 created/);
    assert.match(await kubectl.ok(['apply', '-f', file]), /crontab.stable.example.com\/ct1 unchanged/);
    const table = await kubectl.ok(['get', 'ct']);
    assert.match(table, /^NAME\s+SCHEDULE\s+IMAGE\s+REPLICAS\s+READY\s+AGE\n/);
    assert.match(table, /ct1\s+\*\/5 \* \* \* \*\s+busybox\s+1\s+\d+s/);
    const json = JSON.parse(await kubectl.ok(['get', 'ct', 'ct1', '-o', 'json']));
    assert.equal(json.spec.replicas, 1, 'schema default applied');
    assert.equal(json.metadata.generation, 1);
    assert.match(await kubectl.ok(['get', 'crontab', 'ct1', '-o', 'yaml']), /cronSpec: '\*\/5 \* \* \* \*'/);
    assert.equal(await kubectl.ok(['get', 'ct', 'ct1', '-o', 'jsonpath={.spec.image}']), 'busybox');
  });

  test('apply --dry-run=server validates but stores nothing', async () => {
    const file = kubectl.file('ct-dry.yaml', cronTab('ct-dry', { cronSpec: '* * * * *', image: 'x' }));
    assert.match(await kubectl.ok(['apply', '--dry-run=server', '-f', file]), /ct-dry created \(server dry run\)/);
    const r = await kubectl(['get', 'ct', 'ct-dry']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /crontabs.stable.example.com "ct-dry" not found/);
  });

  test('schema violations and unknown fields are refused with the API server wording', async () => {
    const bad = await kubectl(['apply', '-f', kubectl.file('bad.yaml', cronTab('bad', { cronSpec: '* * * * *', image: 'x', replicas: 0 }))]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /The CronTab "bad" is invalid: spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1/);
    const unknown = await kubectl(['apply', '-f', kubectl.file('unknown.yaml', cronTab('unknown', { cronSpec: '* * * * *', image: 'x', bogus: true }))]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /strict decoding error: unknown field "spec.bogus"/);
    const missing = await kubectl(['apply', '-f', kubectl.file('missing.yaml', cronTab('missing', { image: 'x' }))]);
    assert.match(missing.stderr, /spec.cronSpec: Required value/);
  });

  test('patch --type=merge and --type=json bump generation; label does not', async () => {
    await kubectl.ok(['apply', '-f', kubectl.file('ct2.yaml', cronTab('ct2', { cronSpec: '* * * * *', image: 'a' }))]);
    await kubectl.ok(['patch', 'ct', 'ct2', '--type=merge', '-p', '{"spec":{"replicas":3}}']);
    await kubectl.ok(['patch', 'ct', 'ct2', '--type=json', '-p', '[{"op":"replace","path":"/spec/image","value":"b"}]']);
    await kubectl.ok(['label', 'ct', 'ct2', 'team=x']);
    const obj = JSON.parse(await kubectl.ok(['get', 'ct', 'ct2', '-o', 'json']));
    assert.deepEqual([obj.spec.replicas, obj.spec.image, obj.metadata.labels.team, obj.metadata.generation], [3, 'b', 'x', 3]);
    const failed = await kubectl(['patch', 'ct', 'ct2', '--type=json', '-p', '[{"op":"test","path":"/spec/image","value":"zzz"}]']);
    assert.notEqual(failed.code, 0);
  });

  test('apply --server-side twice, a second manager conflicts, --force-conflicts takes over', async () => {
    const mine = kubectl.file('ssa.yaml', cronTab('ssa', { cronSpec: '* * * * *', image: 'one' }));
    assert.match(await kubectl.ok(['apply', '--server-side', '-f', mine]), /serverside-applied/);
    const rv1 = await kubectl.ok(['get', 'ct', 'ssa', '-o', 'jsonpath={.metadata.resourceVersion}']);
    await kubectl.ok(['apply', '--server-side', '-f', mine]);
    const rv2 = await kubectl.ok(['get', 'ct', 'ssa', '-o', 'jsonpath={.metadata.resourceVersion}']);
    assert.equal(rv2, rv1, 'the same apply again writes nothing');
    const theirs = kubectl.file('ssa2.yaml', cronTab('ssa', { cronSpec: '* * * * *', image: 'two' }));
    const conflict = await kubectl(['apply', '--server-side', '--field-manager=other', '-f', theirs]);
    assert.notEqual(conflict.code, 0);
    assert.match(conflict.stderr, /Apply failed with 1 conflict: conflict with "kubectl": .spec.image/);
    await kubectl.ok(['apply', '--server-side', '--field-manager=other', '--force-conflicts', '-f', theirs]);
    const obj = JSON.parse(await kubectl.ok(['get', 'ct', 'ssa', '-o', 'json', '--show-managed-fields']));
    assert.equal(obj.spec.image, 'two');
    const other = obj.metadata.managedFields.find((m: { manager: string }) => m.manager === 'other');
    assert.ok(other.fieldsV1['f:spec']['f:image'], 'the forcing manager owns .spec.image');
  });

  test('delete --wait removes the object', async () => {
    await kubectl.ok(['apply', '-f', kubectl.file('gone.yaml', cronTab('gone', { cronSpec: '* * * * *', image: 'x' }))]);
    assert.match(await kubectl.ok(['delete', 'ct', 'gone', '--wait']), /crontab.stable.example.com "gone" deleted/);
    assert.equal(sim.api.peek(sim.registry.lookup('stable.example.com', 'v1', 'crontabs')!, 'default', 'gone'), undefined);
  });
});

describe('Secrets with kubectl', () => {
  test('create secret generic (protobuf body), get shows TYPE and DATA, get -o jsonpath decodes nothing', async () => {
    assert.match(await kubectl.ok(['create', 'secret', 'generic', 'db', '--from-literal=password=correct-horse', '--from-literal=user=me']), /secret\/db created/);
    const table = await kubectl.ok(['get', 'secrets']);
    assert.match(table, /^NAME\s+TYPE\s+DATA\s+AGE\n/);
    assert.match(table, /db\s+Opaque\s+2\s+/);
    assert.equal(await kubectl.ok(['get', 'secret', 'db', '-o', 'jsonpath={.data.password}']), Buffer.from('correct-horse').toString('base64'));
    const typed = await kubectl(['create', 'secret', 'generic', 'ba', '--type=kubernetes.io/basic-auth', '--from-literal=password=x']);
    assert.equal(typed.code, 0, typed.stderr);
  });

  test('get -w --output-watch-events streams ADDED, MODIFIED, DELETED', async () => {
    const child = kubectl.spawn(['get', 'configmaps', '-w', '--output-watch-events']);
    const out = lines(child);
    try {
      await kubectl.ok(['create', 'configmap', 'watched', '--from-literal=a=b']);
      await out.until(/^ADDED\s+watched/);
      await kubectl.ok(['label', 'configmap', 'watched', 'x=y']);
      await out.until(/^MODIFIED\s+watched/);
      await kubectl.ok(['delete', 'configmap', 'watched']);
      await out.until(/^DELETED\s+watched/);
    } finally {
      child.kill();
    }
  });

  test('delete namespace --wait empties it first', async () => {
    await kubectl.ok(['create', 'namespace', 'doomed']);
    await kubectl.ok(['create', 'secret', 'generic', 'inside', '-n', 'doomed', '--from-literal=a=b']);
    await kubectl.ok(['delete', 'namespace', 'doomed', '--wait', '--timeout=20s']);
    const r = await kubectl(['get', 'namespace', 'doomed']);
    assert.match(r.stderr, /namespaces "doomed" not found/);
    assert.equal(sim.store.count('secrets', 'doomed'), 0);
  });

  test('system namespaces cannot be deleted', async () => {
    const r = await kubectl(['delete', 'namespace', 'default']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /namespaces "default" is forbidden: this namespace may not be deleted/);
  });

  test('kubectl api-resources lists built-ins and the CRD', async () => {
    const out = await kubectl.ok(['api-resources']);
    for (const re of [/^secrets\s+v1\s+true\s+Secret/m, /^crontabs\s+ct\s+stable.example.com\/v1\s+true\s+CronTab/m, /^leases\s+coordination.k8s.io\/v1\s+true\s+Lease/m]) assert.match(out, re);
    await eventually('ct served', async () => (await kubectl(['get', 'ct'])).code === 0, 10_000, 10);
  });
});
