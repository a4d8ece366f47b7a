import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { serverSideApply, recordUpdate, managerFromRequest, ownedPaths, fieldsV1ToFieldSet, fieldSetToFieldsV1 } from '../../services/kube-sim/ssa.ts';
import { StatusError, type KubeObject, type ManagedFieldsEntry } from '../../services/kube-sim/types.ts';

const T1 = '2025-06-10T12:00:00Z';
const T2 = '2025-06-10T12:05:00Z';
const GV = 'stable.example.com/v1';

function ct(spec: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: GV, kind: 'CronTab', metadata: { name: 'ct', namespace: 'default' }, spec, ...extra };
}

/** What the store would hold: the object plus server bookkeeping. */
function stored(obj: KubeObject, rv = '5'): KubeObject {
  return { ...obj, metadata: { ...obj.metadata, uid: 'u-1', resourceVersion: rv, creationTimestamp: T1, generation: 1 } };
}

function entry(obj: KubeObject, manager: string): ManagedFieldsEntry {
  const e = obj.metadata.managedFields?.find((m) => m.manager === manager);
  assert.ok(e, `no managedFields entry for ${manager}: ${JSON.stringify(obj.metadata.managedFields)}`);
  return e;
}

function conflictOf(fn: () => unknown): StatusError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof StatusError, String(err));
    return err;
  }
  assert.fail('expected a conflict');
}

describe('serverSideApply', () => {
  test('creates when absent: one Apply entry owning exactly the applied fields', () => {
    const applied = ct({ cronSpec: '* * * * *', image: 'a' }, {});
    applied.metadata.labels = { app: 'x' };
    const { object } = serverSideApply({ applied, manager: 'kubectl', force: false, apiVersion: GV, now: T1 });
    assert.deepEqual(object.spec, { cronSpec: '* * * * *', image: 'a' });
    assert.equal(object.metadata.name, 'ct');
    assert.deepEqual(object.metadata.labels, { app: 'x' });
    assert.equal(object.metadata.managedFields!.length, 1);
    const e = object.metadata.managedFields![0]!;
    assert.deepEqual({ ...e, fieldsV1: undefined }, { manager: 'kubectl', operation: 'Apply', apiVersion: GV, time: T1, fieldsType: 'FieldsV1', fieldsV1: undefined });
    assert.deepEqual(e.fieldsV1, { 'f:metadata': { 'f:labels': { 'f:app': {} } }, 'f:spec': { 'f:cronSpec': {}, 'f:image': {} } });
  });

  test('a field the manager stops applying is removed', () => {
    const first = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a', suspend: true }), manager: 'kubectl', force: false, apiVersion: GV, now: T1 }).object;
    const { object } = serverSideApply({ live: stored(first), applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T2 });
    assert.deepEqual(object.spec, { cronSpec: 'x', image: 'a' });
    assert.deepEqual(ownedPaths(entry(object, 'kubectl')), ['.spec.cronSpec', '.spec.image']);
    assert.equal(entry(object, 'kubectl').time, T2);
    // bookkeeping comes from the stored object, never from the body
    assert.equal(object.metadata.uid, 'u-1');
    assert.equal(object.metadata.resourceVersion, '5');
  });

  test('re-applying the same configuration is a no-op, entry time included', () => {
    const first = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T1 }).object;
    const live = stored(first);
    const { object } = serverSideApply({ live, applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T2 });
    assert.deepEqual(object, live);
    const changed = serverSideApply({ live, applied: ct({ cronSpec: 'y', image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T2 }).object;
    assert.equal(entry(changed, 'kubectl').time, T2);
  });

  test('same value applied by two managers: shared, no conflict; an omitted shared field stays', () => {
    const a = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'alice', force: false, apiVersion: GV, now: T1 }).object;
    const b = serverSideApply({ live: stored(a), applied: ct({ image: 'a', replicas: 2 }), manager: 'bob', force: false, apiVersion: GV, now: T1 }).object;
    assert.deepEqual(ownedPaths(entry(b, 'alice')), ['.spec.cronSpec', '.spec.image']);
    assert.deepEqual(ownedPaths(entry(b, 'bob')), ['.spec.image', '.spec.replicas']);
    // alice drops image: bob still owns it, so it stays
    const c = serverSideApply({ live: stored(b), applied: ct({ cronSpec: 'x' }), manager: 'alice', force: false, apiVersion: GV, now: T2 }).object;
    assert.deepEqual(c.spec, { cronSpec: 'x', image: 'a', replicas: 2 });
    assert.deepEqual(ownedPaths(entry(c, 'alice')), ['.spec.cronSpec']);
  });

  test('changing a field another applier owns is a 409 naming manager and field', () => {
    const a = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'alice', force: false, apiVersion: GV, now: T1 }).object;
    const err = conflictOf(() => serverSideApply({ live: stored(a), applied: ct({ image: 'b' }), manager: 'bob', force: false, apiVersion: GV, now: T2 }));
    assert.equal(err.code, 409);
    assert.equal(err.reason, 'Conflict');
    assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "alice": .spec.image');
    assert.deepEqual(err.details?.causes, [{ reason: 'FieldManagerConflict', message: 'conflict with "alice"', field: '.spec.image' }]);
  });

  test('conflict with a client-side-apply (Update) manager names its apiVersion, as the contract shows', () => {
    const created = stored(ct({ cronSpec: 'x', image: 'a' }));
    created.metadata.managedFields = recordUpdate({ updated: created, manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: GV, now: T1 });
    const err = conflictOf(() => serverSideApply({ live: created, applied: ct({ cronSpec: 'x', image: 'b' }), manager: 'kubectl', force: false, apiVersion: GV, now: T2 }));
    assert.equal(err.message, `Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using ${GV}: .spec.image`);
    assert.deepEqual(err.toStatus().details, { causes: [{ reason: 'FieldManagerConflict', message: `conflict with "kubectl-client-side-apply" using ${GV}`, field: '.spec.image' }] });
  });

  test('several conflicts are grouped by manager', () => {
    const a = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'alice', force: false, apiVersion: GV, now: T1 }).object;
    const b = serverSideApply({ live: stored(a), applied: ct({ replicas: 1 }), manager: 'bob', force: false, apiVersion: GV, now: T1 }).object;
    const err = conflictOf(() => serverSideApply({ live: stored(b), applied: ct({ cronSpec: 'y', image: 'b', replicas: 3 }), manager: 'carol', force: false, apiVersion: GV, now: T2 }));
    assert.equal(err.message, 'Apply failed with 3 conflicts: conflicts with "alice":\n- .spec.cronSpec\n- .spec.image\nconflicts with "bob":\n- .spec.replicas');
    assert.equal(err.details?.causes?.length, 3);
  });

  test('force takes ownership of the conflicting fields only', () => {
    const a = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'alice', force: false, apiVersion: GV, now: T1 }).object;
    const { object } = serverSideApply({ live: stored(a), applied: ct({ image: 'b' }), manager: 'bob', force: true, apiVersion: GV, now: T2 });
    assert.deepEqual(object.spec, { cronSpec: 'x', image: 'b' });
    assert.deepEqual(ownedPaths(entry(object, 'alice')), ['.spec.cronSpec']);
    assert.deepEqual(ownedPaths(entry(object, 'bob')), ['.spec.image']);
  });

  test('an object nobody tracked is owned by before-first-apply', () => {
    const live = stored({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { a: '1' } });
    const err = conflictOf(() => serverSideApply({ live, applied: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '2' } }, manager: 'kubectl', force: false, apiVersion: 'v1', now: T2 }));
    assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "before-first-apply" using v1: .data.a');
  });

  test('keyed lists merge by name: each manager keeps its own containers', () => {
    const job = (containers: unknown[]): KubeObject => ({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { template: { spec: { containers } } } });
    const a = serverSideApply({ applied: job([{ name: 'app', image: 'a:1' }]), manager: 'alice', force: false, apiVersion: 'batch/v1', now: T1 }).object;
    assert.deepEqual(a.metadata.managedFields![0]!.fieldsV1, {
      'f:spec': { 'f:template': { 'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:name': {} } } } } },
    });
    const b = serverSideApply({ live: stored(a), applied: job([{ name: 'side', image: 's:1' }]), manager: 'bob', force: false, apiVersion: 'batch/v1', now: T1 }).object;
    const containers = () => (b.spec as any).template.spec.containers;
    assert.deepEqual(containers(), [{ name: 'app', image: 'a:1' }, { name: 'side', image: 's:1' }]);
    const err = conflictOf(() => serverSideApply({ live: stored(b), applied: job([{ name: 'app', image: 'a:2' }]), manager: 'bob', force: false, apiVersion: 'batch/v1', now: T2 }));
    assert.equal(err.details?.causes?.[0]?.field, '.spec.template.spec.containers[name="app"].image');
    // alice stops applying her container: it goes, bob's stays
    const c = serverSideApply({ live: stored(b), applied: job([]), manager: 'alice', force: false, apiVersion: 'batch/v1', now: T2 }).object;
    assert.deepEqual((c.spec as any).template.spec.containers, [{ name: 'side', image: 's:1' }]);
  });

  test('CRD schema list types: map lists by key, other lists atomic', () => {
    const schema = {
      type: 'object',
      properties: {
        spec: {
          type: 'object',
          properties: {
            ports: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['port'], items: { type: 'object' } },
            args: { type: 'array', items: { type: 'string' } },
          },
        },
      },
    };
    const a = serverSideApply({ applied: ct({ ports: [{ port: 80, name: 'http' }], args: ['a'] }), manager: 'alice', force: false, apiVersion: GV, now: T1, schema }).object;
    assert.deepEqual(ownedPaths(entry(a, 'alice')), ['.spec.args', '.spec.ports[port=80]', '.spec.ports[port=80].name', '.spec.ports[port=80].port']);
    const b = serverSideApply({ live: stored(a), applied: ct({ ports: [{ port: 443 }] }), manager: 'bob', force: false, apiVersion: GV, now: T1, schema }).object;
    assert.deepEqual((b.spec as any).ports, [{ port: 80, name: 'http' }, { port: 443 }]);
    const err = conflictOf(() => serverSideApply({ live: stored(b), applied: ct({ args: ['b'] }), manager: 'bob', force: false, apiVersion: GV, now: T2, schema }));
    assert.equal(err.details?.causes?.[0]?.field, '.spec.args');
  });

  test('status subresource: main-resource apply leaves status, /status apply touches only status', () => {
    const created = serverSideApply({ applied: ct({ cronSpec: 'x' }, { status: { ready: true } }), manager: 'kubectl', force: false, apiVersion: GV, now: T1, statusSubresource: true }).object;
    assert.equal(created.status, undefined);
    assert.deepEqual(ownedPaths(entry(created, 'kubectl')), ['.spec.cronSpec']);
    const live = { ...stored(created), status: { ready: true } };
    const main = serverSideApply({ live, applied: ct({ cronSpec: 'y' }, { status: { ready: false } }), manager: 'kubectl', force: false, apiVersion: GV, now: T1, statusSubresource: true }).object;
    assert.deepEqual(main.status, { ready: true });
    assert.deepEqual(main.spec, { cronSpec: 'y' });
    const st = serverSideApply({ live: stored(main), applied: ct({ cronSpec: 'z' }, { status: { ready: false } }), manager: 'ctrl', force: true, apiVersion: GV, now: T2, subresource: 'status', statusSubresource: true }).object;
    assert.deepEqual(st.status, { ready: false });
    assert.deepEqual(st.spec, { cronSpec: 'y' });
    const e = entry(st, 'ctrl');
    assert.equal(e.subresource, 'status');
    assert.deepEqual(ownedPaths(e), ['.status.ready']);
  });

  test('managedFields in the body are neither trusted nor owned', () => {
    const applied = ct({ image: 'a' });
    applied.metadata.managedFields = [{ manager: 'evil', operation: 'Apply', apiVersion: GV, time: T1, fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }];
    applied.metadata.resourceVersion = '99';
    const { object } = serverSideApply({ applied, manager: 'kubectl', force: false, apiVersion: GV, now: T1 });
    assert.deepEqual(object.metadata.managedFields!.map((m) => m.manager), ['kubectl']);
    assert.deepEqual(ownedPaths(object.metadata.managedFields![0]!), ['.spec.image']);
  });
});

describe('recordUpdate', () => {
  test('create: the writer owns every field', () => {
    const obj = stored(ct({ cronSpec: 'x', image: 'a' }));
    const mf = recordUpdate({ updated: obj, manager: 'kubectl-create', operation: 'Update', apiVersion: GV, now: T1 });
    assert.equal(mf.length, 1);
    assert.deepEqual({ ...mf[0], fieldsV1: undefined }, { manager: 'kubectl-create', operation: 'Update', apiVersion: GV, time: T1, fieldsType: 'FieldsV1', fieldsV1: undefined });
    assert.deepEqual(ownedPaths(mf[0]!), ['.spec.cronSpec', '.spec.image']);
  });

  test('an update takes changed fields from others; removed fields leave every set', () => {
    const a = serverSideApply({ applied: ct({ cronSpec: 'x', image: 'a', suspend: false }), manager: 'kubectl', force: false, apiVersion: GV, now: T1 }).object;
    const updated = stored(ct({ cronSpec: 'x', image: 'b' }));
    updated.metadata.labels = { team: 'ops' };
    const mf = recordUpdate({ live: stored(a), updated, manager: 'kubectl-edit', operation: 'Update', apiVersion: GV, now: T2 });
    const by = (m: string) => mf.find((e) => e.manager === m)!;
    assert.deepEqual(ownedPaths(by('kubectl')), ['.spec.cronSpec']);
    assert.deepEqual(ownedPaths(by('kubectl-edit')), ['.metadata.labels.team', '.spec.image']);
    // a later apply by kubectl with its old image now conflicts with the editor
    const live = { ...updated, metadata: { ...updated.metadata, managedFields: mf } };
    const err = conflictOf(() => serverSideApply({ live, applied: ct({ cronSpec: 'x', image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T2 }));
    assert.equal(err.message, `Apply failed with 1 conflict: conflict with "kubectl-edit" using ${GV}: .spec.image`);
  });

  test('a no-op update changes nothing, and a manager left with no fields disappears', () => {
    const a = serverSideApply({ applied: ct({ image: 'a' }), manager: 'kubectl', force: false, apiVersion: GV, now: T1 }).object;
    const same = recordUpdate({ live: stored(a), updated: stored(a), manager: 'other', operation: 'Update', apiVersion: GV, now: T2 });
    assert.deepEqual(same, a.metadata.managedFields);
    const taken = recordUpdate({ live: stored(a), updated: stored(ct({ image: 'z' })), manager: 'other', operation: 'Update', apiVersion: GV, now: T2 });
    assert.deepEqual(taken.map((e) => e.manager), ['other']);
  });

  test('status writes are recorded with the subresource', () => {
    const live = stored(ct({ image: 'a' }));
    const mf = recordUpdate({ live, updated: stored(ct({ image: 'a' }, { status: { ready: true } })), manager: 'worker', operation: 'Update', apiVersion: GV, now: T1, subresource: 'status' });
    assert.equal(mf[0]!.subresource, 'status');
    assert.deepEqual(ownedPaths(mf[0]!), ['.status.ready']);
  });
});

test('managerFromRequest: fieldManager, else the User-Agent up to "/"', () => {
  assert.equal(managerFromRequest('kubectl-client-side-apply', 'kubectl/v1.32.4 (linux/amd64)'), 'kubectl-client-side-apply');
  assert.equal(managerFromRequest(undefined, 'kubectl/v1.32.4 (linux/amd64) kubernetes/abc'), 'kubectl');
  assert.equal(managerFromRequest(undefined, 'node'), 'node');
  assert.equal(managerFromRequest(undefined, 'x'.repeat(200) + '/1').length, 128);
  assert.equal(managerFromRequest(undefined, undefined), '');
});

test('fieldsV1 trees round-trip', () => {
  const tree = { 'f:metadata': { 'f:finalizers': { '.': {}, 'v:"a"': {} } }, 'f:spec': { '.': {}, 'f:x': {}, 'f:l': { 'k:{"name":"n"}': { '.': {}, 'f:name': {} } } } };
  assert.deepEqual(fieldSetToFieldsV1(fieldsV1ToFieldSet(tree)), tree);
});

describe('properties', () => {
  const scalar = fc.oneof(fc.string({ maxLength: 4 }), fc.integer(), fc.boolean());
  const key = fc.constantFrom('a', 'b', 'c', 'd');
  const tree = fc.letrec((tie) => ({
    node: fc.dictionary(key, fc.oneof({ depthSize: 'small' }, scalar, tie('node')), { maxKeys: 3 }),
  })).node as fc.Arbitrary<Record<string, unknown>>;

  test('applying the same configuration twice changes nothing', () => {
    fc.assert(fc.property(tree, (spec) => {
      const first = serverSideApply({ applied: ct(spec), manager: 'm', force: false, apiVersion: GV, now: T1 }).object;
      const second = serverSideApply({ live: stored(first), applied: ct(spec), manager: 'm', force: false, apiVersion: GV, now: T1 }).object;
      assert.deepEqual(second.spec, first.spec);
      assert.deepEqual(second.metadata.managedFields, first.metadata.managedFields);
    }), { numRuns: 200 });
  });

  test('a forced apply leaves every applied value in the result', () => {
    fc.assert(fc.property(tree, tree, (one, two) => {
      const first = serverSideApply({ applied: ct(one), manager: 'a', force: false, apiVersion: GV, now: T1 }).object;
      const { object } = serverSideApply({ live: stored(first), applied: ct(two), manager: 'b', force: true, apiVersion: GV, now: T2 });
      const check = (want: unknown, got: unknown): void => {
        if (want && typeof want === 'object' && Object.keys(want).length > 0) {
          for (const [k, v] of Object.entries(want)) check(v, (got as Record<string, unknown>)?.[k]);
        } else if (!(want && typeof want === 'object')) {
          assert.deepEqual(got, want);
        }
      };
      check(two, object.spec);
    }), { numRuns: 200 });
  });
});
