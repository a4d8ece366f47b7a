import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideLease, microTime, nextLease, releasedLease, type Lease } from '../../services/relay/leader.ts';

const T0 = Date.parse('2025-01-02T03:04:05.000Z');
const lease = (spec: Lease['spec'], rv = '10'): Lease => ({ metadata: { name: 'relay', namespace: 'default', resourceVersion: rv }, spec });
const opts = { name: 'relay', namespace: 'default', identity: 'me', durationSeconds: 15, nowMs: T0 };

test('MicroTime has exactly six fractional digits', () => {
  assert.equal(microTime(T0 + 123), '2025-01-02T03:04:05.123000Z');
  assert.equal(microTime(T0 + 123.456), '2025-01-02T03:04:05.123456Z');
  assert.match(microTime(Date.now()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
});

describe('decideLease', () => {
  const held = (holder: string, renewedAgoMs: number, duration = 15) => lease({ holderIdentity: holder, leaseDurationSeconds: duration, renewTime: microTime(T0 - renewedAgoMs), acquireTime: microTime(T0 - 60_000), leaseTransitions: 3 });
  const cases: [string, Lease | undefined, string][] = [
    ['no lease: create it', undefined, 'create'],
    ['held by me: renew', held('me', 5_000), 'renew'],
    ['held by me even if expired: renew', held('me', 60_000), 'renew'],
    ['held by another, fresh: wait', held('other', 5_000), 'wait'],
    ['held by another, renewTime + duration passed: take over', held('other', 15_001), 'takeover'],
    ['released (no holder): take over at once', lease({ holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime(T0) }), 'takeover'],
    ['malformed renewTime: take over', lease({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: 'yesterday' }), 'takeover'],
  ];
  for (const [name, l, action] of cases) test(name, () => assert.equal(decideLease(l, 'me', T0).action, action));

  test('wait says when the holder expires', () => {
    const d = decideLease(held('other', 5_000), 'me', T0);
    assert.deepEqual(d, { action: 'wait', holder: 'other', expiresAt: T0 + 10_000 });
  });
});

describe('nextLease', () => {
  test('create starts at zero transitions with acquire = renew = now', () => {
    const l = nextLease(undefined, { action: 'create' }, opts);
    assert.deepEqual(l.spec, { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0), renewTime: microTime(T0), leaseTransitions: 0 });
    assert.equal(l.metadata.resourceVersion, undefined);
  });

  test('renew keeps acquireTime and transitions, moves renewTime, and carries the read resourceVersion', () => {
    const cur = lease({ holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0 - 60_000), renewTime: microTime(T0 - 5_000), leaseTransitions: 2 }, '77');
    const l = nextLease(cur, { action: 'renew' }, opts);
    assert.equal(l.metadata.resourceVersion, '77');
    assert.deepEqual(l.spec, { holderIdentity: 'me', leaseDurationSeconds: 15, acquireTime: microTime(T0 - 60_000), renewTime: microTime(T0), leaseTransitions: 2 });
  });

  test('takeover from another holder counts a transition', () => {
    const cur = lease({ holderIdentity: 'other', leaseDurationSeconds: 15, renewTime: microTime(T0 - 20_000), leaseTransitions: 2 });
    assert.equal(nextLease(cur, { action: 'takeover', previousHolder: 'other' }, opts).spec?.leaseTransitions, 3);
    assert.equal(nextLease(cur, { action: 'takeover', previousHolder: 'other' }, opts).spec?.acquireTime, microTime(T0));
  });

  test('released lease has no holder and lasts one second', () => {
    const cur = lease({ holderIdentity: 'me', leaseDurationSeconds: 15, renewTime: microTime(T0), leaseTransitions: 4 }, '90');
    const r = releasedLease(cur, T0 + 1000);
    assert.equal(r.spec?.holderIdentity, '');
    assert.equal(r.spec?.leaseDurationSeconds, 1);
    assert.equal(r.spec?.leaseTransitions, 4);
    assert.equal(r.metadata.resourceVersion, '90');
    assert.equal(decideLease(r, 'standby', T0 + 1000).action, 'takeover');
  });
});
