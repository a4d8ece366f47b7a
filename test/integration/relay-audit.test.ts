// The second source: kube-sim's audit webhook backend POSTs EventList batches to
// the relay's HTTPS /audit endpoint (real TLS, bearer token), which enqueues the
// same deduplicated jobs a watch event would.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { createCA } from '../../services/common/certs.ts';
import { silentLogger } from '../../services/common/logger.ts';
import { AuditWebhookBackend } from '../../services/kube-sim/audit.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { hashTaggedPrefix, redisConnection } from '../../services/common/queue.ts';
import { startRelay, type Relay } from '../../services/relay/index.ts';
import { loadKubeAccess } from '../../services/relay/kube-access.ts';
import { KubeClient } from '../../services/relay/kube-client.ts';
import { metricValue, startRelayEnv, type RelayEnv } from './relay-env.ts';
import { REDIS_URL, ROOT } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

let dir: string;
let caPem: string;
const TOKEN = 'audit-token-for-tests';

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-audit-'));
  const ca = createCA('relay-audit-test-ca', 1);
  const leaf = ca.issue({ commonName: 'relay', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  fs.writeFileSync(path.join(dir, 'tls.crt'), leaf.cert);
  fs.writeFileSync(path.join(dir, 'tls.key'), leaf.key);
  fs.writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  caPem = ca.cert;
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let env: RelayEnv | undefined;
let backend: AuditWebhookBackend | undefined;
afterEach(async () => {
  await backend?.close();
  backend = undefined;
  await env?.stop();
  env = undefined;
});

const audit = () => ({ port: 0, host: '127.0.0.1', certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), tokenFile: path.join(dir, 'token'), maxBodyBytes: 256 * 1024 });

function connectBackend(e: RelayEnv, relay: Relay, token = TOKEN): AuditWebhookBackend {
  const b = new AuditWebhookBackend({ url: `https://127.0.0.1:${relay.auditPort}/audit`, caPem, token, batchMaxWaitMs: 50, maxAttempts: 2, initialBackoffMs: 20, log: silentLogger });
  e.sim.onRequestComplete(b.record);
  return b;
}

function post(port: number, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/audit', method: 'POST', ca: caPem, headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('writes reported by the audit webhook become jobs, without any watch', async () => {
  env = await startRelayEnv();
  const relay = await env.startRelay({ resources: [], audit: audit() });
  backend = connectBackend(env, relay);
  await env.kube.request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' } } });
  await env.createSecret('team-a', 'db');
  await env.updateSecret('team-a', 'db', 'new-value');
  await env.kube.request('GET', '/api/v1/namespaces/team-a/secrets/db'); // reads are not audited by the policy
  await waitFor('the audited key', async () => (await env!.queuedKeys()).includes('Secret/team-a/db'), 5_000);
  await relay.idle();
  const jobs = await env.queuedJobs();
  assert.deepEqual(jobs.map((j) => j.data.key), ['Secret/team-a/db'], 'create and update coalesced into one job');
  assert.equal(jobs[0]!.data.reason, 'AUDIT');
  assert.ok((await metricValue(relay, 'kreconcile_relay_audit_events_total', { result: 'enqueued' })) >= 2);
  assert.ok(backend.stats().sent >= 2);
});

test('a key that arrives both by watch and by audit is one job', async () => {
  env = await startRelayEnv();
  const relay = await env.startRelay({ audit: audit() });
  await relay.synced();
  backend = connectBackend(env, relay);
  await env.createSecret('default', 'twice');
  await waitFor('both sources', async () => (await metricValue(relay, 'kreconcile_relay_audit_events_total', { result: 'enqueued' })) >= 1 && (await metricValue(relay, 'kreconcile_relay_events_received_total', { type: 'ADDED' })) >= 1, 5_000);
  await relay.idle();
  const jobs = await env.queuedJobs();
  assert.deepEqual(jobs.map((j) => j.data.key), ['Secret/default/twice']);
});

test('bad batches are refused with 400, 401 or 413 and the relay goes on', async () => {
  env = await startRelayEnv();
  const relay = await env.startRelay({ resources: [], audit: audit() });
  const port = relay.auditPort!;
  assert.equal((await post(port, '{"kind":"EventList","items":[{')).status, 400);
  assert.equal((await post(port, JSON.stringify({ kind: 'Status' }))).status, 400);
  assert.equal((await post(port, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [] }), { authorization: 'Bearer nope' })).status, 401);
  assert.equal((await post(port, Buffer.alloc(300 * 1024, 0x20))).status, 413);
  const odd = await post(port, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: [42, { stage: 'ResponseComplete', verb: 'create', objectRef: { resource: 'pods', namespace: 'x', name: 'y' } }, null] }));
  assert.equal(odd.status, 200, 'odd items are skipped, the batch is accepted');
  // Bad batches leave the relay ready (its Redis connection may still be coming up at this point).
  await waitFor('the relay ready', async () => relay.ready() === true, 5_000);
  // Still serving: a real batch after all that.
  backend = connectBackend(env, relay);
  await env.createSecret('default', 'after-bad');
  await waitFor('the key after bad batches', async () => (await env!.queuedKeys()).includes('Secret/default/after-bad'), 5_000);
  assert.equal(await metricValue(relay, 'kreconcile_relay_audit_batches_total', { code: '413' }), 1);
});

test('`kreconcile sim --audit-webhook-url` sends its audit batches to the relay', async () => {
  // The relay first (its audit port goes into the sim's flags); without watchers or
  // an election it never calls the API, so any address will do.
  const queueName = `t-${randomUUID()}`;
  const relay = await startRelay({
    kubeconfig: { getCurrentCluster: () => ({ server: 'http://127.0.0.1:9' }), applyToHTTPSOptions: async () => {} },
    redisUrl: REDIS_URL,
    queueName,
    queuePrefix: 'kreconcile-test',
    leaderElection: false,
    resources: [],
    audit: audit(),
  });
  const queue = new Queue(queueName, { connection: redisConnection(REDIS_URL), prefix: hashTaggedPrefix('kreconcile-test') });
  const kubeconfigOut = path.join(dir, `sim-${randomUUID()}.kubeconfig`);
  fs.writeFileSync(path.join(dir, 'ca.crt'), caPem);
  const sim = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/cli.ts', 'sim', '--port', '0', '--kubeconfig-out', kubeconfigOut, '--audit-webhook-url', `https://127.0.0.1:${relay.auditPort}/audit`, '--audit-webhook-ca-file', path.join(dir, 'ca.crt'), '--audit-webhook-token-file', path.join(dir, 'token')],
    { cwd: ROOT, stdio: 'ignore', env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  try {
    await waitFor('the sim kubeconfig', () => fs.existsSync(kubeconfigOut), 30_000);
    const kube = new KubeClient(await loadKubeAccess(kubeconfigOut));
    await kube.request('POST', '/api/v1/namespaces/default/secrets', { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'from-sim-process' }, stringData: { password: 'p' } } });
    await waitFor('the audited key', async () => (await queue.getJobs(['waiting'])).some((j) => j?.data.key === 'Secret/default/from-sim-process'), 10_000);
  } finally {
    sim.kill('SIGTERM');
    await once(sim, 'exit');
    await relay.stop();
    await queue.obliterate({ force: true });
    await queue.close();
  }
});
