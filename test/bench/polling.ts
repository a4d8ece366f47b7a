// Benchmark: the classic first automation script — list every Secret every N
// seconds and diff — beside kreconcile's relay watching the same kube-sim.
//
//   npm run bench -- polling        (or: node --import tsx test/bench/polling.ts)
//
// kube-sim runs in this process holding POLL_SECRETS Secrets (default 10,000).
// Each client reaches it through its own counting TCP proxy, so requests and
// bytes are counted on the wire, both directions:
//  - the naive poller (in this process): every POLL_INTERVAL seconds (default
//    10) it lists all Secrets in pages of 500 (what kubectl does) and compares
//    resourceVersions with the previous list;
//  - the relay (`kreconcile relay`, a child process, as deployed: Lease-based
//    leader election, watches on Secrets, CronTabs and managed CronJobs, a
//    private redis-server): after its initial list it only watches.
// Both are measured over the same POLL_WINDOW seconds (default 60) after the
// relay's initial list; the relay's start-up list is reported on its own.
// During the window POLL_TRIALS new Secrets (default 6) appear at random times;
// "time to notice" is from the create's answer to the poller finishing the
// list that shows it, and to the relay's job for that key being in Redis.
// One JSON line per controller.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { QueueEvents, Queue } from 'bullmq';
import YAML from 'yaml';
import { hashTaggedPrefix, redisConnection } from '../../services/common/queue.ts';
import { spawnRole, type RoleProcess } from '../../services/dev/processes.ts';
import { startRedisServer, type RedisServer } from '../../services/dev/redis.ts';
import { systemContext } from '../../services/kube-sim/api.ts';
import { kubeconfigYamlFor, startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { cpuSeconds, percentile } from '../support/bench.ts';
import { sleep } from '../support/wait.ts';

const SECRETS = Number(process.env.POLL_SECRETS ?? 10_000);
const INTERVAL_S = Number(process.env.POLL_INTERVAL ?? 10);
const WINDOW_S = Number(process.env.POLL_WINDOW ?? 60);
const TRIALS = Number(process.env.POLL_TRIALS ?? 6);
const NS = 'polling';
const QUEUE = 'reconcile';
const PREFIX = 'kreconcile-polling';

const note = (msg: string) => console.error(`# polling: ${msg}`);

/** A TCP proxy in front of the API that counts bytes each way and HTTP request lines. */
interface CountingProxy {
  url: string;
  counts(): { requests: number; leaseRequests: number; bytesIn: number; bytesOut: number };
  close(): Promise<void>;
}

async function countingProxy(targetPort: number): Promise<CountingProxy> {
  let bytesIn = 0; // server → client (responses, watch streams)
  let bytesOut = 0; // client → server (requests)
  let requests = 0;
  let leaseRequests = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let head = '';
    client.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length;
      // Request lines: bodies here are JSON (Lease PUTs), which never start a line with a method.
      head = (head + chunk.toString('latin1')).slice(-4096);
      for (const m of chunk.toString('latin1').matchAll(/(?:^|\r\n)(GET|PUT|POST|PATCH|DELETE) (\S+) HTTP\/1\.1/g)) {
        requests++;
        if (m[2]!.includes('/leases')) leaseRequests++;
      }
    });
    upstream.on('data', (chunk: Buffer) => (bytesIn += chunk.length));
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    counts: () => ({ requests, leaseRequests, bytesIn, bytesOut }),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/** The naive controller: list everything, diff resourceVersions, sleep, repeat. */
class NaivePoller {
  private known = new Map<string, string>();
  private running = false;
  private loop?: Promise<void>;
  polls = 0;
  lastPollMs = 0;
  onChange: (id: string, at: number) => void = () => {};

  constructor(private readonly url: string) {}

  async pollOnce(): Promise<void> {
    const started = performance.now();
    const seen = new Map<string, string>();
    let cont: string | undefined;
    do {
      const res = await fetch(`${this.url}/api/v1/secrets?limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`, { headers: { 'user-agent': 'naive-poller' } });
      if (!res.ok) throw new Error(`list: HTTP ${res.status}`);
      const body = (await res.json()) as { items: { metadata: { namespace: string; name: string; resourceVersion: string } }[]; metadata: { continue?: string } };
      for (const s of body.items) seen.set(`${s.metadata.namespace}/${s.metadata.name}`, s.metadata.resourceVersion);
      cont = body.metadata.continue || undefined;
    } while (cont);
    const at = performance.now();
    for (const [id, rv] of seen) if (this.known.get(id) !== rv) this.onChange(id, at);
    this.known = seen;
    this.polls++;
    this.lastPollMs = at - started;
  }

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const next = performance.now() + INTERVAL_S * 1000;
        await this.pollOnce();
        const wait = next - performance.now();
        if (wait > 0 && this.running) await sleep(wait);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

let sim: KubeSim | undefined;
let redis: RedisServer | undefined;
let relay: RoleProcess | undefined;
const closers: (() => Promise<unknown>)[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-polling-'));

async function main(): Promise<void> {
  sim = await startKubeSim({ historyLimit: SECRETS + 10_000 });
  const s = sim;
  const ctx = systemContext('system:bench');
  const namespaces = s.registry.lookup('', 'v1', 'namespaces')!;
  const secrets = s.registry.lookup('', 'v1', 'secrets')!;
  await s.api.create(ctx, namespaces, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  // The relay also watches CronTabs: the CRD must be there (and Established) for it to sync.
  const crds = s.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  await s.api.create(ctx, crds, undefined, YAML.parse(fs.readFileSync(path.join(import.meta.dirname, '..', '..', 'infra', 'k8s', 'crontab-crd.yaml'), 'utf8')));
  while (!s.registry.lookup('stable.example.com', 'v1', 'crontabs')) await sleep(20);
  let t = performance.now();
  const secret = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: NS, labels: { app: 'bench' } }, type: 'Opaque', stringData: { username: 'app', password: randomBytes(15).toString('base64url') } });
  for (let i = 0; i < SECRETS; i++) await s.api.create(ctx, secrets, NS, secret(`s-${i}`));
  note(`${SECRETS} Secrets stored in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const pollerProxy = await countingProxy(s.port);
  const relayProxy = await countingProxy(s.port);
  closers.push(() => pollerProxy.close(), () => relayProxy.close());
  const relayKubeconfig = path.join(tmp, 'relay-kubeconfig');
  fs.writeFileSync(relayKubeconfig, kubeconfigYamlFor(relayProxy.url), { mode: 0o600 });

  redis = await startRedisServer();
  const prefix = hashTaggedPrefix(PREFIX);
  const queueEvents = new QueueEvents(QUEUE, { connection: redisConnection(redis.url), prefix });
  const queue = new Queue(QUEUE, { connection: redisConnection(redis.url), prefix });
  closers.push(() => queueEvents.close(), () => queue.close());
  await queueEvents.waitUntilReady();

  // The relay as deployed (defaults), except its health port and its own Redis.
  t = performance.now();
  relay = spawnRole('relay', {
    env: { KUBECONFIG: relayKubeconfig, REDIS_URL: redis.url, QUEUE_NAME: QUEUE, QUEUE_PREFIX: PREFIX, HEALTH_PORT: '0', LOG_LEVEL: 'info', POD_NAME: 'bench-relay' },
    onLine: (line, parsed) => {
      if (parsed && (parsed.level === 'warn' || parsed.level === 'error' || parsed.level === 'fatal')) console.error(`# relay: ${line}`);
    },
  });
  await relay.waitForLine((l) => l.msg === 'relay synced: every resource listed or resumed, watching', 180_000);
  // Synced means listed and watching; the keys may still be on their way to Redis.
  await (async () => {
    while ((await queue.getJobCounts('waiting')).waiting < SECRETS) await sleep(100);
  })();
  const relayStartup = { seconds: (performance.now() - t) / 1000, ...relayProxy.counts() };
  note(`relay listed and enqueued ${SECRETS} keys in ${relayStartup.seconds.toFixed(1)} s`);

  const poller = new NaivePoller(pollerProxy.url);
  await poller.pollOnce(); // its own start-up list, outside the window like the relay's
  const pollerStartup = pollerProxy.counts();

  // ---- the window -----------------------------------------------------------
  const createdAt = new Map<string, number>();
  const pollerNoticed = new Map<string, number>();
  const relayNoticed = new Map<string, number>();
  poller.onChange = (id, at) => {
    if (createdAt.has(id) && !pollerNoticed.has(id)) pollerNoticed.set(id, at - createdAt.get(id)!);
  };
  queueEvents.on('added', ({ jobId }) => {
    const at = performance.now();
    void queue.getJob(jobId).then((job) => {
      const key = job?.data?.key as string | undefined;
      const id = key?.startsWith('Secret/') ? key.slice('Secret/'.length) : undefined;
      if (id && createdAt.has(id) && !relayNoticed.has(id)) relayNoticed.set(id, at - createdAt.get(id)!);
    });
  });
  const p0 = pollerProxy.counts();
  const r0 = relayProxy.counts();
  const relayCpu0 = cpuSeconds(relay.child.pid);
  const windowStart = performance.now();
  poller.start();
  // New Secrets at random moments, spread over the window but leaving a poll interval at its end.
  const offsets = Array.from({ length: TRIALS }, () => Math.random() * Math.max(1, WINDOW_S - INTERVAL_S - 2) * 1000).sort((a, b) => a - b);
  for (const [i, offset] of offsets.entries()) {
    const wait = windowStart + offset - performance.now();
    if (wait > 0) await sleep(wait);
    const name = `trial-${i}`;
    await s.api.create(ctx, secrets, NS, secret(name));
    createdAt.set(`${NS}/${name}`, performance.now());
  }
  const rest = windowStart + WINDOW_S * 1000 - performance.now();
  if (rest > 0) await sleep(rest);
  const windowSeconds = (performance.now() - windowStart) / 1000;
  const p1 = pollerProxy.counts();
  const r1 = relayProxy.counts();
  const relayCpu = cpuSeconds(relay.child.pid) - relayCpu0;
  await poller.stop();

  const perMin = (n: number) => Math.round((n * 60) / windowSeconds);
  const notice = (m: Map<string, number>) => {
    const v = [...m.values()].sort((a, b) => a - b);
    return { noticed: v.length, noticeP50Ms: +percentile(v, 50).toFixed(1), noticeMaxMs: +(v.at(-1) ?? NaN).toFixed(1) };
  };
  const common = { bench: 'polling', secrets: SECRETS, windowSeconds: Math.round(windowSeconds), trials: TRIALS };
  console.log(
    JSON.stringify({
      ...common,
      controller: 'naive-poller',
      intervalSeconds: INTERVAL_S,
      requestsPerMin: perMin(p1.requests - p0.requests),
      bytesPerMin: perMin(p1.bytesIn - p0.bytesIn + p1.bytesOut - p0.bytesOut),
      ...notice(pollerNoticed),
      listSeconds: +(poller.lastPollMs / 1000).toFixed(2),
      startupRequests: pollerStartup.requests,
      startupBytes: pollerStartup.bytesIn + pollerStartup.bytesOut,
      loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
    }),
  );
  console.log(
    JSON.stringify({
      ...common,
      controller: 'kreconcile-relay',
      requestsPerMin: perMin(r1.requests - r0.requests),
      leaseRequestsPerMin: perMin(r1.leaseRequests - r0.leaseRequests),
      bytesPerMin: perMin(r1.bytesIn - r0.bytesIn + r1.bytesOut - r0.bytesOut),
      ...notice(relayNoticed),
      cpuSecondsPerMin: +((relayCpu * 60) / windowSeconds).toFixed(2),
      startupSeconds: +relayStartup.seconds.toFixed(1),
      startupRequests: relayStartup.requests,
      startupBytes: relayStartup.bytesIn + relayStartup.bytesOut,
      loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10,
    }),
  );
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await relay?.stop(5_000);
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await redis?.stop();
  await sim?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
}
