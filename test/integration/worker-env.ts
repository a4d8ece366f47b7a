// Test environment for the worker: a kube-sim with the CronTab CRD, a unique
// BullMQ queue on the shared Redis, workers started in-process, and a separate
// API client for the test's own writes (so the workers' write counters only
// count the workers' writes).
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Queue, QueueEvents, type Job } from 'bullmq';
import YAML from 'yaml';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { KubeClient, NAMESPACES, type Resource } from '../../services/worker/kube.ts';
import { startWorker, type RunningWorker, type StartWorkerOptions } from '../../services/worker/worker.ts';
import { REDIS_URL, ROOT } from '../support/env.ts';
import { waitFor } from '../support/wait.ts';

// test/bench/e2e.ts imports waitFor from here.
export { waitFor };

const CRDS: Resource = { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false };

export interface WorkerEnv {
  sim: KubeSim;
  /** The test's own client: its writes are not the workers'. */
  kube: KubeClient;
  queue: Queue<ReconcileJobData>;
  queueEvents: QueueEvents;
  queueName: string;
  prefix: string;
  workers: RunningWorker[];
  startWorker(opts?: Partial<StartWorkerOptions>): Promise<RunningWorker>;
  enqueue(key: string): Promise<Job<ReconcileJobData>>;
  /** Enqueue a key and wait for that job to end; resolves with its return value or rejects with its failure. */
  reconcile(key: string): Promise<unknown>;
  /** Resolves once nothing is waiting, active or delayed. */
  idle(timeoutMs?: number): Promise<void>;
  /** Writes made by every worker of this env so far. */
  workerWrites(): number;
  /** Runs fn and returns the API requests the workers made meanwhile, as kube-sim saw them ("get crontabs", "update cronjobs"…). */
  workerRequests(fn: () => Promise<unknown>): Promise<string[]>;
  stop(): Promise<void>;
}

export async function installCronTabCrd(kube: KubeClient, timeoutMs = 10_000): Promise<void> {
  const crd = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra/k8s/crontab-crd.yaml'), 'utf8'));
  const existing = await kube.get(CRDS, undefined, crd.metadata.name);
  if (!existing) await kube.create(CRDS, undefined, crd);
  await waitFor('the CronTab CRD to be Established', async () => {
    const got = await kube.get<{ status?: { conditions?: { type: string; status: string }[] } }>(CRDS, undefined, crd.metadata.name);
    return got?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
  }, timeoutMs);
}

export async function ensureNamespace(kube: KubeClient, name: string, labels: Record<string, string> = {}): Promise<void> {
  if (await kube.get(NAMESPACES, undefined, name)) return;
  await kube.create(NAMESPACES, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });
}

export async function startWorkerEnv(opts: { workerDefaults?: Partial<StartWorkerOptions>; sim?: KubeSim } = {}): Promise<WorkerEnv> {
  const sim = opts.sim ?? (await startKubeSim());
  const kube = await KubeClient.create({ kubeconfig: sim.kubeconfig, fieldManager: 'test', userAgent: 'kreconcile-test' });
  await installCronTabCrd(kube);
  const queueName = `t-${randomUUID()}`;
  const prefix = hashTaggedPrefix('kreconcile-test');
  const connection = redisConnection(REDIS_URL);
  const queue = new Queue<ReconcileJobData>(queueName, { connection, prefix });
  const queueEvents = new QueueEvents(queueName, { connection, prefix });
  await queueEvents.waitUntilReady();
  const workers: RunningWorker[] = [];

  const env: WorkerEnv = {
    sim,
    kube,
    queue,
    queueEvents,
    queueName,
    prefix,
    workers,
    async startWorker(extra = {}) {
      const w = await startWorker({ kubeconfig: sim.kubeconfig, connection, queuePrefix: prefix, queueName, concurrency: 8, ...opts.workerDefaults, ...extra });
      workers.push(w);
      return w;
    },
    enqueue: (key) => queue.add(JOB_NAME, { key, reason: 'MANUAL', seenAt: Date.now() }, jobOptions(key)),
    async reconcile(key) {
      const job = await env.enqueue(key);
      return job.waitUntilFinished(queueEvents, 15_000);
    },
    async idle(timeoutMs = 15_000) {
      await waitFor(
        'the queue to be idle',
        async () => {
          const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
          return Object.values(c).every((n) => n === 0);
        },
        timeoutMs,
      );
    },
    workerWrites: () => workers.reduce((n, w) => n + w.kube.writeCount(), 0),
    async workerRequests(fn) {
      const seen: string[] = [];
      const unsubscribe = sim.onRequestComplete((info) => {
        if (info.userAgent?.startsWith('kreconcile-worker')) seen.push(`${info.verb} ${info.resource}${info.subresource ? `/${info.subresource}` : ''}`);
      });
      try {
        await fn();
      } finally {
        unsubscribe();
      }
      return seen;
    },
    async stop() {
      await Promise.all(workers.map((w) => w.close(2_000)));
      await queueEvents.close();
      await queue.obliterate({ force: true }).catch(() => undefined);
      await queue.close();
      kube.close();
      if (!opts.sim) await sim.stop();
    },
  };
  return env;
}
