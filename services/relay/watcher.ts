// List + watch for one resource, with checkpoints (see state.ts for what they promise).
//
// The loop: with no resourceVersion, list (paginated) and enqueue what changed
// since the known-set (everything on a first start, and the keys that vanished);
// then watch from the list's (or the checkpoint's) resourceVersion with bookmarks.
// A watch that ends is resumed from the last resourceVersion seen; one that goes
// silent past the timeout is cut and resumed; a 410 (HTTP or ERROR event) means
// the history is gone: relist. Errors back off exponentially.
import type { Logger } from '../common/logger.ts';
import type { Enqueuer } from './enqueuer.ts';
import { KubeApiError, statusError, type KubeClient } from './kube-client.ts';
import type { RelayMetrics } from './metrics.ts';
import { AS_WRITTEN, encodeEntry, fingerprintOf, objectId, parseWatchLine, type ObjectMetaLite, type WatchedResource } from './resources.ts';
import type { ResourceState } from './state.ts';

export interface WatcherOptions {
  client: KubeClient;
  resource: WatchedResource;
  state: ResourceState;
  enqueuer: Enqueuer;
  /** Reads the checkpoint a previous relay left (Redis); retried until it answers. */
  loadCheckpoint: () => Promise<boolean>;
  log: Logger;
  metrics: RelayMetrics;
  pageSize: number;
  watchTimeoutSeconds: number;
  silenceTimeoutMs: number;
  backoff: { minMs: number; maxMs: number };
}

type WatchEnd = 'timeout' | 'closed' | 'silence' | 'gone' | 'error';

/** A relist fetches its next page only while fewer keys than this wait for Redis. */
const LIST_BACKPRESSURE_KEYS = 2500;

export class ResourceWatcher {
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private failures = 0;
  /**
   * id → generation fingerprint last seen, for resources that skip same-generation
   * MODIFIED events; bounded by the number of objects (entries go on DELETED and relist).
   */
  private fingerprints = new Map<string, string>();

  constructor(private readonly o: WatcherOptions) {}

  get name(): string {
    return this.o.resource.name;
  }

  /**
   * True once the relay is caught up: a list completed and its watch opened, or a
   * watch resumed from a checkpoint delivered its first event or bookmark (or
   * stayed open a second without an error: a 410 would have come at once).
   */
  hasSynced(): boolean {
    return this.synced;
  }

  whenSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncWaiters.splice(0)) w();
  }

  /** Runs until the signal aborts (shutdown or leadership lost). */
  async run(signal: AbortSignal): Promise<void> {
    const { log, resource, state, metrics } = this.o;
    let loaded = false;
    let cause: WatchEnd | 'start' | 'checkpoint' = 'start';
    while (!signal.aborted) {
      try {
        if (!loaded) {
          const resumed = await this.o.loadCheckpoint();
          loaded = true;
          if (resumed) {
            cause = 'checkpoint';
            log.info({ resource: resource.name, resourceVersion: state.resourceVersion, known: state.known.size }, 'resuming from checkpoint');
          }
        }
        let listed = false;
        if (state.resourceVersion === undefined) {
          await this.relist(signal);
          listed = true;
        }
        const end = await this.watch(signal, cause, listed);
        cause = end;
        if (end === 'gone') {
          metrics.gone.inc({ resource: resource.name });
          log.info({ resource: resource.name, resourceVersion: state.resourceVersion }, 'watch history expired (410); relisting');
          state.resourceVersion = undefined;
          continue;
        }
        if (end === 'error') await this.sleep(signal);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeApiError && err.code === 410) {
          metrics.gone.inc({ resource: resource.name });
          log.info({ resource: resource.name }, 'resourceVersion too old (410); relisting');
          state.resourceVersion = undefined;
          cause = 'gone';
          continue;
        }
        cause = 'error';
        log.warn({ resource: resource.name, err: { message: (err as Error).message }, failures: this.failures + 1 }, 'list/watch failed; retrying with backoff');
        await this.sleep(signal);
      }
    }
  }

  private async sleep(signal: AbortSignal): Promise<void> {
    const { minMs, maxMs } = this.o.backoff;
    const base = Math.min(minMs * 2 ** this.failures, maxMs);
    this.failures++;
    const ms = base / 2 + Math.random() * (base / 2);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
    });
  }

  /** Paginated list; enqueues new, changed and vanished keys; replaces the known-set. */
  private async relist(signal: AbortSignal): Promise<void> {
    const { client, resource, state, enqueuer, metrics, log } = this.o;
    metrics.relists.inc({ resource: resource.name });
    const started = Date.now();
    const previous = state.known;
    const fresh = new Map<string, string>();
    const fingerprints = new Map<string, string>();
    let cont: string | undefined;
    let listRv = '';
    let changed = 0;
    let bad = 0;
    log.info({ resource: resource.name, known: previous.size }, 'listing');
    do {
      // Let the queue catch up before the next page: memory stays flat on a big first list.
      await enqueuer.room(LIST_BACKPRESSURE_KEYS);
      const { body } = await client.request<{ metadata?: { continue?: string; resourceVersion?: string }; items?: unknown[] }>('GET', resource.path, {
        query: { limit: this.o.pageSize, continue: cont, labelSelector: resource.labelSelector },
        signal,
        timeoutMs: 120_000,
      });
      if (!body || !Array.isArray(body.items)) throw new Error(`list ${resource.path}: not a list`);
      for (const item of body.items) {
        const meta = (item as { metadata?: ObjectMetaLite } | null)?.metadata;
        const name = meta?.name;
        const namespace = meta?.namespace;
        const rv = meta?.resourceVersion;
        if (typeof name !== 'string' || typeof namespace !== 'string' || typeof rv !== 'string' || !name || !namespace) {
          bad++;
          metrics.badEvents.inc({ source: 'list', reason: 'malformed object' });
          continue;
        }
        const key = resource.keyFor(namespace, name, meta!);
        if (!key) {
          bad++;
          metrics.badEvents.inc({ source: 'list', reason: 'no owner' });
          continue;
        }
        const id = objectId(namespace, name);
        const before = previous.get(id);
        const value = encodeEntry(resource, id, { resourceVersion: rv, key });
        if (before !== value) {
          enqueuer.enqueue(key, 'RELIST', rv);
          changed++;
          const old = before === undefined ? undefined : state.get(id);
          if (old && old.key !== key) enqueuer.enqueue(old.key, 'RELIST');
        }
        fresh.set(id, value);
        const fingerprint = fingerprintOf(resource, item, meta!);
        if (fingerprint !== undefined) fingerprints.set(id, fingerprint);
      }
      cont = body.metadata?.continue || undefined;
      listRv = body.metadata?.resourceVersion ?? listRv;
    } while (cont);
    // Known before, absent now: deleted while no one watched. The worker will find it gone.
    let vanished = 0;
    for (const id of previous.keys()) {
      if (fresh.has(id)) continue;
      const old = state.get(id);
      if (old) enqueuer.enqueue(old.key, 'RELIST', undefined);
      vanished++;
    }
    if (!listRv) throw new Error(`list ${resource.path}: no resourceVersion`);
    state.replaceAll(fresh, listRv);
    this.fingerprints = fingerprints;
    metrics.knownObjects.set({ resource: resource.name }, fresh.size);
    enqueuer.schedule();
    log.info({ resource: resource.name, objects: fresh.size, changed, vanished, skipped: bad, resourceVersion: listRv, ms: Date.now() - started }, 'listed');
  }

  /** One watch request, from state.resourceVersion, until it ends; says how it ended. */
  private async watch(signal: AbortSignal, cause: string, listed: boolean): Promise<WatchEnd> {
    const { client, resource, state, metrics, log } = this.o;
    metrics.watchRestarts.inc({ resource: resource.name, cause });
    const timeoutSeconds = Math.round(this.o.watchTimeoutSeconds * (1 + Math.random() * 0.5));
    log.info({ resource: resource.name, resourceVersion: state.resourceVersion, cause, timeoutSeconds }, 'watch started');
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    // Set from the silence timer: a holder object keeps the type checker from narrowing it away.
    const ended: { why: WatchEnd } = { why: 'closed' };
    const silence = setTimeout(() => {
      ended.why = 'silence';
      ac.abort();
    }, this.o.silenceTimeoutMs);
    const startedAt = Date.now();
    try {
      const { res } = await client.open('GET', resource.path, {
        query: { watch: 'true', resourceVersion: state.resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds, labelSelector: resource.labelSelector },
        signal: ac.signal,
      });
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        throw statusError(res.statusCode ?? 0, body, `watch ${resource.path}`);
      }
      let quietSync: NodeJS.Timeout | undefined;
      if (listed) this.markSynced();
      else if (!this.synced) quietSync = setTimeout(() => this.markSynced(), 1000);
      res.on('close', () => clearTimeout(quietSync));
      res.setEncoding('utf8');
      let buffered = '';
      let gotData = false;
      try {
        for await (const chunk of res as AsyncIterable<string>) {
          silence.refresh();
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            const outcome = this.handleLine(line);
            if (outcome === 'data') {
              gotData = true;
              this.markSynced();
            }
            else if (outcome !== undefined) {
              clearTimeout(quietSync);
              ac.abort();
              return outcome;
            }
          }
        }
      } catch (err) {
        if (ended.why === 'silence') {
          log.warn({ resource: resource.name, silentForMs: this.o.silenceTimeoutMs }, 'watch silent too long; restarting it');
          return 'silence';
        }
        if (signal.aborted) return 'closed';
        throw err;
      }
      if (buffered.trim()) this.handleLine(buffered.trim());
      if (gotData) this.failures = 0;
      return Date.now() - startedAt >= timeoutSeconds * 1000 - 1000 ? 'timeout' : 'closed';
    } catch (err) {
      if (ended.why === 'silence') return 'silence';
      throw err;
    } finally {
      clearTimeout(silence);
      signal.removeEventListener('abort', onAbort);
    }
  }

  /** Apply one watch line. Returns 'data' for a change or bookmark, an end for ERROR, undefined otherwise. */
  private handleLine(line: string): 'data' | 'gone' | 'error' | undefined {
    const { resource, state, enqueuer, metrics, log } = this.o;
    const ev = parseWatchLine(line, resource);
    switch (ev.type) {
      case 'BAD':
        metrics.badEvents.inc({ source: 'watch', reason: ev.reason });
        log.warn({ resource: resource.name, reason: ev.reason }, 'skipping a bad watch event');
        return undefined;
      case 'ERROR':
        metrics.eventsReceived.inc({ resource: resource.name, type: 'ERROR' });
        if (ev.code === 410) return 'gone';
        log.warn({ resource: resource.name, code: ev.code, message: ev.message }, 'watch ERROR event');
        return 'error';
      case 'BOOKMARK':
        metrics.eventsReceived.inc({ resource: resource.name, type: 'BOOKMARK' });
        state.resourceVersion = ev.resourceVersion;
        enqueuer.schedule();
        return 'data';
      default: {
        metrics.eventsReceived.inc({ resource: resource.name, type: ev.type });
        const prev = state.get(ev.id);
        const lastFingerprint = this.fingerprints.get(ev.id);
        if (ev.fingerprint !== undefined && ev.type !== 'DELETED') this.fingerprints.set(ev.id, ev.fingerprint);
        else this.fingerprints.delete(ev.id);
        if (ev.type === 'DELETED') {
          state.delete(ev.id);
          const key = prev?.key ?? ev.key;
          if (key) enqueuer.enqueue(key, 'DELETED', ev.resourceVersion);
        } else if (ev.key === undefined) {
          // A managed CronJob that names no CronTab: nothing to reconcile it into.
          metrics.badEvents.inc({ source: 'watch', reason: 'no owner' });
          log.debug({ resource: resource.name, id: ev.id }, 'object maps to no key; skipped');
          if (prev) {
            state.delete(ev.id);
            enqueuer.enqueue(prev.key, ev.type, ev.resourceVersion);
          }
        } else if (prev?.resourceVersion !== ev.resourceVersion || prev.key !== ev.key) {
          // The same resourceVersion again is a replay (resumed from an older checkpoint): already queued.
          state.set(ev.id, { resourceVersion: ev.resourceVersion, key: ev.key });
          // Nothing for a worker to do: a CronTab's status/metadata-only write (the worker's own status,
          // mostly), or a CronJob the worker itself just wrote (created, or updated from as-written).
          const unchanged = ev.type === 'MODIFIED' && ev.fingerprint !== undefined && ev.fingerprint === lastFingerprint && prev?.key === ev.key;
          const ownCreate = resource.skipOwnWrites && ev.type === 'ADDED' && !prev && ev.fingerprint === AS_WRITTEN;
          if (unchanged && resource.skipSameGeneration) metrics.sameGenerationSkips.inc({ resource: resource.name });
          else if (unchanged || ownCreate) metrics.ownWriteSkips.inc({ resource: resource.name });
          else enqueuer.enqueue(ev.key, ev.type, ev.resourceVersion);
          if (prev && prev.key !== ev.key) enqueuer.enqueue(prev.key, ev.type, ev.resourceVersion);
        }
        state.resourceVersion = ev.resourceVersion;
        metrics.knownObjects.set({ resource: resource.name }, state.known.size);
        enqueuer.schedule();
        return 'data';
      }
    }
  }
}
