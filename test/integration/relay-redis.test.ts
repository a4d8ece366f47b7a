// Redis stopped and restarted under a running relay (its own redis-server, no
// persistence): the relay keeps watching, holds keys in memory coalesced, says it
// is not ready, and once Redis is back every key arrives.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startRedisServer, type RedisServer } from '../../services/dev/redis.ts';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { waitFor } from '../support/wait.ts';

let redis: RedisServer;
let env: RelayEnv;

before(async () => {
  redis = await startRedisServer();
  env = await startRelayEnv({ redisUrl: redis.url });
});

after(async () => {
  await redis.restart().catch(() => undefined); // so env.stop() can clean up
  await env.stop();
  await redis.stop();
});

async function readyz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
}

test('keys changed while Redis is down are held, coalesced, and all arrive when it returns', async () => {
  for (let i = 0; i < 5; i++) await env.createSecret('default', `before-${i}`);
  const relay = await env.startRelay({ healthPort: 0 });
  await relay.synced();
  await relay.idle();
  assert.equal(relay.ready(), true);
  assert.equal(await readyz(relay.healthPort!), 200);

  await redis.kill();
  await waitFor('the relay to notice', () => relay.ready() !== true);
  assert.equal(await readyz(relay.healthPort!), 503);

  // The watch goes on: 20 new objects, and 50 updates to one of them.
  for (let i = 0; i < 20; i++) await env.createSecret('default', `during-${i}`);
  for (let i = 0; i < 50; i++) await env.updateSecret('default', 'during-0', `v${i}`);
  await waitFor('the relay to see every change', () => relay.knownObjects().secrets === 25);
  await waitFor('the pending set to hold them', () => relay.pendingKeys() === 20);
  assert.equal(relay.pendingKeys(), 20, '70 changes, 20 keys: coalesced by key');
  assert.equal(await metricValue(relay, 'kreconcile_relay_pending_keys'), 20);
  assert.equal(await metricValue(relay, 'kreconcile_relay_redis_up'), 0);

  await redis.restart();
  await waitFor('the relay to be ready again', () => relay.ready() === true, 10_000);
  await relay.idle();
  // The restarted Redis is empty: the relay noticed its checkpoint gone and enqueued every key it knows.
  const keys = await env.queuedKeys();
  const expected = [...Array.from({ length: 5 }, (_, i) => `Secret/default/before-${i}`), ...Array.from({ length: 20 }, (_, i) => `Secret/default/during-${i}`)].sort();
  assert.deepEqual(keys, expected);
  assert.equal(relay.pendingKeys(), 0);
  assert.equal(await readyz(relay.healthPort!), 200);

  // And it goes on relaying, with its checkpoint written again.
  await env.createSecret('default', 'after');
  await waitFor('a key after the outage', async () => (await env.queuedKeys()).includes('Secret/default/after'));
});
