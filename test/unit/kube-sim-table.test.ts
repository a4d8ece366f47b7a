import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { wantsTable, toTable, toTableRowEvent, humanDuration, formatLabelSelector, TABLE_CONTENT_TYPE, tableColumns } from '../../services/kube-sim/table.ts';
import type { KubeObject, ResourceInfo } from '../../services/kube-sim/types.ts';

const NOW = new Date('2025-06-10T12:00:00Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const S = 1000, M = 60 * S, H = 60 * M, D = 24 * H;

function res(partial: Partial<ResourceInfo> & Pick<ResourceInfo, 'group' | 'kind' | 'resource'>): ResourceInfo {
  return {
    version: 'v1', singular: partial.kind.toLowerCase(), listKind: `${partial.kind}List`, namespaced: true,
    verbs: ['get', 'list'], statusSubresource: false, builtin: true, ...partial,
  };
}
const secrets = res({ group: '', kind: 'Secret', resource: 'secrets' });
const obj = (kind: string, apiVersion: string, name: string, rest: Record<string, unknown> = {}, created = ago(3 * D)): KubeObject =>
  ({ apiVersion, kind, metadata: { name, namespace: 'default', creationTimestamp: created, resourceVersion: '7' }, ...rest });

describe('wantsTable', () => {
  test('true for the Accept kubectl get sends', () => {
    assert.equal(wantsTable('application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'), true);
    assert.equal(wantsTable('application/json; as=Table; g=meta.k8s.io; v=v1'), true);
  });
  test('false for plain JSON, protobuf, other as= and missing header', () => {
    assert.equal(wantsTable('application/json'), false);
    assert.equal(wantsTable(undefined), false);
    assert.equal(wantsTable('application/vnd.kubernetes.protobuf,application/json'), false);
    assert.equal(wantsTable('application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io'), false);
    assert.equal(wantsTable('application/json;as=Table;v=v1beta1;g=meta.k8s.io'), false);
  });
  test('content type names Table v1', () => assert.equal(TABLE_CONTENT_TYPE, 'application/json;as=Table;v=v1;g=meta.k8s.io'));
});

describe('humanDuration matches apimachinery HumanDuration', () => {
  const cases: [number, string][] = [
    [-5 * S, '<invalid>'], [-1 * S, '0s'], [0, '0s'], [5 * S, '5s'], [119 * S, '119s'], [2 * M, '2m'], [2 * M + 5 * S, '2m5s'],
    [9 * M + 59 * S, '9m59s'], [10 * M + 30 * S, '10m'], [179 * M, '179m'], [3 * H, '3h'], [3 * H + 20 * M, '3h20m'],
    [8 * H + 20 * M, '8h'], [47 * H, '47h'], [2 * D, '2d'], [3 * D + 4 * H, '3d4h'], [8 * D, '8d'], [400 * D, '400d'],
    [730 * D, '2y'], [800 * D, '2y70d'], [10 * 365 * D, '10y'],
  ];
  for (const [ms, want] of cases) test(`${ms}ms → ${want}`, () => assert.equal(humanDuration(ms), want));
});

describe('toTable', () => {
  test('Secret: Name, Type, Data, Age with PartialObjectMetadata rows and list metadata', () => {
    const s = obj('Secret', 'v1', 's1', { type: 'Opaque', data: { a: 'eA==', b: 'eQ==' } });
    const t = toTable([s], secrets, { resourceVersion: '845', continue: 'tok', remainingItemCount: 3, now: NOW });
    assert.equal(t.kind, 'Table');
    assert.equal(t.apiVersion, 'meta.k8s.io/v1');
    assert.deepEqual(t.metadata, { resourceVersion: '845', continue: 'tok', remainingItemCount: 3 });
    assert.deepEqual(t.columnDefinitions.map((c) => c.name), ['Name', 'Type', 'Data', 'Age']);
    assert.equal(t.columnDefinitions[0]!.format, 'name');
    assert.deepEqual(t.rows[0]!.cells, ['s1', 'Opaque', 2, '3d']);
    assert.deepEqual(t.rows[0]!.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: s.metadata });
  });

  test('row objects follow includeObject', () => {
    const s = obj('Secret', 'v1', 's1', { data: {} });
    assert.equal(toTable([s], secrets, { resourceVersion: '1', includeObject: 'Object', now: NOW }).rows[0]!.object, s);
    assert.equal('object' in toTable([s], secrets, { resourceVersion: '1', includeObject: 'None', now: NOW }).rows[0]!, false);
    assert.deepEqual(toTable([], secrets, { resourceVersion: '1' }).rows, []);
  });

  test('Namespace and ConfigMap', () => {
    const ns = obj('Namespace', 'v1', 'default', { status: { phase: 'Active' } }, ago(45 * S));
    assert.deepEqual(toTable([ns], res({ group: '', kind: 'Namespace', resource: 'namespaces', namespaced: false }), { resourceVersion: '1', now: NOW }).rows[0]!.cells, ['default', 'Active', '45s']);
    const cm = obj('ConfigMap', 'v1', 'c', { data: { a: '1' }, binaryData: { b: 'AA==' } });
    assert.deepEqual(toTable([cm], res({ group: '', kind: 'ConfigMap', resource: 'configmaps' }), { resourceVersion: '1', now: NOW }).rows[0]!.cells, ['c', 2, '3d']);
  });

  test('CronJob columns and cells (wide columns carried at priority 1)', () => {
    const cj = obj('CronJob', 'batch/v1', 'cj', {
      spec: { schedule: '*/5 * * * *', suspend: false, jobTemplate: { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox' }, { name: 'd', image: 'nginx' }] } } } } },
      status: { active: [{ name: 'j1' }], lastScheduleTime: ago(90 * S) },
    });
    const t = toTable([cj], res({ group: 'batch', kind: 'CronJob', resource: 'cronjobs' }), { resourceVersion: '1', now: NOW });
    assert.deepEqual(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name), ['Name', 'Schedule', 'Timezone', 'Suspend', 'Active', 'Last Schedule', 'Age']);
    assert.deepEqual(t.rows[0]!.cells, ['cj', '*/5 * * * *', '<none>', 'False', 1, '90s', '3d', 'c,d', 'busybox,nginx', '<none>']);
    const never = obj('CronJob', 'batch/v1', 'cj2', { spec: { schedule: '@daily', timeZone: 'Etc/UTC' } });
    assert.deepEqual(toTable([never], res({ group: 'batch', kind: 'CronJob', resource: 'cronjobs' }), { resourceVersion: '1', now: NOW }).rows[0]!.cells.slice(0, 7),
      ['cj2', '@daily', 'Etc/UTC', '<unset>', 0, '<none>', '3d']);
  });

  test('Job status, completions and duration', () => {
    const jobs = res({ group: 'batch', kind: 'Job', resource: 'jobs' });
    const done = obj('Job', 'batch/v1', 'j', {
      spec: { completions: 1, selector: { matchLabels: { 'controller-uid': 'u' } } },
      status: { succeeded: 1, startTime: ago(5 * M), completionTime: ago(4 * M), conditions: [{ type: 'Complete', status: 'True' }] },
    });
    const running = obj('Job', 'batch/v1', 'k', { spec: { parallelism: 3 }, status: { startTime: ago(30 * S) } });
    const t = toTable([done, running], jobs, { resourceVersion: '1', now: NOW });
    assert.deepEqual(t.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name), ['Name', 'Status', 'Completions', 'Duration', 'Age']);
    assert.deepEqual(t.rows[0]!.cells.slice(0, 5), ['j', 'Complete', '1/1', '60s', '3d']);
    assert.equal(t.rows[0]!.cells[7], 'controller-uid=u');
    assert.deepEqual(t.rows[1]!.cells.slice(0, 5), ['k', 'Running', '0/1 of 3', '30s', '3d']);
  });

  test('Lease holder, CRD created-at, webhook count', () => {
    const lease = obj('Lease', 'coordination.k8s.io/v1', 'relay', { spec: { holderIdentity: 'pod-a' } });
    assert.deepEqual(toTable([lease], res({ group: 'coordination.k8s.io', kind: 'Lease', resource: 'leases' }), { resourceVersion: '1', now: NOW }).rows[0]!.cells, ['relay', 'pod-a', '3d']);
    const created = ago(3 * D);
    const crd = obj('CustomResourceDefinition', 'apiextensions.k8s.io/v1', 'crontabs.stable.example.com', {}, created);
    const crdTable = toTable([crd], res({ group: 'apiextensions.k8s.io', kind: 'CustomResourceDefinition', resource: 'customresourcedefinitions', namespaced: false }), { resourceVersion: '1', now: NOW });
    assert.deepEqual(crdTable.columnDefinitions.map((c) => [c.name, c.type]), [['Name', 'string'], ['Created At', 'date']]);
    assert.deepEqual(crdTable.rows[0]!.cells, ['crontabs.stable.example.com', created]);
    const vwc = obj('ValidatingWebhookConfiguration', 'admissionregistration.k8s.io/v1', 'w', { webhooks: [{}, {}] });
    assert.deepEqual(toTable([vwc], res({ group: 'admissionregistration.k8s.io', kind: 'ValidatingWebhookConfiguration', resource: 'validatingwebhookconfigurations', namespaced: false }), { resourceVersion: '1', now: NOW }).rows[0]!.cells, ['w', 2, '3d']);
  });

  test('core and events.k8s.io Events print alike', () => {
    const core = obj('Event', 'v1', 'ct.1', {
      involvedObject: { kind: 'CronTab', name: 'ct', namespace: 'default' }, reason: 'Synced', message: ' made cronjob ', type: 'Normal',
      count: 3, firstTimestamp: ago(10 * M), lastTimestamp: ago(1 * M), source: { component: 'kreconcile-worker' },
    });
    const ev = toTable([core], res({ group: '', kind: 'Event', resource: 'events' }), { resourceVersion: '1', now: NOW });
    assert.deepEqual(ev.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name), ['Last Seen', 'Type', 'Reason', 'Object', 'Message']);
    assert.deepEqual(ev.rows[0]!.cells, ['60s', 'Normal', 'Synced', 'crontab/ct', '', 'kreconcile-worker', 'made cronjob', '10m', 3, 'ct.1']);
    const newer = obj('Event', 'events.k8s.io/v1', 'ct.2', {
      regarding: { kind: 'Secret', name: 's' }, reason: 'WeakPassword', note: 'too short', type: 'Warning', eventTime: '2025-06-10T11:59:00.000000Z', reportingController: 'kreconcile',
    });
    const ev2 = toTable([newer], res({ group: 'events.k8s.io', kind: 'Event', resource: 'events' }), { resourceVersion: '1', now: NOW });
    assert.deepEqual(ev2.rows[0]!.cells, ['60s', 'Warning', 'WeakPassword', 'secret/s', '', 'kreconcile', 'too short', '60s', 1, 'ct.2']);
  });

  test('unknown built-in: Name, Age', () => {
    const t = toTable([obj('Pod', 'v1', 'p')], res({ group: '', kind: 'Pod', resource: 'pods' }), { resourceVersion: '1', now: NOW });
    assert.deepEqual(t.columnDefinitions.map((c) => c.name), ['Name', 'Age']);
    assert.deepEqual(t.rows[0]!.cells, ['p', '3d']);
  });
});

describe('custom resources', () => {
  const crontabs = res({
    group: 'stable.example.com', kind: 'CronTab', resource: 'crontabs', builtin: false,
    printerColumns: [
      { name: 'Schedule', type: 'string', jsonPath: '.spec.cronSpec' },
      { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Image', type: 'string', jsonPath: '.spec.image', priority: 1, description: 'the image' },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend' },
      { name: 'Seen', type: 'date', jsonPath: '.status.lastScheduleTime' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });

  test('printer columns evaluated by JSONPath, typed, missing values null', () => {
    const ct = obj('CronTab', 'stable.example.com/v1', 'ct', {
      spec: { cronSpec: '* * * * *', replicas: 2, image: 'busybox' },
      status: { conditions: [{ type: 'Other', status: 'False' }, { type: 'Ready', status: 'True' }], lastScheduleTime: ago(5 * S) },
    });
    const t = toTable([ct, obj('CronTab', 'stable.example.com/v1', 'empty')], crontabs, { resourceVersion: '9', now: NOW });
    assert.deepEqual(t.columnDefinitions.map((c) => [c.name, c.type, c.priority]), [
      ['Name', 'string', 0], ['Schedule', 'string', 0], ['Replicas', 'integer', 0], ['Ready', 'string', 0], ['Image', 'string', 1],
      ['Suspended', 'boolean', 0], ['Seen', 'date', 0], ['Age', 'date', 0],
    ]);
    assert.equal(t.columnDefinitions[4]!.description, 'the image');
    assert.deepEqual(t.rows[0]!.cells, ['ct', '* * * * *', 2, 'True', 'busybox', null, '5s', '3d']);
    assert.deepEqual(t.rows[1]!.cells, ['empty', null, null, null, null, null, null, '3d']);
  });

  test('no printer columns: Name and Age', () => {
    const plain = { ...crontabs, printerColumns: undefined };
    assert.deepEqual(tableColumns(plain).map((c) => c.name), ['Name', 'Age']);
    assert.deepEqual(toTable([obj('CronTab', 'stable.example.com/v1', 'ct')], plain, { resourceVersion: '1', now: NOW }).rows[0]!.cells, ['ct', '3d']);
  });

  test('watch event: a one-row Table, columns optional', () => {
    const ct = obj('CronTab', 'stable.example.com/v1', 'ct', { spec: { cronSpec: 'x' } });
    const first = toTableRowEvent(ct, crontabs, { now: NOW });
    assert.equal(first.rows.length, 1);
    assert.equal(first.metadata.resourceVersion, '7');
    assert.ok(first.columnDefinitions.length > 0);
    const later = toTableRowEvent(ct, crontabs, { now: NOW, withColumns: false });
    assert.deepEqual(later.columnDefinitions, []);
    assert.equal(later.rows[0]!.cells[1], 'x');
  });
});

test('formatLabelSelector', () => {
  assert.equal(formatLabelSelector(undefined), '<none>');
  assert.equal(formatLabelSelector({}), '<none>');
  assert.equal(formatLabelSelector({ matchLabels: { a: 'b' }, matchExpressions: [{ key: 'c', operator: 'In', values: ['e', 'd'] }, { key: 'x', operator: 'DoesNotExist' }] }), 'a=b,c in (d,e),!x');
});
