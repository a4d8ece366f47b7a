import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from '../../services/kube-sim/patch.ts';
import { throwsStatusError } from '../support/assert.ts';

function noDirectives(v: unknown): boolean {
  if (Array.isArray(v)) return v.every(noDirectives);
  if (v && typeof v === 'object') return Object.entries(v).every(([k, x]) => !k.startsWith('$') && noDirectives(x));
  return true;
}

describe('JSON merge patch (RFC 7386)', () => {
  // The RFC's appendix A examples: [target, patch, result].
  const rfc: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  rfc.forEach(([target, patch, result], i) => {
    test(`RFC 7386 example ${i + 1}`, () => {
      assert.deepEqual(applyMergePatch(target, patch), result);
    });
  });

  test('inputs are not mutated and the result shares nothing with them', () => {
    const target = { metadata: { name: 'x', labels: { a: '1' } }, spec: { n: 1 } };
    const patch = { spec: { list: [{ x: 1 }] } };
    const before = structuredClone([target, patch]);
    const out = applyMergePatch<typeof target & { spec: { list: { x: number }[] } }>(target, patch);
    assert.deepEqual([target, patch], before);
    out.metadata.labels.a = 'changed';
    out.spec.list[0]!.x = 2;
    assert.deepEqual([target, patch], before);
  });

  test('property: applying a patch twice is the same as once', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    fc.assert(
      fc.property(json, json, (target, patch) => {
        const once = applyMergePatch(target, patch);
        assert.deepEqual(applyMergePatch(once, patch), once);
      }),
    );
  });
});

describe('JSON patch (RFC 6902)', () => {
  const doc = { metadata: { name: 'ct', labels: { a: '1' } }, spec: { replicas: 1, args: ['x', 'y'] } };

  test('applies every operation kind in order', () => {
    const out = applyJsonPatch(doc, [
      { op: 'test', path: '/spec/replicas', value: 1 },
      { op: 'replace', path: '/spec/replicas', value: 3 },
      { op: 'add', path: '/metadata/labels/b', value: '2' },
      { op: 'remove', path: '/metadata/labels/a' },
      { op: 'add', path: '/spec/args/-', value: 'z' },
      { op: 'copy', from: '/spec/replicas', path: '/spec/copied' },
      { op: 'move', from: '/spec/copied', path: '/spec/moved' },
    ]);
    assert.deepEqual(out, { metadata: { name: 'ct', labels: { b: '2' } }, spec: { replicas: 3, args: ['x', 'y', 'z'], moved: 3 } });
    assert.deepEqual(doc.metadata.labels, { a: '1' }, 'input untouched');
  });

  test('values from the patch are copied, not shared', () => {
    const value = { deep: [1] };
    const out = applyJsonPatch<{ spec: { v: { deep: number[] } } }>(doc, [{ op: 'add', path: '/spec/v', value }]);
    out.spec.v.deep.push(2);
    assert.deepEqual(value, { deep: [1] });
  });

  test('a failing test operation is 422 Invalid naming the path', () => {
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'test', path: '/spec/replicas', value: 2 }]), 422, 'Invalid', /^testing value \/spec\/replicas failed/);
  });

  test('a path that does not exist is 422 Invalid naming the operation', () => {
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'replace', path: '/spec/missing', value: 1 }]), 422, 'Invalid', /^replace operation does not apply: doc is missing path: "\/spec\/missing"/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'remove', path: '/status' }]), 422, 'Invalid', /^remove operation/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'add', path: '/status/x/y', value: 1 }]), 422, 'Invalid', /^add operation/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'add', path: '/spec/args/7', value: 1 }]), 422, 'Invalid', /invalid index/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'move', from: '/nope', path: '/spec/x' }]), 422, 'Invalid', /^move operation does not apply: doc is missing from path: \/nope/);
  });

  test('malformed patches are 400 BadRequest', () => {
    throwsStatusError(() => applyJsonPatch(doc, { op: 'add' }), 400, 'BadRequest', /jsonpatch\.Patch/);
    throwsStatusError(() => applyJsonPatch(doc, ['x']), 400, 'BadRequest', /not an object/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'frobnicate', path: '/a' }]), 400, 'BadRequest', /Unexpected kind: frobnicate/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'add', value: 1 }]), 400, 'BadRequest', /missing "path"/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'add', path: 'a', value: 1 }]), 400, 'BadRequest', /must start with/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'add', path: '/a' }]), 400, 'BadRequest', /missing "value"/);
    throwsStatusError(() => applyJsonPatch(doc, [{ op: 'copy', path: '/a' }]), 400, 'BadRequest', /missing "from"/);
  });

  test('a failed patch leaves the input untouched (no partial application)', () => {
    const target = structuredClone(doc);
    assert.throws(() =>
      applyJsonPatch(target, [
        { op: 'replace', path: '/spec/replicas', value: 9 },
        { op: 'test', path: '/spec/replicas', value: 1 },
      ]),
    );
    assert.deepEqual(target, doc);
  });
});

describe('strategic merge patch', () => {
  const job = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: 'nightly',
      labels: { a: '1', b: '2' },
      finalizers: ['x/one', 'x/two'],
      ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'ct', uid: 'u1', controller: true }],
    },
    spec: {
      schedule: '* * * * *',
      jobTemplate: {
        spec: {
          template: {
            spec: {
              containers: [
                { name: 'main', image: 'busybox:1', args: ['a', 'b'], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80 }] },
                { name: 'sidecar', image: 'proxy:1', volumeMounts: [{ mountPath: '/data', name: 'data' }] },
              ],
              volumes: [{ name: 'data', emptyDir: {} }],
              tolerations: [{ key: 'a' }, { key: 'b' }],
            },
          },
        },
      },
    },
  };
  const podSpec = (o: any) => o.spec.jobTemplate.spec.template.spec;
  const wrap = (spec: unknown) => ({ spec: { jobTemplate: { spec: { template: { spec } } } } });

  test('maps merge and null deletes, like merge patch', () => {
    const out: any = applyStrategicMergePatch(job, { metadata: { labels: { a: null, c: '3' } }, spec: { schedule: '0 * * * *' } });
    assert.deepEqual(out.metadata.labels, { b: '2', c: '3' });
    assert.equal(out.spec.schedule, '0 * * * *');
    assert.deepEqual(podSpec(out), podSpec(job));
  });

  test('containers merge by name; nested env by name; an unnamed list is replaced', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ containers: [{ name: 'main', image: 'busybox:2', args: ['c'], env: [{ name: 'B', value: 'two' }, { name: 'C', value: '3' }] }] }));
    const [main, sidecar] = podSpec(out).containers;
    assert.equal(main.image, 'busybox:2');
    assert.deepEqual(main.args, ['c'], 'args has no merge strategy: replaced');
    assert.deepEqual(main.env, [{ name: 'A', value: '1' }, { name: 'B', value: 'two' }, { name: 'C', value: '3' }]);
    assert.deepEqual(main.ports, [{ containerPort: 80 }]);
    assert.deepEqual(sidecar, podSpec(job).containers[1]);
  });

  // As kube-apiserver (and the kubectl patch docs) show: items only in the patch come first.
  test('a new container is merged in ahead of the existing ones; tolerations (no strategy) are replaced', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ containers: [{ name: 'extra', image: 'e' }], tolerations: [{ key: 'c' }] }));
    assert.deepEqual(podSpec(out).containers.map((c: any) => c.name), ['extra', 'main', 'sidecar']);
    assert.deepEqual(podSpec(out).tolerations, [{ key: 'c' }]);
  });

  test('volumeMounts merge by mountPath, ports by containerPort, volumes by name', () => {
    const out: any = applyStrategicMergePatch(
      job,
      wrap({
        containers: [
          { name: 'sidecar', volumeMounts: [{ mountPath: '/data', readOnly: true }, { mountPath: '/tmp', name: 'tmp' }] },
          { name: 'main', ports: [{ containerPort: 80, name: 'http' }, { containerPort: 443 }] },
        ],
        volumes: [{ name: 'tmp', emptyDir: {} }],
      }),
    );
    const ps = podSpec(out);
    const main = ps.containers.find((c: any) => c.name === 'main');
    const sidecar = ps.containers.find((c: any) => c.name === 'sidecar');
    assert.deepEqual(sidecar.volumeMounts, [{ mountPath: '/data', name: 'data', readOnly: true }, { mountPath: '/tmp', name: 'tmp' }]);
    assert.deepEqual(main.ports, [{ containerPort: 80, name: 'http' }, { containerPort: 443 }]);
    assert.deepEqual(ps.volumes.map((v: any) => v.name), ['tmp', 'data']);
  });

  test('$patch: delete removes a list element by merge key', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ containers: [{ name: 'sidecar', $patch: 'delete' }] }));
    assert.deepEqual(podSpec(out).containers.map((c: any) => c.name), ['main']);
    assert.ok(noDirectives(out));
  });

  test('$patch: replace in a list replaces the whole list', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ containers: [{ name: 'only', image: 'o' }, { $patch: 'replace' }] }));
    assert.deepEqual(podSpec(out).containers, [{ name: 'only', image: 'o' }]);
  });

  test('$patch: replace on a map replaces the map; $patch: delete empties it', () => {
    const replaced: any = applyStrategicMergePatch(job, { metadata: { labels: { z: '9', $patch: 'replace' } } });
    assert.deepEqual(replaced.metadata.labels, { z: '9' });
    const deleted: any = applyStrategicMergePatch(job, { metadata: { labels: { $patch: 'delete' } } });
    assert.deepEqual(deleted.metadata.labels, {});
    const merged: any = applyStrategicMergePatch(job, { metadata: { labels: { c: '3', $patch: 'merge' } } });
    assert.deepEqual(merged.metadata.labels, { a: '1', b: '2', c: '3' });
  });

  test('finalizers merge as a set; $deleteFromPrimitiveList removes', () => {
    const added: any = applyStrategicMergePatch(job, { metadata: { finalizers: ['x/two', 'x/three'] } });
    assert.deepEqual(added.metadata.finalizers, ['x/one', 'x/two', 'x/three']);
    const removed: any = applyStrategicMergePatch(job, { metadata: { '$deleteFromPrimitiveList/finalizers': ['x/one'] } });
    assert.deepEqual(removed.metadata.finalizers, ['x/two']);
    assert.ok(noDirectives(removed));
  });

  test('ownerReferences merge by uid; status.conditions by type', () => {
    const out: any = applyStrategicMergePatch(
      { ...job, status: { conditions: [{ type: 'Complete', status: 'False' }, { type: 'Failed', status: 'False' }] } },
      {
        metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'Other', name: 'o', uid: 'u2' }] },
        status: { conditions: [{ type: 'Complete', status: 'True' }] },
      },
    );
    assert.deepEqual(out.metadata.ownerReferences.map((r: any) => r.uid), ['u2', 'u1']);
    assert.deepEqual(out.status.conditions, [{ type: 'Complete', status: 'True' }, { type: 'Failed', status: 'False' }]);
  });

  test('$setElementOrder reorders a merged list and is stripped', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ '$setElementOrder/containers': [{ name: 'sidecar' }, { name: 'main' }], containers: [{ name: 'main', image: 'busybox:3' }] }));
    assert.deepEqual(podSpec(out).containers.map((c: any) => [c.name, c.image]), [['sidecar', 'proxy:1'], ['main', 'busybox:3']]);
    const env: any = applyStrategicMergePatch(job, wrap({ containers: [{ name: 'main', '$setElementOrder/env': [{ name: 'B' }, { name: 'A' }] }] }));
    assert.deepEqual(podSpec(env).containers[0].env.map((e: any) => e.name), ['B', 'A']);
    assert.ok(noDirectives(out) && noDirectives(env));
  });

  test('what kubectl apply sends for a Secret (last-applied, $retainKeys-free) works', () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', annotations: { old: 'x' } }, type: 'Opaque', data: { password: 'YQ==', user: 'dQ==' } };
    const out: any = applyStrategicMergePatch(secret, { data: { password: 'Yg==', user: null }, metadata: { annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } } });
    assert.deepEqual(out.data, { password: 'Yg==' });
    assert.deepEqual(out.metadata.annotations, { old: 'x', 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
  });

  test('$retainKeys clears keys not listed', () => {
    const out: any = applyStrategicMergePatch(job, wrap({ volumes: [{ name: 'data', hostPath: { path: '/h' }, $retainKeys: ['name', 'hostPath'] }] }));
    assert.deepEqual(podSpec(out).volumes, [{ name: 'data', hostPath: { path: '/h' } }]);
    throwsStatusError(() => applyStrategicMergePatch(job, wrap({ volumes: [{ name: 'data', secret: {}, $retainKeys: ['name'] }] })), 422, 'Invalid', /retainKeys/);
  });

  test('directives inside values that did not exist before are stripped too', () => {
    const out: any = applyStrategicMergePatch({ metadata: { name: 'x' } }, { spec: { template: { spec: { containers: [{ name: 'a', $patch: 'delete' }, { name: 'b' }] } } }, metadata: { labels: { a: null, b: '1' } } });
    assert.deepEqual(out, { metadata: { name: 'x', labels: { b: '1' } }, spec: { template: { spec: { containers: [{ name: 'b' }] } } } });
  });

  test('bad directives and missing merge keys are errors', () => {
    throwsStatusError(() => applyStrategicMergePatch(job, { metadata: { labels: { $patch: 'explode' } } }), 400, 'BadRequest', /Unknown patch type/);
    throwsStatusError(() => applyStrategicMergePatch(job, wrap({ containers: [{ image: 'x' }] })), 422, 'Invalid', /merge key: name/);
    throwsStatusError(() => applyStrategicMergePatch(job, [1]), 400, 'BadRequest', /JSON object/);
    throwsStatusError(() => applyStrategicMergePatch(job, { metadata: { '$deleteFromPrimitiveList/finalizers': 'x' } }), 400, 'BadRequest', /list/);
  });

  test('inputs are not mutated', () => {
    const before = structuredClone(job);
    const patch = wrap({ containers: [{ name: 'main', image: 'x' }, { name: 'sidecar', $patch: 'delete' }] });
    const patchBefore = structuredClone(patch);
    const out: any = applyStrategicMergePatch(job, patch);
    out.metadata.labels.a = 'mutated';
    assert.deepEqual(job, before);
    assert.deepEqual(patch, patchBefore);
  });

  test('property: without lists it agrees with merge patch, and leaves no directive', () => {
    const noLists = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small' }, fc.string(), fc.integer(), fc.boolean(), fc.constant(null), tie('object')),
      object: fc.dictionary(fc.string().filter((k) => !k.startsWith('$') && k !== '__proto__'), tie('value'), { maxKeys: 4 }),
    })).object;
    fc.assert(
      fc.property(noLists, noLists, (target, patch) => {
        const smp = applyStrategicMergePatch(target, patch);
        assert.deepEqual(smp, applyMergePatch(target, patch));
        assert.ok(noDirectives(smp));
      }),
    );
  });
});
