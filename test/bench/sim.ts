// Benchmark: kube-sim's own cost per CronTab change, without Redis or workers.
//
//   npm run bench -- sim        (or: node --import tsx test/bench/sim.ts)
//
// kube-sim runs as its own process (`kreconcile sim`) with four open watches, as in
// the e2e bench (the relay's three, the driver's one). This process replays the
// API requests one CronTab change causes, as fast as kube-sim answers them, with
// SIM_CONCURRENCY changes in flight: the driver's PATCH of the CronTab, the
// worker's two reads, its CronJob update, its status patch and its Event. It
// measures kube-sim's CPU per change, the figure that bounds the e2e latency on a
// small machine, where kube-sim is the hub every hop goes through.
//
// Prints one JSON line. SIM_SECONDS (8), SIM_KEYS (200), SIM_CONCURRENCY (8).
// SIM_PROFILE=<dir> writes kube-sim's CPU profile there (its set-up is small next to the run).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { KubeConfig } from '@kubernetes/client-node';
import { spawnRole } from '../../services/dev/processes.ts';
import { CRONJOBS, CRONTABS, KubeClient, NAMESPACES, type Resource } from '../../services/worker/kube.ts';
import { desiredCronJob, mergeOwned, type CronJob, type CronTab } from '../../services/worker/reconcilers/crontab.ts';
import { installCronTabCrd } from '../integration/worker-env.ts';
import { cpuSeconds, inBatches } from '../support/bench.ts';

const SECONDS = Number(process.env.SIM_SECONDS ?? 8);
const KEYS = Number(process.env.SIM_KEYS ?? 200);
const CONCURRENCY = Number(process.env.SIM_CONCURRENCY ?? 8);
const NS = 'bench';
const EVENTS: Resource = { group: 'events.k8s.io', version: 'v1', plural: 'events', namespaced: true };

function openWatch(server: string, pathAndQuery: string): () => void {
  const req = http.get(`${server}${pathAndQuery}`, (res) => res.resume());
  req.on('error', () => undefined);
  return () => req.destroy();
}

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-simbench-'));
  const kubeconfigPath = path.join(tmp, 'kubeconfig');
  const sim = spawnRole('sim', { args: ['--port', '0', '--kubeconfig-out', kubeconfigPath], env: { LOG_LEVEL: 'info', SIM_HISTORY: '200000', ...(process.env.SIM_PROFILE ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.SIM_PROFILE}` } : {}) } });
  try {
    const ready = await sim.waitForLine((l) => l.msg === 'kube-sim ready', 60_000);
    const server = String(ready.url);
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const driver = await KubeClient.create({ kubeconfig: kc, userAgent: 'bench-driver', fieldManager: 'bench', maxSockets: 64 });
    const worker = await KubeClient.create({ kubeconfig: kc, userAgent: 'kreconcile-worker', fieldManager: 'kreconcile-worker', maxSockets: 64 });
    await installCronTabCrd(driver);
    await driver.create(NAMESPACES, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    const names = Array.from({ length: KEYS }, (_, i) => `ct-${i}`);
    await inBatches(names, 50, async (name) => {
      const ct = await driver.create<CronTab>(CRONTABS, NS, { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: NS }, spec: { cronSpec: '*/5 * * * *', image: 'img-start' } });
      await worker.create(CRONJOBS, NS, desiredCronJob(ct));
    });
    const rv = (await driver.list(CRONTABS, NS, { limit: '1' })).metadata!.resourceVersion!;
    const watches = [
      openWatch(server, `/apis/stable.example.com/v1/crontabs?watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`),
      openWatch(server, `/apis/batch/v1/cronjobs?watch=true&allowWatchBookmarks=true&labelSelector=app.kubernetes.io%2Fmanaged-by%3Dkreconcile&resourceVersion=${rv}`),
      openWatch(server, `/api/v1/secrets?watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`),
      openWatch(server, `/apis/batch/v1/namespaces/${NS}/cronjobs?watch=true&resourceVersion=${rv}`),
    ];

    const change = async (i: number) => {
      const name = names[i % KEYS]!;
      await driver.mergePatch(CRONTABS, NS, name, { spec: { image: `img-${i}` } });
      const [ct, cj] = await Promise.all([worker.get<CronTab>(CRONTABS, NS, name), worker.get<CronJob>(CRONJOBS, NS, name)]);
      await worker.update(CRONJOBS, NS, name, mergeOwned(desiredCronJob(ct!), cj!));
      await worker.mergePatch(CRONTABS, NS, name, { metadata: { resourceVersion: ct!.metadata.resourceVersion }, status: { observedGeneration: ct!.metadata.generation, cronJobName: name } }, 'status');
      await worker.create(EVENTS, NS, {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { generateName: `${name}.`, namespace: NS },
        eventTime: new Date().toISOString().replace('Z', '000Z'),
        reportingController: 'kreconcile.io/worker',
        reportingInstance: 'bench',
        action: 'Update',
        reason: 'CronJobUpdated',
        type: 'Normal',
        regarding: { apiVersion: 'stable.example.com/v1', kind: 'CronTab', namespace: NS, name },
        note: `updated CronJob ${name}: container.image`,
      });
    };
    // Keys never collide in flight: each lane owns the keys ≡ lane (mod CONCURRENCY).
    const lanes = Math.min(CONCURRENCY, KEYS);
    const cpuBefore = cpuSeconds(sim.child.pid);
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    let done = 0;
    await Promise.all(
      Array.from({ length: lanes }, async (_, lane) => {
        for (let i = lane; performance.now() < deadline; i += lanes) {
          await change(i);
          done++;
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    const simCpu = cpuSeconds(sim.child.pid) - cpuBefore;
    for (const stop of watches) stop();
    console.log(JSON.stringify({ bench: 'sim', changes: done, changesPerSec: Math.round(done / seconds), simCpuMsPerChange: +((simCpu * 1000) / done).toFixed(3), requestsPerChange: 6, watches: watches.length, keys: KEYS, concurrency: lanes }));
    driver.close();
    worker.close();
  } finally {
    await sim.stop(5_000);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
