// Relay benchmark: kube-sim holding 100,000 Secrets; for each relay, in its own
// child process (so its memory is its own), the seconds from process start until
// every key is in the queue, and its peak RSS (the kernel's VmHWM). One JSON line
// per relay: kreconcile's (`kreconcile relay`, as deployed) and one built on
// @kubernetes/client-node's informer (test/bench/_relay-informer.ts). Both run as
// compiled JavaScript, as the container image runs them (tsx in the child would
// add its own compiler's memory to the figure).
//
//   node --import tsx test/bench/relay.ts          (or: npm run bench -- relay)
//   BENCH_RELAY_OBJECTS=20000 …                    (a smaller run)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import YAML from 'yaml';
import { hashTaggedPrefix, redisConnection } from '../../services/common/queue.ts';
import { systemContext } from '../../services/kube-sim/api.ts';
import { startKubeSim } from '../../services/kube-sim/index.ts';
import { startRedisServer } from '../../services/dev/redis.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const N = Number(process.env.BENCH_RELAY_OBJECTS ?? 100_000);
const NAMESPACES = 20;
const TARGET_SECONDS = 20;
const TARGET_RSS_MB = 150;
const TIMEOUT_MS = 180_000;

const log = (msg: string) => process.stderr.write(`# ${msg}\n`);
const BUILD = path.join(ROOT, 'node_modules', '.cache', 'kreconcile-relay-bench');
// V8 flags the relay is deployed with (NODE_OPTIONS in its Deployment): a small young
// generation and an old-generation ceiling keep V8 from growing the heap far past
// what is live (without them the same run peaks near 330 MB, nearly all garbage).
const RELAY_NODE_OPTIONS = process.env.BENCH_RELAY_NODE_OPTIONS ?? '--max-semi-space-size=2 --max-old-space-size=256';
// The informer gets the same young generation; an old-generation ceiling would only
// make it crash, since it must hold every object.
const INFORMER_NODE_OPTIONS = process.env.BENCH_INFORMER_NODE_OPTIONS ?? '--max-semi-space-size=2';

/** tsc, as the Dockerfile builds the image, into a cache folder (incremental). */
function build(): void {
  fs.mkdirSync(BUILD, { recursive: true });
  // The package scope stops at node_modules: say again that these .js files are ES modules.
  fs.writeFileSync(path.join(BUILD, 'package.json'), '{"type":"module"}\n');
  const tsconfig = {
    extends: path.join(ROOT, 'tsconfig.build.json'),
    compilerOptions: { outDir: path.join(BUILD, 'dist'), rootDir: ROOT, sourceMap: false, incremental: true, tsBuildInfoFile: path.join(BUILD, 'tsbuildinfo') },
    include: [path.join(ROOT, 'services/**/*.ts'), path.join(ROOT, 'test/bench/_relay-informer.ts')],
  };
  fs.writeFileSync(path.join(BUILD, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
  const started = Date.now();
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(BUILD, 'tsconfig.json')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('tsc failed');
  log(`compiled in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function cpuSeconds(pid: number): number | undefined {
  // utime + stime, fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100/s on Linux).
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.split(') ')[1]!.split(' ');
  return Math.round(((Number(fields[11]) + Number(fields[12])) / 100) * 100) / 100;
}

function peakRssMB(pid: number): number | undefined {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined; // already gone
  }
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

build();
const redis = await startRedisServer();
// A benchmark stopped by a signal must not leave its redis-server behind.
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void redis.stop().finally(() => process.exit(130)));
const sim = await startKubeSim({ historyLimit: 1000 });
try {
  const ctx = systemContext('bench');
  const nsInfo = sim.registry.lookup('', 'v1', 'namespaces')!;
  const secretInfo = sim.registry.lookup('', 'v1', 'secrets')!;
  const crdInfo = sim.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
  await sim.api.create(ctx, crdInfo, undefined, YAML.parse(fs.readFileSync(path.join(ROOT, 'infra/k8s/crontab-crd.yaml'), 'utf8')));
  for (let i = 0; i < NAMESPACES; i++) await sim.api.create(ctx, nsInfo, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${i}` } });
  const loadStart = Date.now();
  for (let i = 0; i < N; i++) {
    const namespace = `bench-${i % NAMESPACES}`;
    await sim.api.create(ctx, secretInfo, namespace, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: `secret-${i}`, namespace, labels: { app: 'bench', shard: String(i % 16) }, annotations: { 'bench.example.com/note': 'a typical small annotation' } },
      type: 'Opaque',
      data: { username: Buffer.from(`user-${i}`).toString('base64'), password: Buffer.from(`pw-${randomUUID()}`).toString('base64') },
    });
  }
  log(`kube-sim holds ${N} Secrets (loaded in ${((Date.now() - loadStart) / 1000).toFixed(1)} s)`);

  const runs: { name: string; args: string[]; env: NodeJS.ProcessEnv & { NODE_OPTIONS: string } }[] = [
    {
      name: 'kreconcile',
      args: [path.join(BUILD, 'dist/services/cli.js'), 'relay'],
      env: { LEADER_ELECTION: 'false', RESYNC_INTERVAL: '0', HEALTH_PORT: '0', LOG_LEVEL: 'warn', LOG_JSON: '1', NODE_OPTIONS: RELAY_NODE_OPTIONS },
    },
    { name: 'client-node-informer', args: [path.join(BUILD, 'dist/test/bench/_relay-informer.js')], env: { NODE_OPTIONS: INFORMER_NODE_OPTIONS } },
  ];

  const results: Record<string, unknown>[] = [];
  // BENCH_RELAY_ONLY=kreconcile skips the comparison (for tuning runs).
  for (const run of runs.filter((r) => !process.env.BENCH_RELAY_ONLY || r.name === process.env.BENCH_RELAY_ONLY)) {
    const queueName = `bench-${randomUUID()}`;
    const prefix = 'kreconcile-bench';
    const queue = new Queue(queueName, { connection: redisConnection(redis.url), prefix: hashTaggedPrefix(prefix) });
    const started = Date.now();
    const child: ChildProcess = spawn(process.execPath, run.args, {
      cwd: ROOT,
      env: { ...process.env, KUBECONFIG: sim.kubeconfigPath, REDIS_URL: redis.url, QUEUE_NAME: queueName, QUEUE_PREFIX: prefix, ...run.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let waiting = 0;
    let error: string | undefined;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      if (child.exitCode !== null) {
        error = `exited with ${child.exitCode}: ${stderr.slice(-500)}`;
        break;
      }
      waiting = await queue.getWaitingCount();
      if (waiting >= N) break;
      if (Date.now() - started > TIMEOUT_MS) {
        error = `timed out with ${waiting} of ${N} keys enqueued`;
        break;
      }
    }
    const seconds = (Date.now() - started) / 1000;
    const rss = child.exitCode === null ? peakRssMB(child.pid!) : undefined;
    const cpu = child.exitCode === null ? cpuSeconds(child.pid!) : undefined;
    if (rss === undefined && !error) error = `exited: ${stderr.slice(-500)}`;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    const result: Record<string, unknown> = { bench: 'relay', relay: run.name, objects: N, keysEnqueued: waiting, secondsToAllEnqueued: Math.round(seconds * 100) / 100, cpuSeconds: cpu, peakRssMB: rss, nodeOptions: run.env.NODE_OPTIONS };
    if (error) result.error = error;
    results.push(result);
  }

  const ours = results[0]!;
  const theirs = results[1] ?? {};
  ours.targets = { seconds: TARGET_SECONDS, peakRssMB: TARGET_RSS_MB, lessMemoryThanInformer: true };
  ours.ok =
    !ours.error &&
    (ours.secondsToAllEnqueued as number) <= TARGET_SECONDS &&
    (ours.peakRssMB as number) <= TARGET_RSS_MB &&
    (theirs.peakRssMB === undefined || (ours.peakRssMB as number) < (theirs.peakRssMB as number));
  for (const r of results) console.log(JSON.stringify({ ...r, loadAverage1m: Math.round(os.loadavg()[0]! * 10) / 10 }));
} finally {
  await sim.stop();
  await redis.stop();
}
