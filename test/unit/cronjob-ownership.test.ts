// The owned-fields stamp: the relay trusts a CronJob as the worker's own write only
// while the fields kreconcile owns still hash to the stamp.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { isAsWritten, ownedFieldsDigest, OWNED_FIELDS_ANNOTATION } from '../../services/common/cronjob-ownership.ts';
import { desiredCronJob, mergeOwned, type CronJob, type CronTab } from '../../services/worker/reconcilers/crontab.ts';

const UID = '22222222-2222-2222-2222-222222222222';

function cronTab(spec: Partial<CronTab['spec']> = {}): CronTab {
  return { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'nightly', namespace: 'team-a', uid: UID, generation: 1 }, spec: { cronSpec: '0 3 * * *', image: 'busybox', ...spec } };
}

/** What an API server hands back: defaults filled in, server metadata, key order of its own. */
function asStored(cj: CronJob): CronJob {
  const out = structuredClone(cj);
  out.metadata = { uid: 'cj-uid', resourceVersion: '7', generation: 2, creationTimestamp: '2026-01-01T00:00:00Z', ...out.metadata };
  out.metadata.ownerReferences = out.metadata.ownerReferences!.map((r) => ({ blockOwnerDeletion: r.blockOwnerDeletion, controller: r.controller, uid: r.uid, name: r.name, kind: r.kind, apiVersion: r.apiVersion }));
  out.spec = { suspend: false, concurrencyPolicy: 'Allow', successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 1, ...out.spec! };
  out.spec.jobTemplate.spec!.template.spec!.containers[0]!.terminationMessagePath = '/dev/termination-log';
  return out;
}

describe('the owned-fields stamp', () => {
  test('a CronJob as the worker builds it, after the server defaulted it, is as written', () => {
    assert.ok(isAsWritten(desiredCronJob(cronTab())));
    assert.ok(isAsWritten(asStored(desiredCronJob(cronTab({ replicas: 2, timeZone: 'UTC' })))));
  });

  test('an update as the worker makes it is as written', () => {
    const live = asStored(desiredCronJob(cronTab()));
    assert.ok(isAsWritten(asStored(mergeOwned(desiredCronJob(cronTab({ image: 'busybox:2', suspend: true })), live))));
  });

  test('a change to any owned field, a missing or edited stamp, or deletion is not', () => {
    fc.assert(
      fc.property(fc.constantFrom<(cj: CronJob) => void>(
        (cj) => (cj.spec!.schedule = '0 4 * * *'),
        (cj) => (cj.spec!.suspend = true),
        (cj) => (cj.spec!.concurrencyPolicy = 'Forbid'),
        (cj) => (cj.spec!.timeZone = 'Europe/Paris'),
        (cj) => (cj.spec!.jobTemplate.spec!.parallelism = 5),
        (cj) => (cj.spec!.jobTemplate.spec!.completions = 5),
        (cj) => (cj.spec!.jobTemplate.spec!.template.spec!.restartPolicy = 'Never'),
        (cj) => (cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image = 'other'),
        (cj) => (cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!.args = ['x']),
        (cj) => (cj.spec!.jobTemplate.spec!.template.spec!.containers[0]!.name = 'renamed'),
        (cj) => (cj.metadata!.labels = { 'app.kubernetes.io/managed-by': 'kreconcile' }),
        (cj) => (cj.metadata!.ownerReferences![0]!.blockOwnerDeletion = false),
        (cj) => (cj.metadata!.ownerReferences![0]!.uid = 'someone-else'),
        (cj) => delete cj.metadata!.annotations,
        (cj) => (cj.metadata!.annotations![OWNED_FIELDS_ANNOTATION] = 'x'),
        (cj) => (cj.metadata!.deletionTimestamp = '2026-01-01T00:00:00Z' as never),
      ), (mutate) => {
        const cj = asStored(desiredCronJob(cronTab()));
        mutate(cj);
        assert.equal(isAsWritten(cj), false);
      }),
      { numRuns: 64 },
    );
  });

  test('fields kreconcile does not own leave it as written', () => {
    const cj = asStored(desiredCronJob(cronTab()));
    cj.metadata!.labels!.team = 'a';
    cj.metadata!.annotations!['example.com/note'] = 'x';
    cj.spec!.successfulJobsHistoryLimit = 10;
    cj.spec!.jobTemplate.spec!.template.spec!.containers.push({ name: 'sidecar', image: 'envoy' });
    assert.ok(isAsWritten(cj));
  });

  test('the digest is 22 base64url characters and depends on the owner', () => {
    const cj = desiredCronJob(cronTab());
    assert.match(ownedFieldsDigest(cj, UID), /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(ownedFieldsDigest(cj, UID), ownedFieldsDigest(cj, 'other'));
  });
});
