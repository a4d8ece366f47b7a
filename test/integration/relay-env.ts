// Test environment for the relay: a kube-sim, a unique queue on a real Redis (the
// shared one, or a private one from services/dev/redis.ts that a test may kill), relays
// started in-process, and a raw API client for the test's own writes.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Queue, type Job } from 'bullmq';
import YAML from 'yaml';
import { hashTaggedPrefix, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { startKubeSim, type KubeSim, type KubeSimOptions } from '../../services/kube-sim/index.ts';
import { startRelay, type Relay, type StartRelayOptions } from '../../services/relay/index.ts';
import { KubeApiError, KubeClient } from '../../services/relay/kube-client.ts';
import { REDIS_URL, ROOT } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

export interface RelayEnv {
  sim: KubeSim;
  kube: KubeClient;
  queueName: string;
  prefix: string;
  redisUrl: string;
  queue: Queue<ReconcileJobData>;
  relays: Relay[];
  startRelay(extra?: Partial<StartRelayOptions>): Promise<Relay>;
  /** Keys of jobs not yet processed (waiting, delayed, prioritized). */
  queuedKeys(): Promise<string[]>;
  queuedJobs(): Promise<Job<ReconcileJobData>[]>;
  /** Remove every queued job and the relay's dedup marks, so the next assertions see only new jobs. */
  drainQueue(): Promise<void>;
  createSecret(namespace: string, name: string, labels?: Record<string, string>): Promise<{ metadata: { resourceVersion: string } }>;
  updateSecret(namespace: string, name: string, value: string): Promise<void>;
  deleteSecret(namespace: string, name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startRelayEnv(opts: { sim?: KubeSimOptions; redisUrl?: string; crd?: boolean } = {}): Promise<RelayEnv> {
  const sim = await startKubeSim(opts.sim);
  const kube = new KubeClient(sim.kubeconfig);
  if (opts.crd) await installCronTabCrd(kube);
  const queueName = `t-${randomUUID()}`;
  const prefix = 'kreconcile-test';
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  const queue = new Queue<ReconcileJobData>(queueName, { connection: redisConnection(redisUrl), prefix: hashTaggedPrefix(prefix) });
  queue.on('error', () => {});
  const relays: Relay[] = [];
  const env: RelayEnv = {
    sim,
    kube,
    queueName,
    prefix,
    redisUrl,
    queue,
    relays,
    async startRelay(extra = {}) {
      const relay = await startRelay({
        kubeconfig: sim.kubeconfig,
        redisUrl,
        queueName,
        queuePrefix: prefix,
        leaderElection: false,
        resources: ['secrets'],
        resyncIntervalMs: 0,
        backoff: { minMs: 20, maxMs: 500 },
        ...extra,
      });
      relays.push(relay);
      return relay;
    },
    async queuedJobs() {
      return (await queue.getJobs(['waiting', 'delayed', 'prioritized', 'paused'])).filter(Boolean);
    },
    async queuedKeys() {
      return (await env.queuedJobs()).map((j) => j.data.key).sort();
    },
    async drainQueue() {
      await queue.obliterate({ force: true });
    },
    async createSecret(namespace, name, labels) {
      return (
        await kube.request<{ metadata: { resourceVersion: string } }>('POST', `/api/v1/namespaces/${namespace}/secrets`, {
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace, labels }, stringData: { password: `pw-${randomUUID()}` } },
        })
      ).body;
    },
    async updateSecret(namespace, name, value) {
      await kube.request('PUT', `/api/v1/namespaces/${namespace}/secrets/${name}`, { body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, stringData: { password: value } } });
    },
    async deleteSecret(namespace, name) {
      await kube.request('DELETE', `/api/v1/namespaces/${namespace}/secrets/${name}`);
    },
    async stop() {
      await Promise.all(relays.map((r) => r.stop()));
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      await sim.stop();
    },
  };
  return env;
}

export async function installCronTabCrd(kube: KubeClient): Promise<void> {
  const crd = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra/k8s/crontab-crd.yaml'), 'utf8'));
  await kube.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd });
  await waitFor('the CronTab CRD to serve', async () => {
    try {
      await kube.request('GET', '/apis/stable.example.com/v1/crontabs');
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return false;
      throw err;
    }
  });
}

/** Read a counter or gauge value from a relay's registry (labels must match exactly). */
export async function metricValue(relay: Relay, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await relay.registry.getSingleMetric(name)?.get();
  if (!m) return 0;
  let sum = 0;
  for (const v of m.values) {
    if (Object.entries(labels).every(([k, val]) => v.labels[k] === val)) sum += v.value;
  }
  return sum;
}
