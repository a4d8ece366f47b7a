// Benchmark: how worker throughput scales with worker processes (1, 2, 4), in one run.
//
//   npm run bench -- scaling        (or: node --import tsx test/bench/scaling.ts)
//
// kube-sim (`kreconcile sim`) and a private redis-server, each in its own
// process; no relay: this process enqueues the keys itself, as the relay's
// resync does, so only the workers are measured. SCALING_OBJECTS CronTabs
// (default 2,000) exist and are converged before the first measurement. For each
// worker count W, W `kreconcile worker` processes are started and two phases run:
//  - converged: every key enqueued at once; the workers read and find nothing
//    to do (reconciles/s; API writes, which must be 0);
//  - changing: every CronTab's image is changed first, then every key is
//    enqueued; each reconcile updates the CronJob and the status (reconciles/s,
//    API writes per object).
// Prints one JSON line per worker count, with the CPU milliseconds per reconcile
// of kube-sim, the workers (together) and Redis in each phase, and the ceiling
// they imply on this machine (kube-sim is one thread; everything shares the
// cores): throughput measured on a shared machine moves with its load, CPU per
// reconcile does not.
// SCALING_OBJECTS, SCALING_WORKERS ("1,2,4"), WORKER_CONCURRENCY (32) tune it.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { spawnRole, type RoleProcess } from '../../services/dev/processes.ts';
import { freePort, startRedisServer, type RedisServer } from '../../services/dev/redis.ts';
import { CRONTABS, KubeClient, NAMESPACES } from '../../services/worker/kube.ts';
import { installCronTabCrd } from '../integration/worker-env.ts';
import { cpuSeconds, inBatches } from '../support/bench.ts';
import { sumSamples } from '../support/metrics.ts';
import { waitFor } from '../support/wait.ts';

const OBJECTS = Number(process.env.SCALING_OBJECTS ?? 2000);
const WORKER_COUNTS = (process.env.SCALING_WORKERS ?? '1,2,4').split(',').map(Number);
const CONCURRENCY = process.env.WORKER_CONCURRENCY ?? '32';
const NS = 'scaling';
const QUEUE = 'reconcile';
const PREFIX = 'kreconcile-scaling';

const children: RoleProcess[] = [];
let redis: RedisServer | undefined;
let queue: { close(): Promise<void> } | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-scaling-'));

const note = (msg: string) => console.error(`# scaling: ${msg}`);

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function counters(ports: number[]): Promise<{ reconciles: number; writes: number }> {
  const texts = await Promise.all(ports.map(scrape));
  return {
    reconciles: texts.reduce((n, t) => n + sumSamples(t, 'kreconcile_worker_reconciles_total'), 0),
    writes: texts.reduce((n, t) => n + sumSamples(t, 'kreconcile_worker_api_writes_total'), 0),
  };
}

async function main(): Promise<void> {
  redis = await startRedisServer();
  const info = new Redis(redis.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await info.info('server'))?.[1]);
  info.disconnect();
  const kubeconfigPath = path.join(tmp, 'kubeconfig');
  const sim = spawnRole('sim', { args: ['--port', '0', '--kubeconfig-out', kubeconfigPath], env: { LOG_LEVEL: 'info' } }); // info: the ready line
  children.push(sim);
  await sim.waitForLine((l) => l.msg === 'kube-sim ready', 60_000);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const kube = await KubeClient.create({ kubeconfig: kc, userAgent: 'bench-driver', fieldManager: 'bench', maxSockets: 64, timeoutMs: 60_000 });
  await installCronTabCrd(kube, 30_000);
  await kube.create(NAMESPACES, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

  const q = new Queue<ReconcileJobData>(QUEUE, { connection: redisConnection(redis.url), prefix: hashTaggedPrefix(PREFIX) });
  queue = q;
  const names = Array.from({ length: OBJECTS }, (_, i) => `ct-${i}`);
  const enqueueAll = async () => {
    for (let i = 0; i < names.length; i += 1000) {
      await q.addBulk(
        names.slice(i, i + 1000).map((name) => {
          const key = `CronTab/${NS}/${name}`;
          return { name: JOB_NAME, data: { key, reason: 'RESYNC' as const, seenAt: Date.now() }, opts: jobOptions(key) };
        }),
      );
    }
  };
  const idle = () => waitFor('the queue to be idle', async () => Object.values(await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0), 600_000, 100);

  async function startWorkers(n: number): Promise<{ procs: RoleProcess[]; ports: number[] }> {
    const ports: number[] = [];
    const procs: RoleProcess[] = [];
    for (let i = 0; i < n; i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(
        spawnRole('worker', {
          env: { KUBECONFIG: kubeconfigPath, REDIS_URL: redis!.url, QUEUE_NAME: QUEUE, QUEUE_PREFIX: PREFIX, HEALTH_PORT: String(port), WORKER_CONCURRENCY: CONCURRENCY, LOG_LEVEL: 'warn' },
          onLine: (line) => console.error(`# worker: ${line}`),
        }),
      );
    }
    children.push(...procs);
    const ready = (port: number) => () =>
      new Promise<boolean>((resolve) => http.get({ host: '127.0.0.1', port, path: '/readyz' }, (r) => (r.resume(), resolve(r.statusCode === 200))).on('error', () => resolve(false)));
    // A worker that dies while starting fails the run at once instead of after the timeout.
    const died = Promise.race(procs.map((p) => p.exited.then((code) => Promise.reject(new Error(`a worker exited (${code}) while starting`)))));
    died.catch(() => undefined);
    for (const port of ports) await Promise.race([waitFor(`worker on port ${port}`, ready(port), 120_000, 200), died]);
    return { procs, ports };
  }

  /** Enqueue every key and time the workers through them; CPU seconds per process for the phase. */
  async function phase(w: { procs: RoleProcess[]; ports: number[] }): Promise<{ perSecond: number; writes: number; cpu: Record<string, number> }> {
    const pids: Record<string, number | undefined> = { sim: sim.child.pid, redis: redisPid, ...Object.fromEntries(w.procs.map((p, i) => [`worker${i + 1}`, p.child.pid])) };
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
    const before = await counters(w.ports);
    const start = performance.now();
    await enqueueAll();
    await waitFor('every key to be reconciled', async () => (await counters(w.ports)).reconciles - before.reconciles >= OBJECTS, 600_000, 20);
    const seconds = (performance.now() - start) / 1000;
    const after = await counters(w.ports);
    const cpu = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, +(cpuSeconds(pid) - cpu0[k]!).toFixed(2)]));
    await idle();
    return { perSecond: Math.round(OBJECTS / seconds), writes: after.writes - before.writes, cpu };
  }

  // ---- set-up: OBJECTS CronTabs with their CronJobs -------------------------
  let t = performance.now();
  await inBatches(names, 64, (name) => kube.create(CRONTABS, NS, { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: NS }, spec: { cronSpec: '*/5 * * * *', image: 'img:0' } }));
  {
    const w = await startWorkers(2);
    await enqueueAll();
    await idle();
    await Promise.all(w.procs.map((p) => p.stop(10_000)));
  }
  note(`${OBJECTS} CronTabs created and converged in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  let generation = 0;
  for (const n of WORKER_COUNTS) {
    const w = await startWorkers(n);
    const converged = await phase(w);
    generation++;
    t = performance.now();
    await inBatches(names, 64, (name) => kube.mergePatch(CRONTABS, NS, name, { spec: { image: `img:${generation}` } }));
    note(`${n} worker(s): converged phase done; ${OBJECTS} CronTabs changed in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const changing = await phase(w);
    // CPU per reconcile does not depend on what else the machine runs; from it, the ceiling
    // these processes could reach here: kube-sim is one thread, the rest share the cores.
    const perReconcile = (cpu: Record<string, number>) => {
      const workers = Object.entries(cpu).filter(([k]) => k.startsWith('worker')).reduce((n, [, v]) => n + v, 0);
      const ms = { sim: (cpu.sim! * 1000) / OBJECTS, workers: (workers * 1000) / OBJECTS, redis: (cpu.redis! * 1000) / OBJECTS };
      const total = ms.sim + ms.workers + ms.redis;
      return { cpuMs: { sim: +ms.sim.toFixed(2), workers: +ms.workers.toFixed(2), redis: +ms.redis.toFixed(2) }, cpuBoundCeilingPerSec: Math.round(Math.min(1000 / ms.sim, (os.availableParallelism() * 1000) / total)) };
    };
    const c = perReconcile(converged.cpu);
    const ch = perReconcile(changing.cpu);
    console.log(
      JSON.stringify({
        bench: 'scaling',
        workers: n,
        concurrencyPerWorker: Number(CONCURRENCY),
        objects: OBJECTS,
        convergedReconcilesPerSec: converged.perSecond,
        convergedWrites: converged.writes,
        changingReconcilesPerSec: changing.perSecond,
        changingWritesPerObject: +(changing.writes / OBJECTS).toFixed(2),
        convergedCpuMsPerReconcile: c.cpuMs,
        convergedCpuBoundCeilingPerSec: c.cpuBoundCeilingPerSec,
        changingCpuMsPerReconcile: ch.cpuMs,
        changingCpuBoundCeilingPerSec: ch.cpuBoundCeilingPerSec,
        cores: os.availableParallelism(),
        loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
      }),
    );
    await Promise.all(w.procs.map((p) => p.stop(10_000)));
  }
  kube.close();
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await queue?.close();
  await Promise.all(children.map((c) => c.stop(5_000)));
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
