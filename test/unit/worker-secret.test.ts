import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assess, needsNamespace, planSecret, type Secret } from '../../services/worker/reconcilers/secret.ts';
import { buildEvent, microTime } from '../../services/worker/events.ts';

const policy = { minLength: 10, keys: ['password'] };
const WEAK_VALUE = 'Zq7xRb2';
const STRONG_VALUE = 'correct-horse-battery-staple';

function secret(password: string | undefined, opts: { type?: string; labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'db', namespace: 'team-a', uid: 'sec-uid', resourceVersion: '9', labels: opts.labels, annotations: opts.annotations },
    ...(opts.type ? { type: opts.type } : {}),
    data: password === undefined ? { user: Buffer.from('admin').toString('base64') } : { password: Buffer.from(password).toString('base64') },
  };
}

const weakAnnotation = { 'kreconcile.io/password-policy': 'weak' };
const exemptLabel = { 'kreconcile.io/password-policy': 'exempt' };

describe('assess', () => {
  test('names the key and the rule, never the value', () => {
    const a = assess(secret(WEAK_VALUE), policy);
    assert.equal(a.weak, true);
    assert.deepEqual(a.violations.map((v) => [v.key, v.rule]), [['password', 'min-length']]);
    assert.ok(!JSON.stringify(a).includes(WEAK_VALUE));
  });

  test('a well-known long password is weak too', () => {
    assert.deepEqual(assess(secret('1234567890'), policy).violations.map((v) => v.rule), ['well-known']);
  });

  test('types without a password and Secrets without the key are not weak', () => {
    assert.equal(assess(secret(WEAK_VALUE, { type: 'kubernetes.io/tls' }), policy).weak, false);
    assert.equal(assess(secret(undefined), policy).weak, false);
    assert.equal(assess(secret(WEAK_VALUE, { type: 'kubernetes.io/basic-auth' }), policy).weak, true);
  });

  test('the key list is configurable', () => {
    const s = secret(undefined);
    s.data = { pass: Buffer.from(WEAK_VALUE).toString('base64') };
    assert.equal(assess(s, { minLength: 10, keys: ['pass'] }).weak, true);
  });
});

describe('planSecret', () => {
  const plan = (s: Secret, mode: 'audit' | 'enforce' = 'audit', nsExempt?: boolean) => planSecret(s, assess(s, policy), mode, nsExempt);

  describe('in audit mode', () => {
    test('a weak Secret is annotated, once', () => {
      const step = plan(secret(WEAK_VALUE), 'audit', false);
      assert.equal(step.op, 'annotate');
      assert.ok(!JSON.stringify(step).includes(WEAK_VALUE));
      assert.deepEqual(plan(secret(WEAK_VALUE, { annotations: weakAnnotation }), 'audit', false), { op: 'none' });
    });

    test('a fixed Secret loses the annotation', () => {
      assert.deepEqual(plan(secret(STRONG_VALUE, { annotations: weakAnnotation })), { op: 'unannotate', why: 'fixed' });
    });

    test('a strong Secret without annotation: nothing', () => {
      assert.deepEqual(plan(secret(STRONG_VALUE)), { op: 'none' });
    });
  });

  describe('exemption', () => {
    test('by label on the Secret', () => {
      assert.deepEqual(plan(secret(WEAK_VALUE, { labels: exemptLabel })), { op: 'none' });
      assert.deepEqual(plan(secret(WEAK_VALUE, { labels: exemptLabel, annotations: weakAnnotation })), { op: 'unannotate', why: 'exempt' });
      assert.deepEqual(plan(secret(WEAK_VALUE, { labels: exemptLabel }), 'enforce'), { op: 'none' });
    });

    test('by label on the Namespace', () => {
      assert.deepEqual(plan(secret(WEAK_VALUE), 'audit', true), { op: 'none' });
      assert.deepEqual(plan(secret(WEAK_VALUE), 'enforce', true), { op: 'none' });
    });

    test('the Namespace is only read for a weak Secret not exempt on its own', () => {
      assert.equal(needsNamespace(secret(WEAK_VALUE), assess(secret(WEAK_VALUE), policy)), true);
      assert.equal(needsNamespace(secret(STRONG_VALUE), assess(secret(STRONG_VALUE), policy)), false);
      const exempt = secret(WEAK_VALUE, { labels: exemptLabel });
      assert.equal(needsNamespace(exempt, assess(exempt, policy)), false);
    });
  });

  describe('in enforce mode', () => {
    test('a weak Secret is deleted with preconditions on uid and resourceVersion', () => {
      const step = plan(secret(WEAK_VALUE), 'enforce', false);
      assert.equal(step.op, 'delete');
      if (step.op !== 'delete') return;
      assert.deepEqual([step.uid, step.resourceVersion], ['sec-uid', '9']);
    });

    test('a strong Secret is kept', () => {
      assert.deepEqual(plan(secret(STRONG_VALUE), 'enforce', false), { op: 'none' });
    });
  });
});

describe('Events', () => {
  test('events.k8s.io/v1 shape with a MicroTime and a bounded note', () => {
    const e = buildEvent(
      { regarding: { apiVersion: 'v1', kind: 'Secret', namespace: 'ns', name: 'db', uid: 'u' }, type: 'Warning', reason: 'WeakPassword', action: 'Annotate', note: 'x'.repeat(5000) },
      { now: new Date('2026-01-02T03:04:05.678Z'), instance: 'w-1', suffix: 'abc' },
    );
    assert.equal(e.apiVersion, 'events.k8s.io/v1');
    assert.deepEqual(e.metadata, { name: 'db.abc', namespace: 'ns' });
    assert.equal(e.eventTime, '2026-01-02T03:04:05.678000Z');
    assert.equal(e.reportingController, 'kreconcile.io/worker');
    assert.deepEqual(e.regarding, { apiVersion: 'v1', kind: 'Secret', namespace: 'ns', name: 'db', uid: 'u' });
    assert.equal((e.note as string).length, 1024);
    assert.match(microTime(new Date(0)), /^1970-01-01T00:00:00\.000000Z$/);
  });
});
