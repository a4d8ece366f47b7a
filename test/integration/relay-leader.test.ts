// Two relays, one Lease: one leads, the standby takes over when the leader dies
// or stops, and a leader that loses its Lease stops relaying at once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { afterEach, test } from 'node:test';
import type { Lease } from '../../services/relay/leader.ts';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { ROOT } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

let env: RelayEnv | undefined;
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) {
    c.kill('SIGKILL');
    await once(c, 'exit');
  }
  await env?.stop();
  env = undefined;
});

const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;

async function getLease(e: RelayEnv, name: string): Promise<Lease | undefined> {
  try {
    return (await e.kube.request<Lease>('GET', `/apis/coordination.k8s.io/v1/namespaces/default/leases/${name}`)).body;
  } catch {
    return undefined;
  }
}

/** `kreconcile relay` as a child process, exactly as deployed; resolves lines as they come. */
function spawnRelay(e: RelayEnv, identity: string, leaseName: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'relay'], {
    cwd: ROOT,
    env: {
      ...process.env,
      KUBECONFIG: e.sim.kubeconfigPath,
      REDIS_URL: e.redisUrl,
      QUEUE_NAME: e.queueName,
      QUEUE_PREFIX: e.prefix,
      LEASE_NAME: leaseName,
      LEASE_NAMESPACE: 'default',
      LEASE_DURATION: '2s',
      LEASE_RENEW: '500ms',
      POD_NAME: identity,
      HEALTH_PORT: '0',
      LOG_LEVEL: 'info',
      LOG_JSON: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: { msg: string; at: number }[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push({ msg: String(JSON.parse(line).msg), at: Date.now() });
      } catch {
        lines.push({ msg: line, at: Date.now() });
      }
    }
  });
  child.stderr!.on('data', () => {});
  return { child, identity, lines, said: (msg: string) => lines.find((l) => l.msg === msg) };
}

test('two relay processes: one leads; when it is killed the standby takes over within the lease duration', async () => {
  env = await startRelayEnv({ crd: true });
  const leaseName = `relay-${randomUUID().slice(0, 8)}`;
  const a = spawnRelay(env, 'relay-a', leaseName);
  const b = spawnRelay(env, 'relay-b', leaseName);
  const leader = await waitFor('a leader', () => (a.said('became leader') ? a : b.said('became leader') ? b : undefined), 30_000);
  const standby = leader === a ? b : a;
  await waitFor('the standby to stand by', () => standby.said('standing by; another replica leads'), 10_000);
  assert.equal(standby.said('became leader'), undefined, 'only one leader');
  const lease = (await getLease(env, leaseName))!;
  assert.equal(lease.spec?.holderIdentity, leader.identity);
  assert.match(lease.spec!.renewTime!, MICROTIME);
  assert.match(lease.spec!.acquireTime!, MICROTIME);

  await waitFor('the leader to sync', () => leader.said('relay synced: every resource listed or resumed, watching'), 10_000);
  await env.createSecret('default', 'one');
  await waitFor('a key from the leader', async () => (await env!.queuedKeys()).includes('Secret/default/one'));

  const killedAt = Date.now();
  leader.child.kill('SIGKILL');
  await waitFor('the standby to take over', () => standby.said('became leader'), 10_000);
  const takeoverMs = standby.said('became leader')!.at - killedAt;
  assert.ok(takeoverMs <= 2_000 + 500 + 1_000, `takeover after ${takeoverMs} ms (lease 2 s, retry 0.5 s)`);
  const after = (await getLease(env, leaseName))!;
  assert.equal(after.spec?.holderIdentity, standby.identity);
  assert.equal(after.spec?.leaseTransitions, (lease.spec?.leaseTransitions ?? 0) + 1);

  // The new leader resumes from the checkpoint the old one left, and relays.
  await env.createSecret('default', 'two');
  await waitFor('a key from the new leader', async () => (await env!.queuedKeys()).includes('Secret/default/two'), 10_000);
  assert.ok(standby.said('resuming from checkpoint'), 'resumed, not relisted');
});

test('a leader that stops gracefully releases the Lease and the standby takes over at once', async () => {
  env = await startRelayEnv();
  const leaderElection = { name: `relay-${randomUUID().slice(0, 8)}`, namespace: 'default', leaseDurationMs: 10_000, renewIntervalMs: 200 };
  const first = await env.startRelay({ leaderElection, identity: 'first' });
  await first.synced();
  const second = await env.startRelay({ leaderElection, identity: 'second' });
  await waitFor('second to have tried', async () => (await getLease(env!, leaderElection.name))?.spec?.holderIdentity === 'first');
  assert.equal(second.isLeader(), false);
  const stoppedAt = Date.now();
  await first.stop();
  await second.synced();
  const ms = Date.now() - stoppedAt;
  assert.ok(ms < 3_000, `took over ${ms} ms after a graceful stop, far inside the 10 s lease`);
  assert.equal(second.isLeader(), true);
  assert.equal((await getLease(env, leaderElection.name))?.spec?.holderIdentity, 'second');
});

test('a leader whose Lease is taken stops relaying at once', async () => {
  env = await startRelayEnv();
  const leaderElection = { name: `relay-${randomUUID().slice(0, 8)}`, namespace: 'default', leaseDurationMs: 4_000, renewIntervalMs: 200 };
  const relay = await env.startRelay({ leaderElection, identity: 'victim' });
  await relay.synced();
  assert.equal(await metricValue(relay, 'kreconcile_relay_leader'), 1);
  const watchClosed = new Promise<void>((resolve) => {
    env!.sim.onRequestComplete((info) => info.verb === 'watch' && info.resource === 'secrets' && resolve());
  });
  // Someone else writes the Lease (as a partitioned leader would find on its return).
  const lease = (await getLease(env, leaderElection.name))!;
  await env.kube.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/default/leases/${leaderElection.name}`, {
    body: { ...lease, spec: { ...lease.spec, holderIdentity: 'intruder', renewTime: new Date().toISOString().replace('Z', '000Z'), leaseDurationSeconds: 30 } },
  });
  const takenAt = Date.now();
  await watchClosed;
  assert.ok(Date.now() - takenAt < 2_000, 'the watch closed within a renew or two');
  assert.equal(relay.isLeader(), false);
  assert.equal(await metricValue(relay, 'kreconcile_relay_leader'), 0);
  assert.equal(relay.pendingKeys(), 0, 'what was pending is dropped: the next leader resumes from the checkpoint');
});
