// Benchmark: the whole path of a change, end to end, every part its own process.
//
//   npm run bench -- e2e        (or: node --import tsx test/bench/e2e.ts)
//
// kube-sim (`kreconcile sim`), a private redis-server, one relay, two workers.
// This process is the driver: it writes CronTab changes at a fixed rate (open
// loop, paced from the scheduled send time so a stall is not hidden) and watches
// CronJobs; the latency of a change is from just before its PATCH is sent to the
// watch event showing the CronJob with that change. Then a converged resync: every
// CronTab's key is enqueued at once, as the relay's resync does, and the workers
// must get through them with no write.
//
// Prints one JSON line. Targets: p99 ≤ 100 ms at 200 changes/s; ≥ 2,000 converged
// reconciles/s with two workers; resync writes = 0.
// The measured phase follows a warm-up at the same rate (E2E_WARMUP seconds, 3),
// whose p99 is printed too: the first seconds after set-up are slower, as every
// process compiles the update paths set-up never took.
// E2E_RATE (200), E2E_SECONDS (10), E2E_KEYS (1,000 CronTabs changed in turn),
// E2E_RESYNC (10,000 objects), WORKER_CONCURRENCY (32) tune the run.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { KubeConfig } from '@kubernetes/client-node';
import { spawnRole, type RoleProcess } from '../../services/dev/processes.ts';
import { freePort, startRedisServer, type RedisServer } from '../../services/dev/redis.ts';
import { hashTaggedPrefix, JOB_NAME, jobOptions, redisConnection, type ReconcileJobData } from '../../services/common/queue.ts';
import { CRONJOBS, CRONTABS, KubeClient, NAMESPACES } from '../../services/worker/kube.ts';
import { installCronTabCrd, waitFor } from '../integration/worker-env.ts';
import { cpuSeconds, inBatches, percentile } from '../support/bench.ts';
import { sumSamples } from '../support/metrics.ts';

const RATE = Number(process.env.E2E_RATE ?? 200);
const SECONDS = Number(process.env.E2E_SECONDS ?? 10);
const KEYS = Number(process.env.E2E_KEYS ?? 1000);
const RESYNC = Number(process.env.E2E_RESYNC ?? 10_000);
const WARMUP_SECONDS = Number(process.env.E2E_WARMUP ?? 3);
const CONCURRENCY = process.env.WORKER_CONCURRENCY ?? '32';
const NS = 'bench';
const QUEUE = 'reconcile';
const PREFIX = 'kreconcile-bench';

const children: RoleProcess[] = [];
let stopping = false;
let redis: RedisServer | undefined;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-e2e-'));

function note(msg: string): void {
  console.error(`# e2e: ${msg}`);
}

async function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

async function counters(ports: number[]): Promise<{ reconciles: number; writes: number }> {
  const texts = await Promise.all(ports.map(scrape));
  return {
    reconciles: texts.reduce((n, t) => n + sumSamples(t, 'kreconcile_worker_reconciles_total'), 0),
    writes: texts.reduce((n, t) => n + sumSamples(t, 'kreconcile_worker_api_writes_total'), 0),
  };
}

/** Watch CronJobs in the namespace from `rv`; calls back with each object's name and first container image. */
function watchCronJobs(server: string, rv: string, onImage: (name: string, image: string, at: number) => void): () => void {
  const req = http.get(`${server}/apis/batch/v1/namespaces/${NS}/cronjobs?watch=true&resourceVersion=${rv}`, (res) => {
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const at = performance.now();
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const ev = JSON.parse(line);
        if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED') continue;
        const image = ev.object?.spec?.jobTemplate?.spec?.template?.spec?.containers?.[0]?.image;
        if (typeof image === 'string') onImage(ev.object.metadata.name, image, at);
      }
    });
  });
  req.on('error', () => undefined);
  return () => req.destroy();
}

async function main(): Promise<void> {
  redis = await startRedisServer();
  const info = new Redis(redis.url);
  const redisProcessId = Number(/process_id:(\d+)/.exec(await info.info('server'))?.[1]);
  info.disconnect();
  const redisPid = () => redisProcessId;
  const kubeconfigPath = path.join(tmp, 'kubeconfig');
  const sim = spawnRole('sim', { args: ['--port', '0', '--kubeconfig-out', kubeconfigPath], env: { LOG_LEVEL: 'info', SIM_HISTORY: '200000' } });
  children.push(sim);
  const simReady = await sim.waitForLine((l) => l.msg === 'kube-sim ready', 60_000);
  const server = String(simReady.url);
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const kube = await KubeClient.create({ kubeconfig: kc, userAgent: 'bench-driver', fieldManager: 'bench', maxSockets: 128, timeoutMs: 60_000 });
  await installCronTabCrd(kube);
  await kube.create(NAMESPACES, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

  const common = { KUBECONFIG: kubeconfigPath, REDIS_URL: redis.url, QUEUE_NAME: QUEUE, QUEUE_PREFIX: PREFIX, LOG_LEVEL: 'warn' };
  const relayPort = await freePort();
  const roles: Record<string, RoleProcess> = { sim };
  children.push((roles.relay = spawnRole('relay', { env: { ...common, HEALTH_PORT: String(relayPort), LEADER_ELECTION: 'false', RESYNC_INTERVAL: '0' } })));
  const workerPorts = [await freePort(), await freePort()];
  workerPorts.forEach((port, i) => children.push((roles[`worker${i + 1}`] = spawnRole('worker', { env: { ...common, HEALTH_PORT: String(port), WORKER_CONCURRENCY: CONCURRENCY } }))));
  for (const [name, r] of Object.entries(roles)) void r.exited.then((code) => !stopping && note(`${name} exited unexpectedly (${code})`));
  const cpu = () => Object.fromEntries(Object.entries(roles).map(([name, r]) => [name, cpuSeconds(r.child.pid)]).concat([['redis', cpuSeconds(redisPid())], ['driver', process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6]]));
  const cpuDelta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.keys(a).map((k) => [k, +(b[k]! - a[k]!).toFixed(2)]));
  const ready = (port: number) => () =>
    new Promise<boolean>((resolve) => http.get({ host: '127.0.0.1', port, path: '/readyz' }, (r) => (r.resume(), resolve(r.statusCode === 200))).on('error', () => resolve(false)));
  for (const port of [relayPort, ...workerPorts]) await waitFor(`role on port ${port} to be ready`, ready(port), 60_000, 200);
  note('kube-sim, redis, relay and two workers are up');

  const queue = new Queue<ReconcileJobData>(QUEUE, { connection: redisConnection(redis.url), prefix: hashTaggedPrefix(PREFIX) });
  const idle = async (timeoutMs: number) =>
    waitFor(
      'the queue to be idle',
      async () => Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0),
      timeoutMs,
      100,
    );
  const cronTab = (name: string, image: string) => ({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: NS }, spec: { cronSpec: '*/5 * * * *', image } });
  const countCronJobs = async () => {
    let n = 0;
    let cont: string | undefined;
    do {
      const page = await kube.list<unknown>(CRONJOBS, NS, { limit: '5000', ...(cont ? { continue: cont } : {}) });
      n += page.items.length;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return n;
  };

  // ---- set-up: KEYS CronTabs, converged -------------------------------------
  let t = performance.now();
  const names = Array.from({ length: KEYS }, (_, i) => `ct-${i}`);
  await inBatches(names, 100, (name) => kube.create(CRONTABS, NS, cronTab(name, 'img-start')));
  await waitFor(`${KEYS} CronJobs`, async () => (await countCronJobs()) >= KEYS, 300_000, 250);
  await idle(120_000);
  note(`${KEYS} CronTabs converged in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // ---- latency at a fixed rate ------------------------------------------------
  /**
   * Changes at RATE for `seconds`, each setting image `<tag>-<i>` on CronTab i mod KEYS;
   * resolves once every change is reflected (or given up on) and the queue is idle.
   */
  const runAtRate = async (seconds: number, tag: string) => {
    const list = await kube.list<unknown>(CRONJOBS, NS, { limit: '1' });
    const total = Math.round(RATE * seconds);
    const sentAt = new Float64Array(total).fill(NaN);
    const seenAt = new Float64Array(total).fill(NaN);
    const pattern = new RegExp(`^${tag}-(\\d+)$`);
    const stopWatch = watchCronJobs(server, list.metadata!.resourceVersion!, (_name, image, at) => {
      const m = pattern.exec(image);
      if (m) {
        const i = Number(m[1]);
        if (i < total && Number.isNaN(seenAt[i]!)) seenAt[i] = at;
      }
    });
    const start = performance.now();
    const inflight: Promise<unknown>[] = [];
    let driverErrors = 0;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      // Measured from the scheduled time: a driver that fell behind does not hide the delay.
      sentAt[i] = Math.min(due, performance.now());
      inflight.push(kube.mergePatch(CRONTABS, NS, names[i % KEYS]!, { spec: { image: `${tag}-${i}` } }).catch(() => driverErrors++));
    }
    await Promise.all(inflight);
    const driveSeconds = (performance.now() - start) / 1000;
    // A change is reflected when the CronJob shows it or a later change of the same CronTab.
    const reflectedAt = (i: number): number => {
      for (let j = i; j < total; j += KEYS) if (!Number.isNaN(seenAt[j]!)) return seenAt[j]!;
      return NaN;
    };
    await waitFor('every change to be reflected', () => Array.from({ length: Math.min(KEYS, total) }, (_, k) => total - 1 - k).every((i) => !Number.isNaN(seenAt[i]!)), 60_000, 50).catch(() => undefined);
    await idle(60_000);
    const phaseSeconds = (performance.now() - start) / 1000;
    stopWatch();
    const latencies: number[] = [];
    let missing = 0;
    let superseded = 0;
    for (let i = 0; i < total; i++) {
      const at = reflectedAt(i);
      if (Number.isNaN(at)) missing++;
      else {
        if (Number.isNaN(seenAt[i]!)) superseded++;
        latencies.push(at - sentAt[i]!);
      }
    }
    latencies.sort((a, b) => a - b);
    // When in the run the slow changes were (a stall shows up as one bad second).
    const bySecond = Array.from({ length: Math.ceil(seconds) }, (_, sec) => {
      const inSecond = Array.from({ length: RATE }, (_, k) => sec * RATE + k).filter((i) => i < total).map((i) => reflectedAt(i) - sentAt[i]!).filter(Number.isFinite).sort((a, b) => a - b);
      return Math.round(percentile(inSecond, 99));
    });
    note(`${tag}: p99 ms in each second: ${bySecond.join(' ')}`);
    return { total, latencies, missing, superseded, driverErrors, driveSeconds, phaseSeconds };
  };

  // Warm-up: the first seconds after set-up run code paths set-up never took (updates rather
  // than creates) through the JIT in every process; they are reported apart, not hidden.
  const warm = WARMUP_SECONDS > 0 ? await runAtRate(WARMUP_SECONDS, 'warm') : undefined;
  if (warm) note(`warm-up: ${warm.total} changes in ${warm.driveSeconds.toFixed(1)} s, p99 ${percentile(warm.latencies, 99).toFixed(1)} ms`);

  const before = await counters(workerPorts);
  const cpuBefore = cpu();
  const startWall = Date.now();
  const { total, latencies, missing, superseded, driverErrors, driveSeconds, phaseSeconds } = await runAtRate(SECONDS, 'img');
  // Where the time goes, from the last completed jobs' own timestamps: relay (seen → enqueued),
  // queue (enqueued → taken) and worker (taken → done).
  const jobs = (await queue.getCompleted(0, 999)).filter((j) => j.timestamp >= startWall);
  const spread = (values: number[]) => {
    const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  const stages = {
    relayEnqueueMs: spread(jobs.map((j) => j.timestamp - j.data.seenAt)),
    queueWaitMs: spread(jobs.map((j) => j.processedOn! - j.timestamp)),
    workerMs: spread(jobs.map((j) => j.finishedOn! - j.processedOn!)),
  };
  const after = await counters(workerPorts);
  const cpuLatency = cpuDelta(cpuBefore, cpu());
  note(`latency phase: ${total} changes in ${driveSeconds.toFixed(1)} s, ${missing} never reflected`);

  // ---- converged resync of RESYNC objects ------------------------------------
  t = performance.now();
  const more = Array.from({ length: Math.max(0, RESYNC - KEYS) }, (_, i) => `rs-${i}`);
  await inBatches(more, 100, (name) => kube.create(CRONTABS, NS, cronTab(name, 'img-resync')));
  const all = [...names, ...more];
  await waitFor(`${all.length} CronJobs`, async () => (await countCronJobs()) >= all.length, 600_000, 500);
  await idle(300_000);
  note(`${all.length} CronTabs converged in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  const beforeResync = await counters(workerPorts);
  const cpuResyncBefore = cpu();
  const resyncStart = performance.now();
  for (let i = 0; i < all.length; i += 1000) {
    await queue.addBulk(
      all.slice(i, i + 1000).map((name) => {
        const key = `CronTab/${NS}/${name}`;
        return { name: JOB_NAME, data: { key, reason: 'RESYNC' as const, seenAt: Date.now() }, opts: jobOptions(key) };
      }),
    );
  }
  // Polled in Redis, not on the workers' /metrics: scraping them every few ms would take their CPU.
  await waitFor('the resync to be processed', async () => Object.values(await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized')).every((n) => n === 0), 300_000, 10);
  const resyncSeconds = (performance.now() - resyncStart) / 1000;
  const afterResync = await counters(workerPorts);
  const cpuResync = cpuDelta(cpuResyncBefore, cpu());

  const changesPerSecond = total / driveSeconds;
  console.log(
    JSON.stringify({
      bench: 'e2e',
      rate: Math.round(changesPerSecond),
      changes: total,
      p50Ms: +percentile(latencies, 50).toFixed(1),
      p99Ms: +percentile(latencies, 99).toFixed(1),
      maxMs: +(latencies.at(-1) ?? NaN).toFixed(1),
      warmupSeconds: WARMUP_SECONDS,
      warmupP99Ms: warm ? +percentile(warm.latencies, 99).toFixed(1) : null,
      superseded,
      missing,
      driverErrors,
      reconcilesPerSec: Math.round((after.reconciles - before.reconciles) / phaseSeconds),
      stages,
      apiWritesPerChange: +((after.writes - before.writes) / total).toFixed(2),
      resyncObjects: all.length,
      resyncReconcilesPerSec: Math.round((afterResync.reconciles - beforeResync.reconciles) / resyncSeconds),
      resyncWrites: afterResync.writes - beforeResync.writes,
      latencyPhaseCpuSeconds: cpuLatency,
      resyncCpuSeconds: cpuResync,
      loadAverage1m: +os.loadavg()[0]!.toFixed(1),
      workers: 2,
      concurrency: Number(CONCURRENCY),
      cpus: os.cpus().length,
    }),
  );
  await queue.close();
  kube.close();
}

process.on('uncaughtException', (err) => {
  note(`uncaught in the driver: ${err.stack}`);
  process.exitCode = 1;
});
try {
  await main();
} finally {
  stopping = true;
  await Promise.all(children.reverse().map((c) => c.stop(5_000)));
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
