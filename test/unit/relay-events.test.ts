import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeEntry, encodeEntry, owningCronTab, parseWatchLine, resourceByName, resourceFor } from '../../services/relay/resources.ts';

const secrets = resourceByName('secrets')!;
const cronjobs = resourceByName('cronjobs')!;

const line = (o: unknown) => JSON.stringify(o);

describe('parseWatchLine', () => {
  test('a change yields id, resourceVersion and key, never the object', () => {
    const ev = parseWatchLine(line({ type: 'MODIFIED', object: { kind: 'Secret', apiVersion: 'v1', metadata: { name: 'db', namespace: 'team-a', resourceVersion: '42' }, data: { password: 'aHVudGVyMg==' } } }), secrets);
    assert.deepEqual(ev, { type: 'MODIFIED', id: 'team-a/db', resourceVersion: '42', key: 'Secret/team-a/db' });
  });

  test('a bookmark moves only the resourceVersion', () => {
    assert.deepEqual(parseWatchLine(line({ type: 'BOOKMARK', object: { kind: 'Secret', apiVersion: 'v1', metadata: { resourceVersion: '900' } } }), secrets), { type: 'BOOKMARK', resourceVersion: '900' });
  });

  test('an ERROR event carries the Status code (410 means relist)', () => {
    const ev = parseWatchLine(line({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', message: 'too old resource version: 1 (5)', reason: 'Expired', code: 410 } }), secrets);
    assert.deepEqual(ev, { type: 'ERROR', code: 410, message: 'too old resource version: 1 (5)' });
  });

  describe('when the line is unusable it is BAD, with a reason that never quotes the object', () => {
    const cases: [string, string, RegExp][] = [
      ['not JSON', '{"type":"ADDED","object":{"data":{"password":"hunter2"', /not JSON/],
      ['unknown kind', line({ type: 'ADDED', object: { kind: 'Pod', metadata: { name: 'p', namespace: 'd', resourceVersion: '1' } } }), /unexpected kind "Pod"/],
      ['unknown type', line({ type: 'EXPLODED', object: { kind: 'Secret', metadata: { name: 'p', namespace: 'd', resourceVersion: '1' } } }), /unknown event type/],
      ['no metadata', line({ type: 'ADDED', object: { kind: 'Secret', data: { password: 'aHVudGVyMg==' } } }), /without metadata/],
      ['no name', line({ type: 'ADDED', object: { kind: 'Secret', metadata: { namespace: 'd', resourceVersion: '1' } } }), /namespace\/name/],
      ['no resourceVersion', line({ type: 'DELETED', object: { kind: 'Secret', metadata: { name: 'p', namespace: 'd' } } }), /resourceVersion/],
      ['a slash in the name', line({ type: 'ADDED', object: { kind: 'Secret', metadata: { name: 'a/b', namespace: 'd', resourceVersion: '1' } } }), /malformed/],
      ['no object', line({ type: 'ADDED' }), /without an object/],
      ['a JSON scalar', '42', /not an object/],
    ];
    for (const [name, input, reason] of cases) {
      test(name, () => {
        const ev = parseWatchLine(input, secrets);
        assert.equal(ev.type, 'BAD');
        assert.match((ev as { reason: string }).reason, reason);
        assert.doesNotMatch((ev as { reason: string }).reason, /hunter2|aHVudGVyMg/);
      });
    }
  });
});

describe('a managed CronJob maps to its CronTab', () => {
  test('through its controller ownerReference of kind CronTab', () => {
    const meta = { ownerReferences: [{ kind: 'ReplicaSet', name: 'x' }, { apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'nightly', controller: true }] };
    assert.equal(owningCronTab('team-a', meta), 'CronTab/team-a/nightly');
  });
  test('else through the kreconcile.io/crontab label', () => {
    assert.equal(owningCronTab('team-a', { labels: { 'kreconcile.io/crontab': 'hourly' } }), 'CronTab/team-a/hourly');
  });
  test('not to a name the API server would refuse (a slash, megabytes): that would be a broken key', () => {
    assert.equal(owningCronTab('team-a', { ownerReferences: [{ kind: 'CronTab', name: `a/${'x'.repeat(1 << 20)}`, controller: true }] }), undefined);
    assert.equal(owningCronTab('team-a', { labels: { 'kreconcile.io/crontab': 'x'.repeat(254) } }), undefined);
  });
  test('else to nothing', () => {
    assert.equal(owningCronTab('team-a', { labels: { 'app.kubernetes.io/managed-by': 'kreconcile' }, ownerReferences: [{ kind: 'Job', name: 'j' }] }), undefined);
  });
  test('a watch event for it carries the CronTab key', () => {
    const ev = parseWatchLine(
      line({ type: 'ADDED', object: { kind: 'CronJob', apiVersion: 'batch/v1', metadata: { name: 'nightly-cj', namespace: 'ns', resourceVersion: '7', ownerReferences: [{ kind: 'CronTab', name: 'nightly', controller: true }] } } }),
      cronjobs,
    );
    assert.deepEqual(ev, { type: 'ADDED', id: 'ns/nightly-cj', resourceVersion: '7', key: 'CronTab/ns/nightly' });
  });
});

test('known entries store only the resourceVersion unless the key differs from the default', () => {
  assert.equal(encodeEntry(secrets, 'ns/db', { resourceVersion: '12', key: 'Secret/ns/db' }), '12');
  assert.deepEqual(decodeEntry(secrets, 'ns/db', '12'), { resourceVersion: '12', key: 'Secret/ns/db' });
  const v = encodeEntry(cronjobs, 'ns/cj', { resourceVersion: '13', key: 'CronTab/ns/nightly' });
  assert.equal(v, '13 CronTab/ns/nightly');
  assert.deepEqual(decodeEntry(cronjobs, 'ns/cj', v), { resourceVersion: '13', key: 'CronTab/ns/nightly' });
});

test('audit objectRefs find the watched resource by group and plural', () => {
  assert.equal(resourceFor('', 'secrets')?.kind, 'Secret');
  assert.equal(resourceFor('stable.example.com', 'crontabs')?.kind, 'CronTab');
  assert.equal(resourceFor('batch', 'cronjobs')?.kind, 'CronJob');
  assert.equal(resourceFor('', 'configmaps'), undefined);
  assert.equal(resourceFor('other.example.com', 'secrets'), undefined);
});
