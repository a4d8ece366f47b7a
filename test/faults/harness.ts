// The fault-injection harness: the whole system as it deploys, on one machine.
//
// kube-sim runs in this process (so the test holds its fault switches and sees
// every request it answers); Redis is a private redis-server on a free port (so
// a scenario may kill it); the relays (two, leader-elected), the workers and the
// webhook run as real `kreconcile <role>` child processes. A driver makes a
// steady stream of CronTab and Secret changes through @kubernetes/client-node,
// and the checker compares the end state read back from the API with what the
// worker's pure desired-state builders say it must be.
//
// What "correct" means (checked by `check()`):
//  - every CronTab not being deleted has its CronJob, controlled by it, with every
//    field kreconcile owns equal to `desiredCronJob(ct)`; its status observed the
//    current generation and says Ready=True;
//  - no managed CronJob is left whose CronTab is gone;
//  - every Secret whose password breaks the policy carries
//    `kreconcile.io/password-policy: weak`, and no other Secret does;
//  - the CronJob of each CronTab incarnation (owner uid) was created exactly once,
//    counted as 201s on kube-sim's side of the wire.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import YAML from 'yaml';
import { createCA } from '../../services/common/certs.ts';
import { evaluateSecret } from '../../services/common/password-policy.ts';
import { hashTaggedPrefix } from '../../services/common/queue.ts';
import { devWebhookConfiguration } from '../../services/dev/main.ts';
import { spawnRole, type RoleProcess } from '../../services/dev/processes.ts';
import { freePort, startRedisServer, type RedisServer } from '../../services/dev/redis.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { desiredCronJob, diffCronJob, MANAGED_BY, MANAGED_BY_LABEL, ownerReference, ownership, type CronJob, type CronTab } from '../../services/worker/reconcilers/crontab.ts';
import { POLICY_KEY, WEAK } from '../../services/worker/reconcilers/secret.ts';
import { sumSamples } from '../support/metrics.ts';
import { sleep, waitFor } from '../support/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const GROUP = 'stable.example.com';
const VERSION = 'v1';
const PLURAL = 'crontabs';
export const NAMESPACES = ['faults-a', 'faults-b'];
export const QUEUE_PREFIX = 'kreconcile';
export const QUEUE_NAME = 'reconcile';


// ---------------------------------------------------------------- child processes

type Line = Record<string, unknown>;

/** One role as a child process that a scenario may kill and start again under the same name. */
export class ManagedProcess {
  proc: RoleProcess | undefined;
  /** The last log lines, for the failure message of a scenario. */
  readonly tail: string[] = [];
  starts = 0;

  /** Set while the test itself stops or kills the process: any other exit is a crash. */
  private exitExpected = false;

  constructor(
    readonly name: string,
    readonly role: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly onLine: (p: ManagedProcess, line: Line) => void,
    private readonly onCrash: (p: ManagedProcess, code: number | string) => void,
  ) {}

  /** Starts the process and resolves once it logs the line that says it is up. */
  async start(ready: (l: Line) => boolean, timeoutMs = 120_000): Promise<Line> {
    this.starts++;
    const proc = spawnRole(this.role, {
      env: this.env,
      onLine: (raw, parsed) => {
        this.tail.push(raw.length > 400 ? raw.slice(0, 400) + '…' : raw);
        if (this.tail.length > 60) this.tail.shift();
        if (parsed) this.onLine(this, parsed);
      },
    });
    this.proc = proc;
    this.exitExpected = false;
    void proc.exited.then((code) => {
      if (this.proc === proc && !this.exitExpected) this.onCrash(this, code);
    });
    return proc.waitForLine(ready, timeoutMs);
  }

  get running(): boolean {
    const c = this.proc?.child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** SIGKILL: no shutdown hook runs, locks and leases are left to expire. */
  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    this.exitExpected = true;
    p.signal('SIGKILL');
    await p.exited;
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.exitExpected = true;
    await this.proc?.stop(graceMs);
  }

  waitForLine(predicate: (l: Line) => boolean, timeoutMs?: number): Promise<Line> {
    if (!this.proc) throw new Error(`${this.name} is not running`);
    return this.proc.waitForLine(predicate, timeoutMs);
  }
}

const msgIs = (msg: string) => (l: Line) => l.msg === msg;

// ---------------------------------------------------------------- the driver

export interface DriverStats {
  /** Writes the API accepted (each one a change to reconcile). */
  changes: number;
  byOp: Record<string, number>;
  /** Writes the API refused, by a short class of the reason ("webhook-denied", "webhook-unreachable", "5xx", …). */
  refused: Record<string, number>;
  /** One example message per refusal class. */
  refusalMessages: Record<string, string>;
}

export type Op = 'ct.create' | 'ct.update' | 'ct.delete' | 's.create' | 's.update' | 's.delete';

const CRON_SPECS = ['*/5 * * * *', '0 * * * *', '15 3 * * 1-5', '*/10 8-18 * * *', '0 0 1 * *', '30 2 * * 0'];
const TIME_ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'UTC'];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

export const weakPassword = (n: number) => `pw-${n % 10_000}`; // shorter than the 10-character minimum
export const strongPassword = () => randomBytes(15).toString('base64url'); // 20 random characters

function classify(err: unknown): { cls: string; message: string } {
  const e = err as { code?: number; body?: unknown; message?: string };
  let message = e.message ?? String(err);
  if (typeof e.body === 'string') {
    try {
      message = (JSON.parse(e.body) as { message?: string }).message ?? message;
    } catch {
      message = e.body;
    }
  } else if (e.body && typeof e.body === 'object' && 'message' in e.body) message = String((e.body as { message: unknown }).message);
  const code = e.code;
  let cls: string;
  if (/denied the request/.test(message)) cls = 'webhook-denied';
  else if (/failed calling webhook/.test(message)) cls = 'webhook-unreachable';
  else if (code === 404) cls = 'not-found';
  else if (code === 409) cls = 'conflict';
  else if (typeof code === 'number' && code >= 500) cls = '5xx';
  else if (code === 429) cls = '429';
  else cls = code ? `http-${code}` : 'network';
  return { cls, message };
}

/**
 * A steady stream of changes, paced to `ratePerSecond` over `loops` concurrent
 * loops. Names are never reused, so every CronTab incarnation has its own name
 * and owner uid. Keeps between `minObjects` and `maxObjects` of each kind per run.
 */
/** What the driver did between two snapshots. */
export function statsSince(before: DriverStats, after: DriverStats): DriverStats {
  const sub = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, v - (b[k] ?? 0)] as const).filter(([, v]) => v !== 0));
  return { changes: after.changes - before.changes, byOp: sub(after.byOp, before.byOp), refused: sub(after.refused, before.refused), refusalMessages: after.refusalMessages };
}

export class Driver {
  readonly stats: DriverStats = { changes: 0, byOp: {}, refused: {}, refusalMessages: {} };
  /** Names that exist (as far as the driver knows), per kind, as "namespace/name". */
  readonly cronTabs = new Set<string>();
  readonly secrets = new Set<string>();
  /** Every refused write (the first 5,000): op, class and the API's message. */
  readonly refusals: { op: Op; cls: string; message: string }[] = [];
  /** Passwords the driver wrote, so a test can assert no API answer ever repeats one. */
  readonly passwordsWritten = new Set<string>();
  private seq = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;
  private readonly mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  /** Which ops to draw; scenario 6 uses it to try weak Secrets on purpose. */
  weakShare = 0.5;

  constructor(
    kubeconfig: k8s.KubeConfig,
    private readonly o: { ratePerSecond: number; loops: number; minObjects: number; maxObjects: number },
  ) {
    this.custom = kubeconfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = kubeconfig.makeApiClient(k8s.CoreV1Api);
  }

  /** A copy of the counters, to tell one phase of a scenario from another. */
  snapshot(): DriverStats {
    return structuredClone(this.stats);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const interval = (1000 * this.o.loops) / this.o.ratePerSecond;
    this.loops = Array.from({ length: this.o.loops }, (_, i) => this.loop(interval, (i * interval) / this.o.loops));
  }

  /** Stops issuing new changes and waits for the ones in flight. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.loops = [];
  }

  private async loop(intervalMs: number, offsetMs: number): Promise<void> {
    let next = Date.now() + offsetMs;
    while (this.running) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      if (!this.running) break;
      next = Math.max(next + intervalMs, Date.now() - intervalMs);
      await this.step();
    }
  }

  private chooseOp(): Op {
    const ct = this.cronTabs.size;
    const s = this.secrets.size;
    const { minObjects, maxObjects } = this.o;
    const kindCt = Math.random() < 0.6;
    if (kindCt) {
      if (ct < minObjects) return 'ct.create';
      if (ct >= maxObjects) return Math.random() < 0.5 ? 'ct.delete' : 'ct.update';
      const r = Math.random();
      return r < 0.25 ? 'ct.create' : r < 0.85 ? 'ct.update' : 'ct.delete';
    }
    if (s < minObjects) return 's.create';
    if (s >= maxObjects) return Math.random() < 0.5 ? 's.delete' : 's.update';
    const r = Math.random();
    return r < 0.3 ? 's.create' : r < 0.85 ? 's.update' : 's.delete';
  }

  private password(): string {
    const p = Math.random() < this.weakShare ? weakPassword(++this.seq) : strongPassword();
    this.passwordsWritten.add(p);
    return p;
  }

  /** One change; returns its op and whether the API accepted it. */
  async step(op: Op = this.chooseOp()): Promise<{ op: Op; ok: boolean }> {
    try {
      await this.apply(op);
      this.stats.changes++;
      this.stats.byOp[op] = (this.stats.byOp[op] ?? 0) + 1;
      return { op, ok: true };
    } catch (err) {
      const { cls, message } = classify(err);
      this.stats.refused[cls] = (this.stats.refused[cls] ?? 0) + 1;
      this.stats.refusalMessages[cls] ??= message;
      if (this.refusals.length < 5_000) this.refusals.push({ op, cls, message });
      return { op, ok: false };
    }
  }

  private takeRandom(set: Set<string>): string | undefined {
    if (!set.size) return undefined;
    const i = Math.floor(Math.random() * set.size);
    let j = 0;
    for (const v of set) if (j++ === i) return v;
    return undefined;
  }

  private async apply(op: Op): Promise<void> {
    switch (op) {
      case 'ct.create': {
        const namespace = pick(NAMESPACES);
        const name = `ct-${++this.seq}`;
        await this.custom.createNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'CronTab', metadata: { name, namespace }, spec: { cronSpec: pick(CRON_SPECS), image: `registry.example/app:${this.seq}`, replicas: 1 + (this.seq % 3) } },
        });
        this.cronTabs.add(`${namespace}/${name}`);
        return;
      }
      case 'ct.update': {
        const id = this.takeRandom(this.cronTabs);
        if (!id) return this.apply('ct.create');
        const [namespace, name] = id.split('/') as [string, string];
        const r = Math.random();
        const spec =
          r < 0.35
            ? { image: `registry.example/app:${++this.seq}` }
            : r < 0.55
              ? { replicas: 1 + Math.floor(Math.random() * 4) }
              : r < 0.7
                ? { cronSpec: pick(CRON_SPECS) }
                : r < 0.8
                  ? { suspend: Math.random() < 0.5 }
                  : r < 0.9
                    ? { concurrencyPolicy: pick(['Allow', 'Forbid', 'Replace']) }
                    : { timeZone: Math.random() < 0.3 ? null : pick(TIME_ZONES) };
        await this.custom.patchNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { spec } }, this.mergePatch);
        return;
      }
      case 'ct.delete': {
        const id = this.takeRandom(this.cronTabs);
        if (!id) return this.apply('ct.create');
        const [namespace, name] = id.split('/') as [string, string];
        this.cronTabs.delete(id);
        await this.custom.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name });
        return;
      }
      case 's.create': {
        const namespace = pick(NAMESPACES);
        const name = `s-${++this.seq}`;
        await this.core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace }, type: 'Opaque', stringData: { username: 'app', password: this.password() } } });
        this.secrets.add(`${namespace}/${name}`);
        return;
      }
      case 's.update': {
        const id = this.takeRandom(this.secrets);
        if (!id) return this.apply('s.create');
        const [namespace, name] = id.split('/') as [string, string];
        await this.core.patchNamespacedSecret({ namespace, name, body: { stringData: { password: this.password() } } }, this.mergePatch);
        return;
      }
      case 's.delete': {
        const id = this.takeRandom(this.secrets);
        if (!id) return this.apply('s.create');
        const [namespace, name] = id.split('/') as [string, string];
        this.secrets.delete(id);
        await this.core.deleteNamespacedSecret({ namespace, name });
        return;
      }
    }
  }
}

// ---------------------------------------------------------------- the checker

export interface CheckResult {
  cronTabs: number;
  cronJobs: number;
  secrets: number;
  /** Objects checked: CronTabs + Secrets + stray-candidate CronJobs. */
  checked: number;
  /** One line per wrong object, saying what is wrong. */
  wrong: string[];
  /** CronJob creates beyond the first, per CronTab incarnation. */
  duplicateCreates: number;
}

type Obj = { metadata: { name: string; namespace: string; uid: string; resourceVersion?: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string; ownerReferences?: { uid: string; controller?: boolean; kind: string; name: string }[] }; [k: string]: unknown };

// ---------------------------------------------------------------- the harness

export interface Convergence {
  seconds: number;
  converged: boolean;
  /** Objects wrong at the first check (when the wait began): shows the fault left work to do. */
  wrongAtStart: number;
  result: CheckResult;
}

export interface ConvergeOptions {
  /** Check only these kinds (default both). */
  only?: { cronTabs?: boolean; secrets?: boolean };
  /**
   * Also wait for the queue to be empty (default: when both kinds are checked). Off while
   * faults still make jobs fail: a retry of an object already right may sit in its backoff.
   */
  idleQueue?: boolean;
}

export interface HarnessOptions {
  /** Worker processes started with the harness (default 3; 0 = start them later with `startWorkers`). */
  workers?: number;
  /** Relay replicas (default 2). */
  relays?: number;
  /** Run the webhook process (it is registered with `registerWebhook()`). */
  webhook?: boolean;
  /** RESYNC_INTERVAL of the relays (default 60s: long enough not to mask a lost key in a scenario). */
  resyncInterval?: string;
  /** WORKER_LOCK_DURATION: how long a killed worker's job waits before another takes it (default 4s). */
  lockDuration?: string;
  /** Lease duration / renew interval of the relays (default 4s / 1s). */
  leaseDuration?: string;
  leaseRenew?: string;
  rate?: number;
  minObjects?: number;
  maxObjects?: number;
}

export interface Harness {
  readonly sim: KubeSim;
  readonly redis: RedisServer;
  readonly kubeconfig: k8s.KubeConfig;
  readonly relays: ManagedProcess[];
  readonly workers: ManagedProcess[];
  readonly webhook: ManagedProcess | undefined;
  readonly driver: Driver;
  readonly queue: Queue;
  /** Emits 'leader' (name) whenever a relay logs that it became leader. */
  readonly events: EventEmitter;
  /** The relay that logged 'became leader' last, if it is still running. */
  leader(): ManagedProcess | undefined;
  waitForLeader(timeoutMs?: number, not?: ManagedProcess): Promise<ManagedProcess>;
  startWorkers(n: number): Promise<void>;
  startWebhook(): Promise<void>;
  /** Register the ValidatingWebhookConfiguration from infra/ (failurePolicy Fail for Secrets). */
  registerWebhook(): Promise<void>;
  /** API answers so far by client (worker, relay, other) and code class: `answers('worker 5xx')`. */
  answers(key: string): number;
  /** A relay's Prometheus counter, summed over its labels (read from its /metrics). */
  relayMetric(relay: ManagedProcess, name: string): Promise<number>;
  check(only?: { cronTabs?: boolean; secrets?: boolean }): Promise<CheckResult>;
  /** Polls `check()` until nothing is wrong and the queue is idle; resolves with the seconds it took and the last result. */
  waitConverged(timeoutMs: number, opts?: ConvergeOptions): Promise<Convergence>;
  /** Processes that exited without the test stopping or killing them (a crash is a finding). */
  crashes(): string[];
  /** Logs of every process, for a failure message. */
  diagnostics(): string;
  stop(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-faults-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  try {
    const sim = await startKubeSim({ adminPort: 0, bookmarkIntervalMs: 1_000, kubeconfigPath: path.join(tmp, 'kubeconfig') });
    cleanups.push(() => sim.stop());
    const redis = await startRedisServer();
    cleanups.push(() => redis.stop());
    const kubeconfig = sim.kubeconfig;

    // Count CronJob creates per owner uid, that is, per CronTab incarnation. Writes of
    // CronTabs and CronJobs are kept per name, to explain a duplicate when one shows up.
    const creates = new Map<string, number>();
    const history = new Map<string, string[]>();
    const duplicates = new Set<string>();
    const t0 = Date.now();
    cleanups.push(
      sim.onRequestComplete((info) => {
        if ((info.resource !== 'cronjobs' && info.resource !== 'crontabs') || info.verb === 'get' || info.verb === 'list' || info.verb === 'watch') return;
        const meta = info.responseObject?.metadata as Obj['metadata'] | undefined;
        const name = meta?.name ?? info.name;
        if (name) {
          const h = history.get(`${info.namespace}/${name}`) ?? [];
          const owner = meta?.ownerReferences?.find((r) => r.controller)?.uid;
          h.push(`${((Date.now() - t0) / 1000).toFixed(2)}s ${info.userAgent?.split(' ')[0] ?? '?'} ${info.verb} ${info.resource}${info.subresource ? '/' + info.subresource : ''} → ${info.code}${meta?.uid ? ` uid ${meta.uid.slice(0, 8)}` : ''}${owner ? ` owner ${owner.slice(0, 8)}` : ''}`);
          history.set(`${info.namespace}/${name}`, h);
        }
        if (info.resource !== 'cronjobs' || info.verb !== 'create' || info.code !== 201) return;
        const owner = meta?.ownerReferences?.find((r) => r.controller)?.uid ?? `no-owner:${meta?.namespace}/${meta?.name}`;
        creates.set(owner, (creates.get(owner) ?? 0) + 1);
        if ((creates.get(owner) ?? 0) > 1) duplicates.add(`${meta?.namespace}/${meta?.name}`);
      }),
    );

    // API answers by client and code class ("worker 5xx", "relay 2xx"…): shows a fault reached its target.
    const answers = new Map<string, number>();
    cleanups.push(
      sim.onRequestComplete((info) => {
        const agent = info.userAgent?.startsWith('kreconcile-worker') ? 'worker' : info.userAgent?.startsWith('kreconcile-relay') ? 'relay' : 'other';
        const key = `${agent} ${Math.floor(info.code / 100)}xx`;
        answers.set(key, (answers.get(key) ?? 0) + 1);
      }),
    );

    const objects = k8s.KubernetesObjectApi.makeApiClient(kubeconfig);
    const crd = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra', 'k8s', 'crontab-crd.yaml'), 'utf8'));
    await objects.create(crd);
    const ext = kubeconfig.makeApiClient(k8s.ApiextensionsV1Api);
    await waitFor('the CronTab CRD to be Established', async () => {
      const got = await ext.readCustomResourceDefinition({ name: crd.metadata.name });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    }, 20_000, 100);
    const core = kubeconfig.makeApiClient(k8s.CoreV1Api);
    for (const name of NAMESPACES) await core.createNamespace({ body: { metadata: { name } } });

    const events = new EventEmitter();
    let leaderName: string | undefined;
    const synced = new Set<string>();
    const healthPorts = new Map<string, number>();
    const keyLog = new Map<string, string[]>();
    const onLine = (p: ManagedProcess, l: Line) => {
      if (typeof l.key === 'string') {
        const k = keyLog.get(l.key) ?? [];
        if (k.length < 40) k.push(`${((Date.now() - t0) / 1000).toFixed(2)}s ${p.name}: ${l.msg} ${JSON.stringify({ ...l, msg: undefined, level: undefined, time: undefined, pid: undefined, hostname: undefined, name: undefined, key: undefined })}`);
        keyLog.set(l.key, k);
      }
      if (p.role === 'relay') {
        if (l.msg === 'became leader') {
          leaderName = p.name;
          synced.delete(p.name);
          events.emit('leader', p.name);
        } else if (l.msg === 'lost leadership; stopped relaying' && leaderName === p.name) leaderName = undefined;
        else if (l.msg === 'relay synced: every resource listed or resumed, watching') synced.add(p.name);
        else if (l.msg === 'relay role running' && typeof l.healthPort === 'number') healthPorts.set(p.name, l.healthPort);
      }
    };

    const baseEnv: NodeJS.ProcessEnv = { KUBECONFIG: sim.kubeconfigPath, REDIS_URL: redis.url, QUEUE_PREFIX, QUEUE_NAME, HEALTH_PORT: '0', LOG_LEVEL: 'info' };
    const relayEnv = (name: string): NodeJS.ProcessEnv => ({
      ...baseEnv,
      POD_NAME: name,
      LEASE_DURATION: opts.leaseDuration ?? '4s',
      LEASE_RENEW: opts.leaseRenew ?? '1s',
      RESYNC_INTERVAL: opts.resyncInterval ?? '60s',
    });
    const workerEnv: NodeJS.ProcessEnv = { ...baseEnv, WORKER_CONCURRENCY: '8', WORKER_LOCK_DURATION: opts.lockDuration ?? '4s', WORKER_SHUTDOWN_DEADLINE: '2s', SECRET_POLICY_MODE: 'audit' };

    const crashes: string[] = [];
    const onCrash = (p: ManagedProcess, code: number | string) => crashes.push(`${p.name} exited (${code}) at ${((Date.now() - t0) / 1000).toFixed(1)} s; its last lines:\n${p.tail.slice(-8).join('\n')}`);
    const relays = Array.from({ length: opts.relays ?? 2 }, (_, i) => new ManagedProcess(`relay-${i + 1}`, 'relay', relayEnv(`relay-${i + 1}`), onLine, onCrash));
    const workers: ManagedProcess[] = [];
    const all = (): ManagedProcess[] => [...relays, ...workers, ...(webhook ? [webhook] : [])];
    cleanups.push(() => Promise.all(all().map((p) => p.stop(3_000))));

    // The webhook: a fresh CA, a certificate for 127.0.0.1, a fixed port (the configuration names it).
    let webhook: ManagedProcess | undefined;
    let webhookUrl = '';
    let caPem = '';
    if (opts.webhook) {
      const ca = createCA('kreconcile-faults-ca', 2);
      const leaf = ca.issue({ commonName: 'kreconcile-webhook', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 2 });
      fs.writeFileSync(path.join(tmp, 'tls.crt'), leaf.cert);
      fs.writeFileSync(path.join(tmp, 'tls.key'), leaf.key, { mode: 0o600 });
      caPem = ca.cert;
      const port = await freePort();
      webhookUrl = `https://127.0.0.1:${port}/validate`;
      webhook = new ManagedProcess('webhook', 'webhook', { ...baseEnv, WEBHOOK_PORT: String(port), WEBHOOK_HOST: '127.0.0.1', TLS_CERT_FILE: path.join(tmp, 'tls.crt'), TLS_KEY_FILE: path.join(tmp, 'tls.key') }, onLine, onCrash);
    }

    const startWorkers = async (n: number) => {
      const fresh = Array.from({ length: n }, () => new ManagedProcess(`worker-${workers.length + 1}`, 'worker', workerEnv, onLine, onCrash)).map((w) => (workers.push(w), w));
      await Promise.all(fresh.map((w) => w.start(msgIs('worker started'))));
    };

    const startRelays = Promise.all(relays.map((r) => r.start(msgIs('relay role running'))));
    await Promise.all([startRelays, startWorkers(opts.workers ?? 3), webhook?.start(msgIs('webhook ready'))]);

    const leader = () => relays.find((r) => r.name === leaderName && r.running);
    const waitForLeader = async (timeoutMs = 20_000, not?: ManagedProcess): Promise<ManagedProcess> => {
      const ok = () => {
        const l = leader();
        return l && l !== not ? l : undefined;
      };
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), timeoutMs);
      try {
        for (;;) {
          const l = ok();
          if (l) return l;
          await once(events, 'leader', { signal: ac.signal });
        }
      } catch {
        throw new Error(`no relay became leader within ${timeoutMs} ms`);
      } finally {
        clearTimeout(timer);
      }
    };
    const first = await waitForLeader(60_000);
    await waitFor('the leader to list and watch', () => synced.has(first.name), 60_000, 100);

    // Fails fast while Redis is down (one scenario kills it) instead of queueing commands.
    const queueRedis = new Redis(redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 200 });
    queueRedis.on('error', () => {});
    const queue = new Queue(QUEUE_NAME, { connection: queueRedis, prefix: hashTaggedPrefix(QUEUE_PREFIX) });
    queue.on('error', () => {});
    cleanups.push(() => queueRedis.disconnect(), () => queue.close().catch(() => undefined));

    const driver = new Driver(kubeconfig, { ratePerSecond: opts.rate ?? 30, loops: 6, minObjects: opts.minObjects ?? 30, maxObjects: opts.maxObjects ?? 70 });
    cleanups.push(() => driver.stop());

    /** GET through the API, retrying what an injected fault refuses: the checker must see through faults. */
    async function getJson(url: string): Promise<{ items?: Obj[]; metadata?: { continue?: string } } | 'gone'> {
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(url).catch(() => undefined);
        if (res?.ok) return (await res.json()) as { items?: Obj[]; metadata?: { continue?: string } };
        if (res?.status === 410) return 'gone';
        if (attempt >= 50) throw new Error(`GET ${url}: ${res ? `HTTP ${res.status}` : 'no answer'}`);
        await sleep(50);
      }
    }

    /** Every object of a collection in the harness's namespaces (paginated; an expired continue token starts over). */
    async function list(p: string): Promise<Obj[]> {
      for (;;) {
        const items: Obj[] = [];
        let cont: string | undefined;
        let gone = false;
        do {
          const body = await getJson(`${sim.url}${p}?limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
          if (body === 'gone') {
            gone = true;
            break;
          }
          items.push(...(body.items ?? []));
          cont = body.metadata?.continue || undefined;
        } while (cont);
        if (!gone) return items.filter((o) => NAMESPACES.includes(o.metadata.namespace));
      }
    }

    async function check(only: { cronTabs?: boolean; secrets?: boolean } = { cronTabs: true, secrets: true }): Promise<CheckResult> {
      const wrong: string[] = [];
      const [cts, cjs, secrets] = await Promise.all([
        only.cronTabs ? list(`/apis/${GROUP}/${VERSION}/${PLURAL}`) : [],
        only.cronTabs ? list('/apis/batch/v1/cronjobs') : [],
        only.secrets ? list('/api/v1/secrets') : [],
      ]);
      const cjByKey = new Map(cjs.map((cj) => [`${cj.metadata.namespace}/${cj.metadata.name}`, cj]));
      const ctByKey = new Map(cts.map((ct) => [`${ct.metadata.namespace}/${ct.metadata.name}`, ct]));
      let liveCronTabs = 0;
      for (const raw of cts) {
        const ct = raw as unknown as CronTab;
        const id = `CronTab ${ct.metadata.namespace}/${ct.metadata.name}`;
        if (ct.metadata.deletionTimestamp) continue;
        liveCronTabs++;
        const cj = cjByKey.get(`${ct.metadata.namespace}/${ct.metadata.name}`) as CronJob | undefined;
        if (!cj) {
          wrong.push(`${id}: no CronJob`);
          continue;
        }
        if (ownership(cj, ct) !== 'owned') wrong.push(`${id}: CronJob not controlled by it`);
        const diff = diffCronJob(desiredCronJob(ct), cj, ownerReference(ct));
        if (diff.length) wrong.push(`${id}: CronJob differs in ${diff.join(', ')}`);
        const ready = ct.status?.conditions?.find((c) => c.type === 'Ready');
        if (ct.status?.observedGeneration !== ct.metadata.generation) wrong.push(`${id}: status.observedGeneration ${ct.status?.observedGeneration} ≠ generation ${ct.metadata.generation}`);
        if (ready?.status !== 'True') wrong.push(`${id}: Ready is ${ready?.status ?? 'absent'}${ready?.reason ? ` (${ready.reason})` : ''}`);
        const n = creates.get(ct.metadata.uid) ?? 0;
        if (n !== 1) wrong.push(`${id}: its CronJob was created ${n} times`);
      }
      let managedCronJobs = 0;
      for (const cj of cjs) {
        if (cj.metadata.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY) continue;
        managedCronJobs++;
        const owner = cj.metadata.ownerReferences?.find((r) => r.controller);
        const ct = ctByKey.get(`${cj.metadata.namespace}/${cj.metadata.name}`);
        if (!ct || ct.metadata.uid !== owner?.uid) wrong.push(`CronJob ${cj.metadata.namespace}/${cj.metadata.name}: left behind, its CronTab is gone`);
      }
      for (const s of secrets) {
        const id = `Secret ${s.metadata.namespace}/${s.metadata.name}`;
        const weak = evaluateSecret(s).violations.length > 0;
        const marked = s.metadata.annotations?.[POLICY_KEY] === WEAK;
        if (weak && !marked) wrong.push(`${id}: weak but not annotated`);
        if (!weak && marked) wrong.push(`${id}: annotated weak but its password meets the policy`);
      }
      let duplicateCreates = 0;
      for (const n of creates.values()) if (n > 1) duplicateCreates += n - 1;
      return { cronTabs: liveCronTabs, cronJobs: managedCronJobs, secrets: secrets.length, checked: liveCronTabs + managedCronJobs + secrets.length, wrong, duplicateCreates };
    }

    async function queueIdle(): Promise<boolean> {
      try {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'paused');
        return Object.values(c).every((n) => n === 0);
      } catch {
        return false;
      }
    }

    const harness: Harness = {
      sim,
      redis,
      kubeconfig,
      relays,
      workers,
      get webhook() {
        return webhook;
      },
      driver,
      queue,
      events,
      leader,
      waitForLeader,
      startWorkers,
      async startWebhook() {
        if (!webhook) throw new Error('harness started without webhook');
        await webhook.start(msgIs('webhook ready'));
      },
      async registerWebhook() {
        await objects.create(devWebhookConfiguration(webhookUrl, caPem));
      },
      answers: (key) => answers.get(key) ?? 0,
      async relayMetric(relay, name) {
        const port = healthPorts.get(relay.name);
        if (!port) throw new Error(`${relay.name}: health port unknown`);
        if (!relay.running) throw new Error(`${relay.name} is not running, so its metrics are gone:\n${crashes.join('\n')}`);
        return sumSamples(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(), name);
      },
      check,
      async waitConverged(timeoutMs, opts = {}) {
        const started = Date.now();
        const only = opts.only;
        const skipIdle = !(opts.idleQueue ?? (!only || (only.cronTabs && only.secrets)));
        let result = await check(only);
        const wrongAtStart = result.wrong.length;
        const done = (converged: boolean): Convergence => ({ seconds: (Date.now() - started) / 1000, converged, wrongAtStart, result });
        for (;;) {
          // Converged: nothing wrong, then nothing left in the queue, then still nothing wrong
          // (a late pass must not undo the state, nor create a CronJob twice). A partial
          // check does not wait for the queue: the other kind may be kept busy on purpose.
          if (result.wrong.length === 0 && (skipIdle || (await queueIdle()))) {
            result = await check(only);
            if (result.wrong.length === 0 && result.duplicateCreates === 0) return done(true);
          }
          if (Date.now() - started > timeoutMs) return done(false);
          await sleep(200);
          result = await check(only);
        }
      },
      crashes: () => [...crashes],
      diagnostics() {
        const dups = [...duplicates].map((id) => `--- duplicate create: ${id}\n${(history.get(id) ?? []).join('\n')}\n${(keyLog.get(`CronTab/${id}`) ?? []).join('\n')}`);
        return [...dups, ...all()
          .map((p) => `--- ${p.name} (${p.running ? 'running' : 'stopped'}, started ${p.starts}×)\n${p.tail.slice(-25).join('\n')}`)].join('\n');
      },
      async stop() {
        for (const c of cleanups.splice(0).reverse()) await c();
      },
    };
    return harness;
  } catch (err) {
    for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
    throw err;
  }
}

/** What every scenario asserts at its end: no crash, nothing wrong, no CronJob created twice, converged within the bound. */
export function assertConverged(h: Harness, conv: Convergence, boundSeconds: number): void {
  assert.deepEqual(h.crashes(), [], 'no process crashed');
  assert.deepEqual(conv.result.wrong, [], `objects wrong after ${conv.seconds} s:\n${h.diagnostics()}`);
  assert.equal(conv.result.duplicateCreates, 0, `CronJobs created twice:\n${h.diagnostics()}`);
  assert.ok(conv.converged && conv.seconds <= boundSeconds, `converged within ${boundSeconds} s (${conv.seconds} s)`);
}

/** The one line each scenario prints. */
export function reportLine(scenario: string, h: Harness, conv: Convergence, extra: Record<string, unknown> = {}): string {
  const fields: Record<string, unknown> = {
    scenario,
    changes: h.driver.stats.changes,
    checked: conv.result.checked,
    wrong: conv.result.wrong.length,
    duplicateCreates: conv.result.duplicateCreates,
    convergeSeconds: Number(conv.seconds.toFixed(1)),
    wrongWhenFaultEnded: conv.wrongAtStart,
    ...extra,
  };
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');
}
