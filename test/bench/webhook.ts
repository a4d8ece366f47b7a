// Benchmark: the webhook against a bare Node HTTPS server, both over HTTPS on
// loopback, each in its own child process, driven from this one.
//
//   node --import tsx test/bench/webhook.ts        (or: npm run bench -- webhook)
//
// The bare server reads the same body, parses it and answers an allow review
// echoing the uid: the ceiling of Node on this machine. For each server it prints
// one JSON line: reviews/s at saturation (autocannon, closed loop, C connections),
// p50/p99 latency at a fixed 1,000 reviews/s (open loop, evenly paced: sends
// never wait for answers, so a server stall shows in the latencies), and the
// server's CPU time per review. Targets: kreconcile ≥ 60 % of bare reviews/s, p99 ≤ 5 ms.
// Both servers run side by side and are measured in alternating rounds; each
// figure is the best round (other load on a shared machine only makes a round
// worse), and every round's figures are printed too. BENCH_ROUNDS (default 3),
// BENCH_SECONDS per measurement (default 5), BENCH_CONNECTIONS (default 16) and
// BENCH_LOG_LEVEL (the webhook's, default info) tune the run. On a machine
// shared with other work, BENCH_PRIORITY=-10 (root only) raises this process and
// both servers above it, as if the machine were dedicated to the benchmark.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { createCA } from '../../services/common/certs.ts';
import { freePort } from '../../services/dev/redis.ts';
import { cpuSeconds } from '../support/bench.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const FIXED_RATE = 1000;

// ---- child mode: the bare server ---------------------------------------------
if (process.argv[2] === '--bare-server') {
  const dir = process.argv[3]!;
  const server = https.createServer({ cert: fs.readFileSync(path.join(dir, 'tls.crt')), key: fs.readFileSync(path.join(dir, 'tls.key')) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const body = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as net.AddressInfo).port }));
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

// ---- parent mode --------------------------------------------------------------
interface Running {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

function stopper(child: ChildProcess): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
}

async function startBare(dir: string): Promise<Running> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--bare-server', dir], { cwd: root, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return { port, child, stop: stopper(child) };
}

/** The real role, as deployed: `kreconcile webhook`, its log going to a file as a container runtime would. */
async function startKreconcile(dir: string): Promise<Running> {
  const [port, healthPort] = [await freePort(), await freePort()];
  const logFd = fs.openSync(path.join(dir, 'webhook.log'), 'w');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'services/cli.ts', 'webhook', '--host', '127.0.0.1', '--port', String(port), '--health-port', String(healthPort), '--tls-cert', path.join(dir, 'tls.crt'), '--tls-key', path.join(dir, 'tls.key')],
    { cwd: root, stdio: ['ignore', logFd, 'inherit'], env: { ...process.env, LOG_JSON: '1', LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info' } },
  );
  fs.closeSync(logFd);
  let exited = false;
  child.once('exit', () => (exited = true));
  // Startup only: poll readiness until it answers.
  for (;;) {
    if (exited) throw new Error('kreconcile webhook exited during startup');
    const ok = await new Promise<boolean>((resolve) => {
      http.get({ host: '127.0.0.1', port: healthPort, path: '/readyz' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on('error', () => resolve(false));
    });
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { port, child, stop: stopper(child) };
}

/** A realistic CREATE review of a Secret with a password that passes the policy (~2 KB). */
function reviewBody(uid: string): string {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: 'db-credentials',
      namespace: 'payments',
      labels: { 'app.kubernetes.io/name': 'payments-db', 'app.kubernetes.io/part-of': 'payments', 'app.kubernetes.io/managed-by': 'helm' },
      annotations: { 'meta.helm.sh/release-name': 'payments', 'meta.helm.sh/release-namespace': 'payments' },
      managedFields: [{ manager: 'helm', operation: 'Update', apiVersion: 'v1', time: '2025-01-02T03:04:05Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {}, 'f:password': {}, 'f:username': {} }, 'f:metadata': { 'f:labels': { '.': {} } }, 'f:type': {} } }],
    },
    data: { username: Buffer.from('payments').toString('base64'), password: Buffer.from('tangerine-violin-47-Orbit').toString('base64'), 'ca.crt': Buffer.from('x'.repeat(900)).toString('base64') },
  };
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Secret' },
      resource: { group: '', version: 'v1', resource: 'secrets' },
      requestKind: { group: '', version: 'v1', kind: 'Secret' },
      requestResource: { group: '', version: 'v1', resource: 'secrets' },
      name: 'db-credentials',
      namespace: 'payments',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:payments:helm', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:authenticated'] },
      object: secret,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'helm' },
    },
  });
}

async function saturate(port: number, seconds: number): Promise<{ rps: number; total: number; errors: number }> {
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/validate`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: reviewBody(randomUUID()),
    connections: CONNECTIONS,
    duration: seconds,
  });
  const ok = result['2xx'];
  return { rps: ok / seconds, total: ok, errors: result.errors + result.timeouts + result.non2xx };
}

/**
 * Open loop: sends are scheduled every 1/rate s and never wait for answers.
 * Latency counts from the actual send; how late the sends left (this process's
 * own lag on a busy machine) is reported apart, as lagP99.
 */
async function fixedRate(port: number, rate: number, seconds: number, agent: https.Agent): Promise<{ p50: number; p99: number; max: number; errors: number; sent: number; lagP99: number }> {
  const latencies: number[] = [];
  const lags: number[] = [];
  let errors = 0;
  const total = rate * seconds;
  const interval = 1e9 / rate;
  const start = process.hrtime.bigint();
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const fire = (scheduled: bigint) => {
    const body = reviewBody(randomUUID());
    const p = new Promise<void>((resolve) => {
      const sentAt = process.hrtime.bigint();
      lags.push(Number(sentAt - scheduled) / 1e6);
      const req = https.request({ host: '127.0.0.1', port, path: '/validate', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) latencies.push(Number(process.hrtime.bigint() - sentAt) / 1e6);
          else errors++;
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
    inFlight.add(p);
    void p.then(() => inFlight.delete(p));
  };
  while (sent < total) {
    const now = process.hrtime.bigint();
    const due = Math.min(total, Math.floor(Number(now - start) / interval) + 1);
    while (sent < due) fire(start + BigInt(Math.round(sent++ * interval)));
    // Yield to the event loop for about a millisecond: sends go out in ~1 ms
    // batches (≈1 request each at 1,000/s) without a busy loop stealing a core.
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(inFlight);
  latencies.sort((a, b) => a - b);
  lags.sort((a, b) => a - b);
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  return { p50: q(latencies, 0.5), p99: q(latencies, 0.99), max: latencies.at(-1) ?? NaN, errors, sent, lagP99: q(lags, 0.99) };
}

interface Round {
  rps: number;
  errors: number;
  cpuPerReview: number;
  p50: number;
  p99: number;
  max: number;
  lagP99: number;
  fixedErrors: number;
}

async function round(server: Running): Promise<Round> {
  const cpu0 = cpuSeconds(server.child.pid!);
  const sat = await saturate(server.port, SECONDS);
  const cpuPerReview = ((cpuSeconds(server.child.pid!) - cpu0) / sat.total) * 1e6;
  // The API server keeps its connections open; so does this client. A first,
  // unmeasured second opens them, so handshakes are not counted as review latency.
  const agent = new https.Agent({ keepAlive: true, maxSockets: 64, rejectUnauthorized: false });
  await fixedRate(server.port, FIXED_RATE, 1, agent);
  const fixed = await fixedRate(server.port, FIXED_RATE, SECONDS, agent);
  agent.destroy();
  return { rps: sat.rps, errors: sat.errors, cpuPerReview, p50: fixed.p50, p99: fixed.p99, max: fixed.max, lagP99: fixed.lagP99, fixedErrors: fixed.errors };
}

/** Best of the rounds: the machine is shared, so other load only ever makes a round worse. */
function summary(name: 'bare-node' | 'kreconcile', rounds: Round[]): Record<string, number | string | number[]> {
  const fastest = rounds.reduce((a, b) => (b.rps > a.rps ? b : a));
  const calmest = rounds.reduce((a, b) => (b.p99 < a.p99 ? b : a));
  return {
    bench: 'webhook',
    server: name,
    reviews_per_s: Math.round(fastest.rps),
    connections: CONNECTIONS,
    server_cpu_us_per_review: Math.round(Math.min(...rounds.map((r) => r.cpuPerReview))),
    fixed_rate_per_s: FIXED_RATE,
    p50_ms: +calmest.p50.toFixed(3),
    p99_ms: +calmest.p99.toFixed(3),
    max_ms: +calmest.max.toFixed(3),
    send_lag_p99_ms: +calmest.lagP99.toFixed(3),
    errors: rounds.reduce((n, r) => n + r.errors + r.fixedErrors, 0),
    seconds: SECONDS,
    rounds: rounds.length,
    reviews_per_s_rounds: rounds.map((r) => Math.round(r.rps)),
    p99_ms_rounds: rounds.map((r) => +r.p99.toFixed(2)),
  };
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-bench-webhook-'));
  const servers: Running[] = [];
  try {
    const pem = createCA('bench-ca', 1).issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
    fs.writeFileSync(path.join(dir, 'tls.crt'), pem.cert);
    fs.writeFileSync(path.join(dir, 'tls.key'), pem.key, { mode: 0o600 });
    const bare = await startBare(dir);
    servers.push(bare);
    const ours = await startKreconcile(dir);
    servers.push(ours);
    if (process.env.BENCH_PRIORITY) {
      const priority = Number(process.env.BENCH_PRIORITY);
      for (const pid of [process.pid, bare.child.pid!, ours.child.pid!]) os.setPriority(pid, priority);
    }
    for (const s of servers) await saturate(s.port, 2); // warm up (JIT, connections)
    // Rounds alternate between the servers so that a burst of other load on the
    // machine does not land on one server only.
    const results: Record<'bare-node' | 'kreconcile', Round[]> = { 'bare-node': [], kreconcile: [] };
    for (let i = 0; i < ROUNDS; i++) {
      console.error(`# round ${i + 1}/${ROUNDS}: saturation with ${CONNECTIONS} connections, then ${FIXED_RATE}/s, ${SECONDS}s each`);
      results['bare-node'].push(await round(bare));
      results.kreconcile.push(await round(ours));
    }
    const b = summary('bare-node', results['bare-node']);
    const k = summary('kreconcile', results.kreconcile);
    k.ratio_vs_bare = +((k.reviews_per_s as number) / (b.reviews_per_s as number)).toFixed(3);
    k.cpu_ratio_vs_bare = +((b.server_cpu_us_per_review as number) / (k.server_cpu_us_per_review as number)).toFixed(3);
    k.target_met = (k.ratio_vs_bare as number) >= 0.6 && (k.p99_ms as number) <= 5 ? 'yes' : 'no';
    console.log(JSON.stringify(b));
    console.log(JSON.stringify(k));
    const logLines = fs.readFileSync(path.join(dir, 'webhook.log'), 'utf8').split('\n').filter((l) => l.includes('"msg":"review"')).length;
    console.error(`# kreconcile wrote ${logLines} review log lines; load average now ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  } finally {
    for (const s of servers) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
