// The relay as a library: `startRelay(opts)` runs it in this process (the relay
// role, the dev role, tests and the fault suite all use it).
//
// One replica leads (Lease); the leader lists and watches every watched resource
// and turns changes into jobs. Every replica serves POST /audit when configured
// (the API server's audit webhook reaches any of them through the Service), and
// every replica reports readiness: Redis reachable and writes succeeding.
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { startHealthServer, type HealthServer } from '../common/health.ts';
import { silentLogger, type Logger } from '../common/logger.ts';
import { createRegistry } from '../common/metrics.ts';
import { createProducerRedis, Enqueuer } from './enqueuer.ts';
import type { KubeAccess } from './kube-access.ts';
import { KubeClient } from './kube-client.ts';
import { LeaderElector, type Clock } from './leader.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { WATCHED_RESOURCES, type WatchedResource } from './resources.ts';
import { relayKeyBase, ResourceState } from './state.ts';
import { ResourceWatcher } from './watcher.ts';
import type { HttpsServer } from '../common/https-server.ts';

export interface StartRelayOptions {
  /** A @kubernetes/client-node KubeConfig, or the relay's lighter loadKubeAccess(). */
  kubeconfig: KubeAccess;
  redisUrl: string;
  queueName?: string;
  queuePrefix?: string;
  log?: Logger;
  /** Metrics go here; default a new registry with process metrics. */
  registry?: Registry;
  /** holderIdentity in the Lease; default hostname + random suffix. */
  identity?: string;
  /** false: lead at once without a Lease (one replica, dev, tests). */
  leaderElection?: false | { name?: string; namespace?: string; leaseDurationMs?: number; renewIntervalMs?: number; clock?: Clock };
  /** Enqueue every known key this often; 0 = never. Default 10 min. */
  resyncIntervalMs?: number;
  watchTimeoutSeconds?: number;
  watchSilenceTimeoutMs?: number;
  listPageSize?: number;
  /** Backoff after failed lists/watches. */
  backoff?: { minMs: number; maxMs: number };
  /** Which resources to watch; default all (secrets, crontabs, cronjobs). */
  resources?: WatchedResource['name'][];
  audit?: { port?: number; host?: string; certFile: string; keyFile: string; tokenFile?: string; maxBodyBytes?: number };
  /** Serve /healthz, /readyz, /metrics on this port (0 = any free port); unset = no health server. */
  healthPort?: number;
}

export interface Relay {
  readonly identity: string;
  readonly registry: Registry;
  readonly metrics: RelayMetrics;
  /** HTTPS port of POST /audit, when served. */
  readonly auditPort: number | undefined;
  /** Port of /healthz and /readyz, when served. */
  readonly healthPort: number | undefined;
  isLeader(): boolean;
  /** true, or why this replica is not ready. */
  ready(): true | string;
  /** Resolves once this replica leads and every watcher has listed (or resumed) and watches. */
  synced(): Promise<void>;
  /** Resolves once nothing is pending in memory (every key is in Redis). */
  idle(): Promise<void>;
  /** Keys held in memory, waiting for Redis. */
  pendingKeys(): number;
  /** Objects known per resource (leader only). */
  knownObjects(): Record<string, number>;
  /** Graceful: stop watching, flush what is pending (bounded), release the Lease, close. */
  stop(): Promise<void>;
}

/**
 * Wait until Redis answers. Without the checkpoint the relay cannot tell a resume
 * from a relist, nor which keys vanished while it was away, so a new leader waits.
 */
function redisReady(redis: Redis, signal: AbortSignal, log: Logger): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  log.info({ redis: redis.status }, 'waiting for redis to read the checkpoint');
  return new Promise((resolve, reject) => {
    const done = () => {
      redis.off('ready', done);
      signal.removeEventListener('abort', done);
      if (signal.aborted) reject(new Error('stopped'));
      else resolve();
    };
    redis.on('ready', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

interface Session {
  ac: AbortController;
  states: Map<string, ResourceState>;
  watchers: ResourceWatcher[];
  done: Promise<unknown>;
  resync?: NodeJS.Timeout;
}

export async function startRelay(opts: StartRelayOptions): Promise<Relay> {
  const log = opts.log ?? silentLogger;
  const registry = opts.registry ?? createRegistry('relay');
  const metrics = createRelayMetrics(registry);
  const identity = opts.identity ?? `${os.hostname()}-${randomUUID().slice(0, 6)}`;
  const queueName = opts.queueName ?? 'reconcile';
  const queuePrefix = opts.queuePrefix ?? 'kreconcile';
  const keyBase = relayKeyBase(queuePrefix, queueName);
  const resources = WATCHED_RESOURCES.filter((r) => !opts.resources || opts.resources.includes(r.name));
  const client = new KubeClient(opts.kubeconfig);
  const redis = createProducerRedis(opts.redisUrl);
  const enqueuer = new Enqueuer({ redis, queueName, prefix: queuePrefix, log, metrics });
  const resyncIntervalMs = opts.resyncIntervalMs ?? 600_000;

  let session: Session | undefined;
  let syncWaiters: (() => void)[] = [];
  let stopping = false;

  function startSession(): void {
    if (session || stopping) return;
    metrics.leader.set(1);
    const ac = new AbortController();
    const states = new Map<string, ResourceState>();
    const watchers: ResourceWatcher[] = [];
    for (const resource of resources) {
      const state = new ResourceState(resource, keyBase);
      states.set(resource.name, state);
      enqueuer.register(state);
      watchers.push(
        new ResourceWatcher({
          client,
          resource,
          state,
          enqueuer,
          loadCheckpoint: async () => {
            await redisReady(redis, ac.signal, log);
            return state.load(redis);
          },
          log,
          metrics,
          pageSize: opts.listPageSize ?? 500,
          watchTimeoutSeconds: opts.watchTimeoutSeconds ?? 300,
          silenceTimeoutMs: opts.watchSilenceTimeoutMs ?? 120_000,
          backoff: opts.backoff ?? { minMs: 200, maxMs: 10_000 },
        }),
      );
    }
    const done = Promise.allSettled(watchers.map((w) => w.run(ac.signal)));
    const s: Session = { ac, states, watchers, done };
    if (resyncIntervalMs > 0) {
      s.resync = setInterval(() => {
        let n = 0;
        for (const [name, state] of states) {
          if (!s.watchers.find((w) => w.name === name)?.hasSynced()) continue;
          n += enqueuer.enqueueAll(state, 'RESYNC');
        }
        metrics.resyncs.inc();
        log.info({ keys: n }, 'resync: every known key enqueued');
      }, resyncIntervalMs);
    }
    session = s;
    void Promise.all(watchers.map((w) => w.whenSynced())).then(() => {
      if (session !== s) return;
      log.info({ resources: resources.map((r) => r.name) }, 'relay synced: every resource listed or resumed, watching');
      for (const w of syncWaiters.splice(0)) w();
    });
  }

  /** Stop watching. `keepPending`: graceful stop flushes what is pending; lost leadership drops it. */
  function stopSession(keepPending: boolean): Promise<unknown> {
    const s = session;
    if (!s) return Promise.resolve();
    session = undefined;
    metrics.leader.set(0);
    s.ac.abort();
    clearInterval(s.resync);
    if (!keepPending) {
      enqueuer.dropPending();
      for (const state of s.states.values()) {
        state.reset();
        enqueuer.unregister(state);
      }
    }
    return s.done;
  }

  let elector: LeaderElector | undefined;
  if (opts.leaderElection === false) {
    startSession();
  } else {
    const le = opts.leaderElection ?? {};
    elector = new LeaderElector({
      client,
      name: le.name ?? 'kreconcile-relay',
      namespace: le.namespace ?? 'default',
      identity,
      leaseDurationMs: le.leaseDurationMs ?? 15_000,
      renewIntervalMs: le.renewIntervalMs ?? 5_000,
      clock: le.clock,
      log,
      onStartedLeading: startSession,
      onStoppedLeading: () => void stopSession(false),
    });
    elector.start();
  }

  let audit: HttpsServer | undefined;
  if (opts.audit) {
    // Loaded only when served: express is a fair share of memory the relay otherwise does without.
    const { createAuditApp, tokenFromFile } = await import('./audit.ts');
    // Same HTTPS server as the admission webhook: same certificate files, same reload on rotation.
    const { startHttpsServer } = await import('../common/https-server.ts');
    const token = opts.audit.tokenFile ? tokenFromFile(opts.audit.tokenFile) : undefined;
    const app = createAuditApp({
      enqueue: (key, rv) => enqueuer.enqueue(key, 'AUDIT', rv),
      lookup: (resource, id) => session?.states.get(resource)?.get(id),
      token,
      maxBodyBytes: opts.audit.maxBodyBytes ?? 8 * 1024 * 1024,
      metrics,
      log,
    });
    audit = await startHttpsServer({ app, certFile: opts.audit.certFile, keyFile: opts.audit.keyFile, port: opts.audit.port ?? 8444, host: opts.audit.host, log: log.child({ component: 'audit' }) });
  }

  const ready = (): true | string => {
    const r = enqueuer.ready();
    if (r !== true) return r;
    const apiError = elector?.apiError();
    if (apiError) return `kubernetes API: ${apiError}`;
    return true;
  };

  let health: HealthServer | undefined;
  if (opts.healthPort !== undefined) {
    health = await startHealthServer({ port: opts.healthPort, registry });
    health.addCheck('relay', ready);
  }

  log.info({ identity, queue: queueName, prefix: queuePrefix, resources: resources.map((r) => r.name), leaderElection: opts.leaderElection !== false, auditPort: audit?.port }, 'relay started');

  return {
    identity,
    registry,
    metrics,
    auditPort: audit?.port,
    healthPort: health?.port,
    isLeader: () => session !== undefined,
    ready,
    synced() {
      if (session && session.watchers.every((w) => w.hasSynced())) return Promise.resolve();
      return new Promise((resolve) => syncWaiters.push(resolve));
    },
    idle: () => enqueuer.idle(),
    pendingKeys: () => enqueuer.pendingCount,
    knownObjects() {
      const out: Record<string, number> = {};
      for (const [name, state] of session?.states ?? []) out[name] = state.known.size;
      return out;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      await stopSession(true);
      // Flush what the watchers handed over, but never hang shutdown on a dead Redis.
      let flushTimer: NodeJS.Timeout | undefined;
      const flushed = await Promise.race([enqueuer.idle().then(() => true), new Promise<false>((r) => (flushTimer = setTimeout(() => r(false), 5_000)))]);
      clearTimeout(flushTimer);
      if (!flushed) log.warn({ pending: enqueuer.pendingCount }, 'could not flush every pending key before stopping; the next leader resumes from the last checkpoint');
      await elector?.stop();
      await audit?.close(2_000);
      await enqueuer.close();
      client.close();
      redis.disconnect();
      await health?.close();
      syncWaiters = [];
      log.info('relay stopped');
    },
  };
}
