import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatKey, hashTaggedPrefix, jobOptions, parseKey, redisConnection } from '../../services/common/queue.ts';

test('a key round-trips through format and parse', () => {
  const key = { kind: 'CronTab', namespace: 'team-a', name: 'nightly' } as const;
  assert.equal(formatKey(key), 'CronTab/team-a/nightly');
  assert.deepEqual(parseKey('CronTab/team-a/nightly'), key);
});

test('malformed keys and unknown kinds are refused with the key in the message', () => {
  assert.throws(() => parseKey('CronTab/team-a'), /Kind\/namespace\/name, got "CronTab\/team-a"/);
  assert.throws(() => parseKey('Pod/default/p'), /unknown kind "Pod"/);
  assert.throws(() => parseKey('Secret//x'), /Kind\/namespace\/name/);
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
