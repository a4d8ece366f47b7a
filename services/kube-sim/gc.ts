// The controllers kube-sim runs in-process, as kube-controller-manager and the
// apiextensions server would: the garbage collector (ownerReferences; Background,
// Foreground and Orphan deletion), the namespace controller (a deleted namespace is
// emptied, then removed), CRD cleanup (a deleted CRD's objects go first), and the
// event TTL. They react to store events and write through the Api like any client.
import type { Logger } from '../common/logger.ts';
import { systemContext, type Api, type RequestContext } from './api.ts';
import { CRD_CLEANUP_FINALIZER } from './crd.ts';
import { storageOf } from './resources.ts';
import { objectKey, type StoreEvent } from './store.ts';
import { StatusError, type KubeObject, type ResourceInfo } from './types.ts';

type Obj = Record<string, any>;

const CRD_BUCKET = 'customresourcedefinitions.apiextensions.k8s.io';

export interface GcOptions {
  eventTtlSeconds: number;
}

export class GarbageCollector {
  /** owner uid → dependents' "bucket\0key" */
  private readonly dependents = new Map<string, Set<string>>();
  private readonly checkQueue = new Set<string>();
  private readonly ownerQueue = new Set<string>();
  private readonly namespaceQueue = new Set<string>();
  private readonly crdQueue = new Set<string>();
  /** events key → last write (ms), for the TTL */
  private readonly eventWrites = new Map<string, number>();
  private unsubscribe?: () => void;
  private ttlTimer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  private readonly ctx: () => RequestContext = () => systemContext('system:serviceaccount:kube-system:generic-garbage-collector');

  constructor(
    private readonly api: Api,
    private readonly log: Logger,
    private readonly opts: GcOptions,
  ) {}

  start(): void {
    this.unsubscribe = this.api.store.subscribeAll((e) => this.observe(e));
    const period = Math.min(60, Math.max(1, this.opts.eventTtlSeconds / 4)) * 1000;
    this.ttlTimer = setInterval(() => this.expireEvents(), period);
    this.ttlTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    clearInterval(this.ttlTimer);
  }

  /** Resolves once every queued controller action has run (tests). */
  idle(): Promise<void> {
    if (!this.running && this.pending() === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private pending(): number {
    return this.checkQueue.size + this.ownerQueue.size + this.namespaceQueue.size + this.crdQueue.size;
  }

  private observe(e: StoreEvent): void {
    const ref = `${e.bucket}\u0000${e.key}`;
    const now = e.type === 'DELETED' ? undefined : e.object;
    const prevOwners = ownerUids(e.prev);
    const nowOwners = ownerUids(now);
    for (const uid of prevOwners) {
      if (nowOwners.includes(uid)) continue;
      const set = this.dependents.get(uid);
      set?.delete(ref);
      if (set?.size === 0) this.dependents.delete(uid);
    }
    for (const uid of nowOwners) {
      let set = this.dependents.get(uid);
      if (!set) this.dependents.set(uid, (set = new Set()));
      set.add(ref);
    }
    if (now && nowOwners.length && (e.type === 'ADDED' || prevOwners.join() !== nowOwners.join())) this.checkQueue.add(ref);
    // An owner went away, or started deleting with a GC finalizer.
    const uid = e.object.metadata.uid!;
    if (e.type === 'DELETED') {
      for (const dep of this.dependents.get(uid) ?? []) this.checkQueue.add(dep);
      this.dependents.delete(uid);
    } else if (e.object.metadata.deletionTimestamp) {
      const fins = e.object.metadata.finalizers ?? [];
      if (fins.includes('orphan') || fins.includes('foregroundDeletion')) this.ownerQueue.add(ref);
      if (fins.includes('foregroundDeletion')) for (const dep of this.dependents.get(uid) ?? []) this.checkQueue.add(dep);
    }
    // A dependent changed: an owner deleting in the foreground may now be free.
    for (const ownerUid of [...prevOwners, ...nowOwners]) {
      const owner = this.findOwnerRef(e, ownerUid);
      if (owner) this.ownerQueue.add(owner);
    }
    if (e.bucket === 'namespaces' && e.type !== 'DELETED' && e.object.metadata.deletionTimestamp) this.namespaceQueue.add(e.key);
    if (e.namespace && this.api.store.get('namespaces', e.namespace)?.metadata.deletionTimestamp) this.namespaceQueue.add(e.namespace);
    if (e.bucket === CRD_BUCKET && e.type !== 'DELETED' && e.object.metadata.deletionTimestamp) this.crdQueue.add(e.key);
    if (e.type === 'DELETED' || e.object.metadata.deletionTimestamp) {
      const crdName = e.bucket.includes('.') ? e.bucket : undefined;
      if (crdName && this.api.store.get(CRD_BUCKET, crdName)?.metadata.deletionTimestamp) this.crdQueue.add(crdName);
    }
    if (e.bucket === 'events') {
      if (e.type === 'DELETED') this.eventWrites.delete(e.key);
      else this.eventWrites.set(e.key, Date.now());
    }
    if (this.pending()) this.kick();
  }

  /** "bucket\0key" of a foreground-deleting owner with this uid, among the event object's owners. */
  private findOwnerRef(e: StoreEvent, ownerUid: string): string | undefined {
    const obj = e.prev ?? e.object;
    const ref = (obj.metadata.ownerReferences ?? []).find((r) => r.uid === ownerUid) ?? (e.object.metadata.ownerReferences ?? []).find((r) => r.uid === ownerUid);
    if (!ref) return undefined;
    const info = this.api.registry.byKind(ref.apiVersion, ref.kind);
    if (!info) return undefined;
    const bucket = storageOf(info);
    const key = objectKey(info.namespaced ? e.namespace : undefined, ref.name);
    const owner = this.api.store.get(bucket, key);
    if (!owner || owner.metadata.uid !== ownerUid || !(owner.metadata.finalizers ?? []).includes('foregroundDeletion')) return undefined;
    return `${bucket}\u0000${key}`;
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = (async () => {
      // Let the write that triggered us finish its response first.
      await new Promise((r) => setImmediate(r));
      while (this.pending() && !this.stopped) {
        for (const [queue, fn] of [
          [this.checkQueue, (r: string) => this.checkDependent(r)],
          [this.ownerQueue, (r: string) => this.processOwner(r)],
          [this.namespaceQueue, (r: string) => this.cleanNamespace(r)],
          [this.crdQueue, (r: string) => this.cleanCrd(r)],
        ] as const) {
          const items = [...queue];
          queue.clear();
          for (const item of items) {
            try {
              await fn(item);
            } catch (err) {
              if (err instanceof StatusError && (err.code === 404 || err.code === 409)) queue.add(item);
              else this.log.warn({ err, item: item.replace('\u0000', '/') }, 'controller action failed; will retry on the next change');
              if (err instanceof StatusError && err.code === 409) continue;
            }
          }
        }
      }
    })().finally(() => {
      this.running = undefined;
      if (this.pending() && !this.stopped) this.kick();
      else {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    });
  }

  private infoFor(obj: KubeObject): ResourceInfo | undefined {
    return this.api.registry.byKind(obj.apiVersion, obj.kind);
  }

  private stored(ref: string): { bucket: string; key: string; obj: KubeObject | undefined } {
    const [bucket, key] = ref.split('\u0000');
    return { bucket, key, obj: this.api.store.get(bucket, key) };
  }

  /** Delete a dependent none of whose owners still exist; drop dangling references otherwise. */
  private async checkDependent(ref: string): Promise<void> {
    const { obj } = this.stored(ref);
    if (!obj) return;
    const refs = obj.metadata.ownerReferences ?? [];
    if (!refs.length) return;
    const solid: string[] = [];
    const dangling: string[] = [];
    let foregroundOwner = false;
    for (const r of refs) {
      const info = this.api.registry.byKind(r.apiVersion, r.kind);
      if (!info) {
        solid.push(r.uid); // unknown kind: never delete on a guess
        continue;
      }
      if (info.namespaced && !obj.metadata.namespace) {
        dangling.push(r.uid); // a cluster-scoped object cannot be owned by a namespaced one
        continue;
      }
      const owner = this.api.peek(info, obj.metadata.namespace, r.name);
      if (!owner || owner.metadata.uid !== r.uid) dangling.push(r.uid);
      else if (owner.metadata.deletionTimestamp && (owner.metadata.finalizers ?? []).includes('foregroundDeletion')) foregroundOwner = true;
      else solid.push(r.uid);
    }
    const info = this.infoFor(obj);
    if (!info) return;
    if (solid.length === 0) {
      if (obj.metadata.deletionTimestamp) return;
      await this.api.delete(this.ctx(), info, obj.metadata.namespace, obj.metadata.name!, {
        propagationPolicy: foregroundOwner ? 'Foreground' : 'Background',
        preconditions: { uid: obj.metadata.uid },
      });
      return;
    }
    if (dangling.length) {
      const next = structuredClone(obj);
      next.metadata.ownerReferences = refs.filter((r) => !dangling.includes(r.uid));
      await this.api.writeUpdate(this.ctx(), info, obj, next);
    }
  }

  /** Orphan: strip our reference from dependents. Foreground: wait for blocking dependents. Then drop the finalizer. */
  private async processOwner(ref: string): Promise<void> {
    const { obj } = this.stored(ref);
    if (!obj || !obj.metadata.deletionTimestamp) return;
    const info = this.infoFor(obj);
    if (!info) return;
    const uid = obj.metadata.uid!;
    const fins = obj.metadata.finalizers ?? [];
    const deps = [...(this.dependents.get(uid) ?? [])].map((d) => this.stored(d)).filter((d) => d.obj);
    let remove: string | undefined;
    if (fins.includes('orphan')) {
      for (const d of deps) {
        const depInfo = this.infoFor(d.obj!);
        if (!depInfo) continue;
        const next = structuredClone(d.obj!);
        next.metadata.ownerReferences = (next.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
        if (!next.metadata.ownerReferences.length) delete next.metadata.ownerReferences;
        await this.api.writeUpdate(this.ctx(), depInfo, d.obj!, next);
      }
      remove = 'orphan';
    } else if (fins.includes('foregroundDeletion')) {
      const blocking = deps.filter((d) => (d.obj!.metadata.ownerReferences ?? []).some((r) => r.uid === uid && r.blockOwnerDeletion));
      for (const d of deps) this.checkQueue.add(`${d.bucket}\u0000${d.key}`);
      if (blocking.length) return;
      remove = 'foregroundDeletion';
    }
    if (!remove) return;
    const current = this.api.store.get(...(ref.split('\u0000') as [string, string]));
    if (!current) return;
    const next = structuredClone(current);
    next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== remove);
    await this.api.writeUpdate(this.ctx(), info, current, next);
  }

  /** A terminating namespace: delete everything in it; once empty, finalize it. */
  private async cleanNamespace(name: string): Promise<void> {
    const ns = this.api.store.get('namespaces', name);
    if (!ns || !ns.metadata.deletionTimestamp) return;
    let remaining = 0;
    for (const [bucket, info] of this.namespacedBuckets()) {
      for (const [, obj] of [...this.api.store.range(bucket, { namespace: name })]) {
        remaining++;
        if (obj.metadata.deletionTimestamp) continue;
        const objInfo = this.infoFor(obj) ?? info;
        try {
          await this.api.delete(this.ctx(), objInfo, name, obj.metadata.name!, { propagationPolicy: 'Background' });
        } catch (err) {
          if (!(err instanceof StatusError && err.code === 404)) throw err;
        }
      }
    }
    if (remaining > 0 && this.anyLeftIn(name)) return; // deletions (or finalizers) will wake us again
    const current = this.api.store.get('namespaces', name)!;
    const nsInfo = this.api.registry.lookup('', 'v1', 'namespaces')!;
    const next = structuredClone(current);
    next.spec = { ...((next.spec as Obj) ?? {}), finalizers: [] };
    await this.api.writeUpdate(this.ctx(), nsInfo, current, next, 'finalize');
  }

  private anyLeftIn(namespace: string): boolean {
    for (const [bucket] of this.namespacedBuckets()) if (this.api.store.count(bucket, namespace) > 0) return true;
    return false;
  }

  /** Each storage bucket of namespaced objects once (resources serving the same objects share one), with the first resource serving it. */
  private *namespacedBuckets(): Generator<[bucket: string, info: ResourceInfo]> {
    const seen = new Set<string>();
    for (const info of this.api.registry.all()) {
      if (!info.namespaced) continue;
      const bucket = storageOf(info);
      if (seen.has(bucket)) continue;
      seen.add(bucket);
      yield [bucket, info];
    }
  }

  /** A terminating CRD: delete its objects; once none remain, drop the cleanup finalizer. */
  private async cleanCrd(name: string): Promise<void> {
    const crd = this.api.store.get(CRD_BUCKET, name);
    if (!crd || !crd.metadata.deletionTimestamp) return;
    const spec = (crd as Obj).spec ?? {};
    const bucket = `${spec.names?.plural}.${spec.group}`;
    for (const [, obj] of [...this.api.store.range(bucket)]) {
      if (obj.metadata.deletionTimestamp) continue;
      const info = this.infoFor(obj) ?? this.api.registry.byGroupKind(spec.group, spec.names?.kind);
      if (!info) continue;
      await this.api.delete(this.ctx(), info, obj.metadata.namespace, obj.metadata.name!, { propagationPolicy: 'Background' });
    }
    if (this.api.store.count(bucket) > 0) return;
    const crdInfo = this.api.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions')!;
    const current = this.api.store.get(CRD_BUCKET, name)!;
    if (!(current.metadata.finalizers ?? []).includes(CRD_CLEANUP_FINALIZER)) return;
    const next = structuredClone(current);
    next.metadata.finalizers = (next.metadata.finalizers ?? []).filter((f) => f !== CRD_CLEANUP_FINALIZER);
    await this.api.writeUpdate(this.ctx(), crdInfo, current, next);
  }

  /** Events live for the TTL after their last write, like etcd leases on kube-apiserver's events. */
  expireEvents(now = Date.now()): number {
    const ttlMs = this.opts.eventTtlSeconds * 1000;
    let n = 0;
    for (const [key, at] of [...this.eventWrites]) {
      if (now - at < ttlMs) continue;
      if (this.api.store.get('events', key)) {
        this.api.store.commit('events', key, undefined);
        n++;
      }
      this.eventWrites.delete(key);
    }
    return n;
  }
}

function ownerUids(obj: KubeObject | undefined): string[] {
  return (obj?.metadata.ownerReferences ?? []).map((r) => r.uid).filter(Boolean);
}
