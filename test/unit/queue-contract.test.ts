import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatKey, hashTaggedPrefix, isObjectName, jobOptions, parseKey, redisConnection } from '../../services/common/queue.ts';

test('a key round-trips through format and parse', () => {
  const key = { kind: 'CronTab', namespace: 'team-a', name: 'nightly' } as const;
  assert.equal(formatKey(key), 'CronTab/team-a/nightly');
  assert.deepEqual(parseKey('CronTab/team-a/nightly'), key);
});

test('malformed keys and unknown kinds are refused with the key in the message', () => {
  assert.throws(() => parseKey('CronTab/team-a'), /Kind\/namespace\/name, got "CronTab\/team-a"/);
  assert.throws(() => parseKey('Pod/default/p'), /unknown kind "Pod"/);
  assert.throws(() => parseKey('Secret//x'), /Kind\/namespace\/name/);
  assert.throws(() => parseKey('Secret/Team_A/db'), /does not name an object/);
});

test('a key must name an object as the API server would: namespace a DNS-1123 label, name a subdomain', () => {
  assert.ok(isObjectName('team-a', 'db.credentials-2'));
  assert.ok(isObjectName('a'.repeat(63), 'b'.repeat(253)));
  for (const [ns, name] of [['a'.repeat(64), 'x'], ['team-a', 'b'.repeat(254)], ['Team', 'x'], ['team.a', 'x'], ['team-a', '-x'], ['team-a', 'x.'], ['team-a', 'a b'], ['', 'x'], ['team-a', '']]) {
    assert.equal(isObjectName(ns!, name!), false, `${ns}/${name}`);
  }
});

test('a huge key is quoted by its first 64 characters in the error', () => {
  for (const key of [`Secret/team-a/${'x'.repeat(1 << 20)}`, `Secret/team-a/a/${'x'.repeat(1 << 20)}`, `${'P'.repeat(1 << 20)}/a/b`]) {
    const err = (() => {
      try {
        parseKey(key);
      } catch (e) {
        return e as Error;
      }
      throw new Error('accepted');
    })();
    assert.ok(err.message.length < 300, `${err.message.length} characters`);
    assert.match(err.message, new RegExp(`\\(${key.length} characters\\)`));
  }
});

test('the deduplication id is the key and coalesces while active', () => {
  const opts = jobOptions('Secret/default/db');
  assert.deepEqual(opts.deduplication, { id: 'Secret/default/db', keepLastIfActive: true });
});

test('queue prefixes are hash-tagged exactly once', () => {
  assert.equal(hashTaggedPrefix('kreconcile'), '{kreconcile}');
  assert.equal(hashTaggedPrefix('{kreconcile}'), '{kreconcile}');
});

test('redis URLs become BullMQ connection options', () => {
  const c = redisConnection('redis://user:p%40ss@redis.example:6380/2') as Record<string, unknown>;
  assert.deepEqual([c.host, c.port, c.username, c.password, c.db, c.maxRetriesPerRequest], ['redis.example', 6380, 'user', 'p@ss', 2, null]);
});
