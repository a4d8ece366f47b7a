import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ownedFieldsDigest } from '../../services/common/cronjob-ownership.ts';
import {
  desiredCronJob,
  desiredStatus,
  ownership,
  plan,
  rememberedSpecCount,
  specProblems,
  statusChange,
  type CronJob,
  type CronTab,
  type CronTabSpec,
} from '../../services/worker/reconcilers/crontab.ts';

const UID = '11111111-1111-1111-1111-111111111111';

function cronTab(spec: Partial<CronTabSpec> = {}, meta: Partial<CronTab['metadata']> = {}, status?: CronTab['status']): CronTab {
  return {
    apiVersion: 'stable.example.com/v1',
    kind: 'CronTab',
    metadata: { name: 'nightly', namespace: 'team-a', uid: UID, resourceVersion: '42', generation: 3, ...meta },
    spec: { cronSpec: '*/5 * * * *', image: 'busybox:1.36', replicas: 2, ...spec },
    ...(status ? { status } : {}),
  };
}

/** What an API server hands back for our CronJob: defaults filled in, metadata and status added. */
function asStored(cj: CronJob, extra: { rv?: string } = {}): CronJob {
  const stored = structuredClone(cj);
  Object.assign(stored.metadata!, {
    uid: 'cj-uid',
    resourceVersion: extra.rv ?? '100',
    generation: 1,
    creationTimestamp: '2026-01-01T00:00:00Z',
    managedFields: [{ manager: 'kreconcile-worker', operation: 'Update', apiVersion: 'batch/v1', time: '2026-01-01T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: {} }],
  });
  const spec = stored.spec!;
  spec.suspend ??= false;
  spec.concurrencyPolicy ??= 'Allow';
  spec.successfulJobsHistoryLimit = 3;
  spec.failedJobsHistoryLimit = 1;
  const job = spec.jobTemplate.spec!;
  job.backoffLimit = 6;
  const pod = job.template.spec!;
  pod.dnsPolicy = 'ClusterFirst';
  pod.schedulerName = 'default-scheduler';
  pod.terminationGracePeriodSeconds = 30;
  pod.securityContext = {};
  pod.containers = pod.containers.map((c) => ({ ...c, imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', resources: {} }));
  stored.status = { lastScheduleTime: '2026-01-01T00:05:00Z' };
  return stored;
}

describe('desiredCronJob', () => {
  test('builds the CronJob from the CronTab, owned by it', () => {
    const cj = desiredCronJob(cronTab());
    assert.deepEqual(cj, {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: {
        name: 'nightly',
        namespace: 'team-a',
        labels: { 'app.kubernetes.io/managed-by': 'kreconcile', 'kreconcile.io/crontab': 'nightly' },
        annotations: { 'kreconcile.io/owned-fields': ownedFieldsDigest(cj, UID) },
        ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'nightly', uid: UID, controller: true, blockOwnerDeletion: true }],
      },
      spec: {
        schedule: '*/5 * * * *',
        jobTemplate: {
          spec: {
            parallelism: 2,
            completions: 2,
            template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'crontab', image: 'busybox:1.36' }] } },
          },
        },
      },
    });
  });

  test('carries timeZone, suspend, concurrencyPolicy, command and args only when set', () => {
    const cj = desiredCronJob(cronTab({ timeZone: 'Europe/Paris', suspend: true, concurrencyPolicy: 'Forbid', command: ['sh', '-c'], args: ['date'] }));
    assert.equal(cj.spec!.timeZone, 'Europe/Paris');
    assert.equal(cj.spec!.suspend, true);
    assert.equal(cj.spec!.concurrencyPolicy, 'Forbid');
    assert.deepEqual(cj.spec!.jobTemplate.spec!.template.spec!.containers[0], { name: 'crontab', image: 'busybox:1.36', command: ['sh', '-c'], args: ['date'] });
    const plain = desiredCronJob(cronTab());
    assert.ok(!('timeZone' in plain.spec!) && !('suspend' in plain.spec!) && !('concurrencyPolicy' in plain.spec!));
  });

  test('replicas defaults to 1', () => {
    const { replicas: _, ...spec } = cronTab().spec;
    const cj = desiredCronJob({ ...cronTab(), spec });
    assert.equal(cj.spec!.jobTemplate.spec!.parallelism, 1);
    assert.equal(cj.spec!.jobTemplate.spec!.completions, 1);
  });

  test('is deterministic', () => {
    assert.deepEqual(desiredCronJob(cronTab()), desiredCronJob(cronTab()));
  });
});

describe('plan', () => {
  test('when the CronJob is missing: create the desired one', () => {
    assert.deepEqual(plan(cronTab(), undefined), { op: 'create', obj: desiredCronJob(cronTab()) });
  });

  test('when the CronJob matches, with every server default filled in: nothing to do', () => {
    assert.deepEqual(plan(cronTab(), asStored(desiredCronJob(cronTab()))), { op: 'none' });
  });

  test('an explicit suspend:false or concurrencyPolicy:Allow in the CronTab equals the server default', () => {
    const ct = cronTab({ suspend: false, concurrencyPolicy: 'Allow' });
    assert.deepEqual(plan(ct, asStored(desiredCronJob(cronTab()))), { op: 'none' });
  });

  test('when the image changed: update only what we own, keeping resourceVersion and foreign fields', () => {
    const stored = asStored(desiredCronJob(cronTab()), { rv: '77' });
    stored.metadata!.labels!['team'] = 'a';
    stored.spec!.jobTemplate.spec!.template.spec!.containers.push({ name: 'sidecar', image: 'envoy' });
    const step = plan(cronTab({ image: 'busybox:1.37' }), stored);
    assert.equal(step.op, 'update');
    if (step.op !== 'update') return;
    assert.deepEqual(step.changed, ['container.image']);
    assert.equal(step.obj.metadata!.resourceVersion, '77');
    assert.equal(step.obj.metadata!.labels!['team'], 'a');
    assert.equal(step.obj.spec!.successfulJobsHistoryLimit, 3);
    const containers = step.obj.spec!.jobTemplate.spec!.template.spec!.containers;
    assert.deepEqual(containers.map((c) => [c.name, c.image]), [['crontab', 'busybox:1.37'], ['sidecar', 'envoy']]);
    assert.equal(containers[0]!.imagePullPolicy, 'IfNotPresent', 'server-filled container fields are kept');
    assert.equal(step.obj.metadata!.managedFields, undefined, 'managedFields are not sent back');
    // The merged object is itself converged.
    assert.deepEqual(plan(cronTab({ image: 'busybox:1.37' }), step.obj), { op: 'none' });
  });

  test('schedule, replicas, suspend, timeZone and concurrencyPolicy changes are each detected', () => {
    const stored = asStored(desiredCronJob(cronTab()));
    const cases: [Partial<CronTabSpec>, string[]][] = [
      [{ cronSpec: '0 * * * *' }, ['spec.schedule']],
      [{ replicas: 3 }, ['spec.jobTemplate.spec.parallelism', 'spec.jobTemplate.spec.completions']],
      [{ suspend: true }, ['spec.suspend']],
      [{ timeZone: 'UTC' }, ['spec.timeZone']],
      [{ concurrencyPolicy: 'Replace' }, ['spec.concurrencyPolicy']],
      [{ command: ['run'] }, ['container.command']],
    ];
    for (const [change, fields] of cases) {
      const step = plan(cronTab(change), stored);
      assert.equal(step.op, 'update', JSON.stringify(change));
      if (step.op === 'update') assert.deepEqual(step.changed, fields, JSON.stringify(change));
    }
  });

  test('a field dropped from the CronTab is reset on the CronJob', () => {
    const stored = asStored(desiredCronJob(cronTab({ timeZone: 'Europe/Paris', suspend: true })));
    const step = plan(cronTab(), stored);
    assert.equal(step.op, 'update');
    if (step.op !== 'update') return;
    assert.deepEqual(step.changed, ['spec.timeZone', 'spec.suspend']);
    assert.ok(!('timeZone' in step.obj.spec!));
    assert.equal(step.obj.spec!.suspend, false);
  });

  test('a drifted label or a lost ownerReference is restored', () => {
    const stored = asStored(desiredCronJob(cronTab()));
    stored.metadata!.labels!['kreconcile.io/crontab'] = 'other';
    const step = plan(cronTab(), stored);
    assert.ok(step.op === 'update' && step.changed.includes('metadata.labels.crontab'));
  });

  describe('when a CronJob of that name is not ours', () => {
    test('without an owner: NameConflict, untouched', () => {
      const foreign = asStored(desiredCronJob(cronTab()));
      delete foreign.metadata!.ownerReferences;
      const step = plan(cronTab(), foreign);
      assert.equal(step.op, 'conflict');
      assert.equal(ownership(foreign, cronTab()), 'foreign');
    });

    test('controlled by something else: NameConflict', () => {
      const foreign = asStored(desiredCronJob(cronTab()));
      foreign.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'x', uid: 'u', controller: true }];
      assert.equal(plan(cronTab(), foreign).op, 'conflict');
    });

    test('made by kreconcile for an earlier CronTab of this name: delete it, conditionally', () => {
      const orphan = asStored(desiredCronJob(cronTab({}, { uid: 'old-uid' })), { rv: '55' });
      assert.deepEqual(plan(cronTab(), orphan), { op: 'deleteOrphan', name: 'nightly', uid: 'cj-uid', resourceVersion: '55' });
    });
  });

  test('when the CronJob is being deleted: wait for it', () => {
    const going = asStored(desiredCronJob(cronTab()));
    going.metadata!.deletionTimestamp = '2026-01-01T00:00:00Z';
    assert.equal(plan(cronTab(), going).op, 'wait');
  });

  test('property: the stored form of the desired CronJob is always converged', () => {
    const spec = fc.record(
      {
        cronSpec: fc.constantFrom('*/5 * * * *', '0 0 * * *', '@hourly'),
        image: fc.stringMatching(/^[a-z][a-z0-9./:-]{0,20}$/),
        replicas: fc.integer({ min: 1, max: 50 }),
        timeZone: fc.constantFrom('UTC', 'Europe/Paris'),
        suspend: fc.boolean(),
        concurrencyPolicy: fc.constantFrom('Allow' as const, 'Forbid' as const, 'Replace' as const),
        command: fc.array(fc.string(), { maxLength: 3 }),
      },
      { requiredKeys: ['cronSpec', 'image'] },
    );
    fc.assert(
      fc.property(spec, (s) => {
        const ct = cronTab({});
        ct.spec = s;
        assert.deepEqual(plan(ct, asStored(desiredCronJob(ct))), { op: 'none' });
      }),
    );
  });
});

describe('status', () => {
  const now = new Date('2026-02-02T10:00:00.123Z');
  const stored = asStored(desiredCronJob(cronTab()));

  test('Ready=True mirrors the CronJob and the generation observed', () => {
    assert.deepEqual(desiredStatus(cronTab(), stored, { ready: true }, now), {
      observedGeneration: 3,
      cronJobName: 'nightly',
      lastScheduleTime: '2026-01-01T00:05:00Z',
      conditions: [
        { type: 'Ready', status: 'True', reason: 'Synced', message: 'CronJob nightly matches the spec', lastTransitionTime: '2026-02-02T10:00:00Z', observedGeneration: 3 },
      ],
    });
  });

  test('a converged status needs no write, and lastTransitionTime is kept while Ready does not flip', () => {
    const first = desiredStatus(cronTab(), stored, { ready: true }, now);
    const later = new Date('2026-02-03T00:00:00Z');
    const again = desiredStatus(cronTab({}, {}, first), stored, { ready: true }, later);
    assert.equal(again.conditions![0]!.lastTransitionTime, '2026-02-02T10:00:00Z');
    assert.equal(statusChange(cronTab({}, {}, first), again), undefined);
  });

  test('a flip to False gets a new lastTransitionTime and clears what no longer holds', () => {
    const ready = desiredStatus(cronTab(), stored, { ready: true }, now);
    const later = new Date('2026-02-03T00:00:00Z');
    const conflicted = desiredStatus(cronTab({}, {}, ready), undefined, { ready: false, reason: 'NameConflict', message: 'not ours' }, later);
    const patch = statusChange(cronTab({}, {}, ready), conflicted);
    assert.ok(patch);
    assert.equal(patch.cronJobName, null, 'null removes the field in a merge patch');
    assert.equal(patch.lastScheduleTime, null);
    assert.deepEqual(patch.conditions![0], { type: 'Ready', status: 'False', reason: 'NameConflict', message: 'not ours', lastTransitionTime: '2026-02-03T00:00:00Z', observedGeneration: 3 });
  });

  test('a new generation is a status change', () => {
    const first = desiredStatus(cronTab(), stored, { ready: true }, now);
    const bumped = cronTab({}, { generation: 4 }, first);
    const patch = statusChange(bumped, desiredStatus(bumped, stored, { ready: true }, now));
    assert.equal(patch?.observedGeneration, 4);
  });

  test('conditions of other types are kept', () => {
    const other = { type: 'Progressing', status: 'True' as const, reason: 'X' };
    const s = desiredStatus(cronTab({}, {}, { conditions: [other] }), stored, { ready: true }, now);
    assert.deepEqual(s.conditions!.map((c) => c.type), ['Progressing', 'Ready']);
  });
});

describe('specProblems', () => {
  test('remembers short specs, and checks long ones each time without keeping them', () => {
    const short = { cronSpec: '0 3 * * *', image: `busybox:${Math.random()}` };
    const before = rememberedSpecCount();
    assert.deepEqual(specProblems(short), []);
    assert.equal(rememberedSpecCount(), before + 1);
    for (let i = 0; i < 20; i++) {
      const long = { cronSpec: '0 3 * * *', image: `${i}`.padEnd(1 << 20, 'x') };
      assert.deepEqual(specProblems(long), []);
      assert.deepEqual(specProblems({ ...long, cronSpec: 'nope' }).map((p) => p.field), ['spec.cronSpec']);
    }
    assert.equal(rememberedSpecCount(), before + 1);
  });
});
