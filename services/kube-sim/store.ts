// Storage, as etcd is to kube-apiserver: one global revision counter, per-bucket
// ordered maps (keys "namespace/name" or "name", sorted like etcd keys), and a
// bounded history of changes that watches replay and that makes paginated lists
// consistent at the revision of their first page.
//
// Invariants:
// - every commit takes exactly the next revision and appends exactly one event;
// - history holds every event with compactedRevision < rv <= revision, in order;
// - listeners run synchronously inside commit, so a watcher that replays history
//   and subscribes in the same tick sees every event once, in order.
import * as btree from 'sorted-btree';
import { tooOldResourceVersion } from './errors.ts';
import type { KubeObject } from './types.ts';

// sorted-btree is CommonJS with `exports.default`; under ESM the default import is the exports object.
const BTree = ((btree.default as unknown as { default?: unknown }).default ?? btree.default) as typeof btree.default.default;

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  rv: number;
  type: EventType;
  bucket: string;
  key: string;
  namespace: string;
  /** The new state; for DELETED the last state, carrying the deletion's revision. */
  object: KubeObject;
  /** The state before (absent for ADDED). */
  prev?: KubeObject;
}

export type StoreListener = (event: StoreEvent) => void;

export function objectKey(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

class Bucket {
  readonly tree = new BTree<string, KubeObject>();
  readonly perNamespace = new Map<string, number>();

  count(namespace?: string): number {
    return namespace === undefined ? this.tree.size : (this.perNamespace.get(namespace) ?? 0);
  }

  adjust(namespace: string, delta: number): void {
    const n = (this.perNamespace.get(namespace) ?? 0) + delta;
    if (n === 0) this.perNamespace.delete(namespace);
    else this.perNamespace.set(namespace, n);
  }
}

export interface StoreOptions {
  /** Events kept for watches and consistent pagination (default 10,000). */
  historyLimit?: number;
}

export interface RangeOptions {
  /** Only keys in this namespace. */
  namespace?: string;
  /** Start at this key (inclusive). */
  from?: string;
  /** Read the state as of this revision (must not be compacted). */
  atRevision?: number;
}

export class Store {
  private revision = 0;
  private compactedRevision = 0;
  private readonly historyLimit: number;
  /** Ring buffer of events, oldest at `head`. */
  private readonly ring: Array<StoreEvent | undefined>;
  private head = 0;
  private size = 0;
  private readonly buckets = new Map<string, Bucket>();
  private readonly bucketListeners = new Map<string, Set<StoreListener>>();
  private readonly globalListeners = new Set<StoreListener>();

  constructor(opts: StoreOptions = {}) {
    this.historyLimit = Math.max(1, opts.historyLimit ?? 10_000);
    this.ring = new Array(this.historyLimit);
  }

  /** The latest revision (what a list at "now" reports). */
  get currentRevision(): number {
    return this.revision;
  }

  /** Revisions at or below this are gone from history: watching or paging from them is 410. */
  get oldestAvailableRevision(): number {
    return this.compactedRevision;
  }

  get historyLength(): number {
    return this.size;
  }

  get(bucket: string, key: string): KubeObject | undefined {
    return this.buckets.get(bucket)?.tree.get(key);
  }

  count(bucket: string, namespace?: string): number {
    return this.buckets.get(bucket)?.count(namespace) ?? 0;
  }

  /**
   * Writes `next` (or removes the key when undefined) and returns the event. The object's
   * metadata.resourceVersion is set here; the caller must not mutate it afterwards.
   */
  commit(bucket: string, key: string, next: KubeObject | undefined): StoreEvent {
    const b = this.bucketFor(bucket);
    const prev = b.tree.get(key);
    if (!next && !prev) throw new Error(`commit: nothing to delete at ${bucket}/${key}`);
    const rv = ++this.revision;
    const rvString = String(rv);
    let event: StoreEvent;
    if (next) {
      next.metadata.resourceVersion = rvString;
      const namespace = next.metadata.namespace ?? '';
      b.tree.set(key, next);
      if (!prev) b.adjust(namespace, 1);
      event = { rv, type: prev ? 'MODIFIED' : 'ADDED', bucket, key, namespace, object: next, prev };
    } else {
      const last = { ...prev!, metadata: { ...prev!.metadata, resourceVersion: rvString } };
      const namespace = prev!.metadata.namespace ?? '';
      b.tree.delete(key);
      b.adjust(namespace, -1);
      event = { rv, type: 'DELETED', bucket, key, namespace, object: last, prev };
    }
    this.append(event);
    for (const l of this.bucketListeners.get(bucket) ?? []) l(event);
    for (const l of this.globalListeners) l(event);
    return event;
  }

  /** Live events of one bucket; returns the unsubscribe function. */
  subscribe(bucket: string, listener: StoreListener): () => void {
    let set = this.bucketListeners.get(bucket);
    if (!set) this.bucketListeners.set(bucket, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Live events of every bucket (controllers: garbage collector, namespace cleanup). */
  subscribeAll(listener: StoreListener): () => void {
    this.globalListeners.add(listener);
    return () => {
      this.globalListeners.delete(listener);
    };
  }

  /** Events of `bucket` with rv > `after`, oldest first. Throws 410 when `after` is compacted. */
  eventsSince(after: number, bucket?: string): StoreEvent[] {
    this.assertAvailable(after);
    const out: StoreEvent[] = [];
    for (let i = this.firstIndexAfter(after); i < this.size; i++) {
      const e = this.at(i);
      if (!bucket || e.bucket === bucket) out.push(e);
    }
    return out;
  }

  /** Drops every event from history: the next watch or page from an older revision gets 410. */
  compact(upTo = this.revision): void {
    while (this.size > 0 && this.at(0).rv <= upTo) this.dropOldest();
    this.compactedRevision = Math.max(this.compactedRevision, upTo);
  }

  assertAvailable(rv: number): void {
    if (rv < this.compactedRevision) throw tooOldResourceVersion(rv, this.revision);
  }

  /**
   * Objects in key order, optionally as of an older revision (the state a paginated list
   * started from): the current tree, with keys changed since then swapped for their old state.
   */
  *range(bucket: string, opts: RangeOptions = {}): Generator<[string, KubeObject]> {
    const b = this.buckets.get(bucket);
    const prefix = opts.namespace !== undefined ? `${opts.namespace}/` : undefined;
    let from = opts.from;
    if (prefix !== undefined && (from === undefined || from < prefix)) from = prefix;
    const inRange = (k: string) => prefix === undefined || k.startsWith(prefix);

    const overlay = opts.atRevision !== undefined && opts.atRevision < this.revision ? this.overlay(bucket, opts.atRevision) : undefined;
    const current = b ? b.tree.entries(from) : [][Symbol.iterator]();
    if (!overlay) {
      for (const [k, v] of current) {
        if (!inRange(k)) return;
        yield [k, v];
      }
      return;
    }
    // Merge two sorted streams: current keys not touched since the snapshot, and touched keys' old states.
    const old = [...overlay.entries()]
      .filter(([k, v]) => v !== undefined && (from === undefined || k >= from) && inRange(k))
      .sort(([a], [b2]) => (a < b2 ? -1 : a > b2 ? 1 : 0)) as Array<[string, KubeObject]>;
    let oi = 0;
    let cur = current.next();
    while (true) {
      while (!cur.done && overlay.has(cur.value[0])) cur = current.next();
      const curKey = cur.done || !inRange(cur.value[0]) ? undefined : cur.value[0];
      const oldKey = oi < old.length ? old[oi][0] : undefined;
      if (curKey === undefined && oldKey === undefined) return;
      if (oldKey !== undefined && (curKey === undefined || oldKey < curKey)) {
        yield old[oi++];
      } else {
        yield cur.value as [string, KubeObject];
        cur = current.next();
      }
    }
  }

  /** How many objects `bucket` held (in `namespace`) at `atRevision` (default now). */
  countAt(bucket: string, namespace: string | undefined, atRevision?: number): number {
    let n = this.count(bucket, namespace);
    if (atRevision === undefined || atRevision >= this.revision) return n;
    const b = this.buckets.get(bucket);
    for (const [k, old] of this.overlay(bucket, atRevision)) {
      if (namespace !== undefined && !k.startsWith(`${namespace}/`)) continue;
      const existsNow = b?.tree.has(k) ?? false;
      if (old && !existsNow) n++;
      if (!old && existsNow) n--;
    }
    return n;
  }

  /** key → state at `rev` (undefined: absent then) for every key changed after `rev`. */
  private overlay(bucket: string, rev: number): Map<string, KubeObject | undefined> {
    const touched = new Map<string, KubeObject | undefined>();
    for (const e of this.eventsSince(rev, bucket)) if (!touched.has(e.key)) touched.set(e.key, e.prev);
    return touched;
  }

  private bucketFor(name: string): Bucket {
    let b = this.buckets.get(name);
    if (!b) this.buckets.set(name, (b = new Bucket()));
    return b;
  }

  private at(i: number): StoreEvent {
    return this.ring[(this.head + i) % this.historyLimit]!;
  }

  private append(e: StoreEvent): void {
    if (this.size === this.historyLimit) this.dropOldest();
    this.ring[(this.head + this.size) % this.historyLimit] = e;
    this.size++;
  }

  private dropOldest(): void {
    const e = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.historyLimit;
    this.size--;
    this.compactedRevision = Math.max(this.compactedRevision, e.rv);
  }

  /** Index of the first event with rv > after (binary search; history is in rv order). */
  private firstIndexAfter(after: number): number {
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).rv <= after) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
