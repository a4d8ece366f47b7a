// What the relay remembers per watched resource, in memory and in Redis.
//
// Invariants:
//  - `known` holds every object of the resource the relay has seen and not seen
//    deleted: id "namespace/name" → resourceVersion (+ mapped key). Never the object.
//  - The checkpoint in Redis (`…:relay:<resource>:rv`) is only ever a
//    resourceVersion whose changes are all in the queue already: it is written in
//    the same flush that added the jobs for every event up to it, after them. A
//    relay that restarts from it therefore loses nothing; at worst it sees a few
//    events twice, which the queue's deduplication absorbs.
//  - The known-set in Redis (`…:relay:<resource>:known`, a hash) follows `known`
//    through the same flushes, so a relist after a 410 (or a restart) can tell which
//    keys vanished while no one watched.
//  - All keys share the queue's hash-tagged prefix: one Redis Cluster slot, so the
//    relist's RENAME and MULTI stay legal on a cluster.
import type { Redis } from 'ioredis';
import { hashTaggedPrefix } from '../common/queue.ts';
import { decodeEntry, encodeEntry, type KnownEntry, type WatchedResource } from './resources.ts';

/** Base of the relay's own Redis keys, under the queue's prefix and name. */
export function relayKeyBase(prefix: string, queueName: string): string {
  return `${hashTaggedPrefix(prefix)}:${queueName}:relay`;
}

export interface StateSnapshot {
  state: ResourceState;
  resourceVersion: string | undefined;
  /** Whole known-set as HSET arguments (field, value, …) in chunks, when it must be rewritten. */
  full?: string[][];
  /** Changed ids: encoded entry, or null when deleted. */
  changes?: Map<string, string | null>;
}

const HSET_CHUNK = 1000;

export class ResourceState {
  /** id → encoded KnownEntry (see resources.ts). */
  known = new Map<string, string>();
  private dirty = new Set<string>();
  private fullRewrite = false;
  /** Newest resourceVersion observed (events and bookmarks); undefined until the first list or checkpoint. */
  resourceVersion: string | undefined;
  /** The resourceVersion last written to Redis. */
  private savedResourceVersion: string | undefined;

  constructor(
    readonly resource: WatchedResource,
    private readonly keyBase: string,
  ) {}

  get rvKey(): string {
    return `${this.keyBase}:${this.resource.name}:rv`;
  }
  get knownKey(): string {
    return `${this.keyBase}:${this.resource.name}:known`;
  }

  get(id: string): KnownEntry | undefined {
    const v = this.known.get(id);
    return v === undefined ? undefined : decodeEntry(this.resource, id, v);
  }

  set(id: string, entry: KnownEntry): void {
    this.known.set(id, encodeEntry(this.resource, id, entry));
    if (!this.fullRewrite) this.dirty.add(id);
  }

  delete(id: string): void {
    if (this.known.delete(id) && !this.fullRewrite) this.dirty.add(id);
  }

  /** After a relist: the listed objects replace everything, checkpointed at the list's resourceVersion. */
  replaceAll(known: Map<string, string>, resourceVersion: string): void {
    this.known = known;
    this.dirty.clear();
    this.fullRewrite = true;
    this.resourceVersion = resourceVersion;
  }

  /** Redis lost its data (a restart without persistence): write everything again. */
  markAllDirty(): void {
    this.dirty.clear();
    this.fullRewrite = true;
    this.savedResourceVersion = undefined;
  }

  /** Forget everything (leadership lost): the next leader starts from Redis. */
  reset(): void {
    this.known = new Map();
    this.dirty.clear();
    this.fullRewrite = false;
    this.resourceVersion = undefined;
    this.savedResourceVersion = undefined;
  }

  /** Whether a checkpoint was ever written by this relay (so its absence means Redis lost it). */
  hasSaved(): boolean {
    return this.savedResourceVersion !== undefined;
  }

  hasUnsaved(): boolean {
    return this.fullRewrite || this.dirty.size > 0 || (this.resourceVersion !== undefined && this.resourceVersion !== this.savedResourceVersion);
  }

  /** Taken synchronously together with the pending jobs, so the two describe the same moment. */
  snapshot(): StateSnapshot {
    const snap: StateSnapshot = { state: this, resourceVersion: this.resourceVersion };
    if (this.fullRewrite) {
      const chunks: string[][] = [];
      let chunk: string[] = [];
      for (const [id, value] of this.known) {
        chunk.push(id, value);
        if (chunk.length >= HSET_CHUNK * 2) {
          chunks.push(chunk);
          chunk = [];
        }
      }
      if (chunk.length) chunks.push(chunk);
      snap.full = chunks;
      this.fullRewrite = false;
      this.dirty = new Set();
    } else if (this.dirty.size) {
      const changes = new Map<string, string | null>();
      for (const id of this.dirty) changes.set(id, this.known.get(id) ?? null);
      snap.changes = changes;
      this.dirty = new Set();
    }
    return snap;
  }

  /** The snapshot could not be written: keep its work for the next flush. */
  restore(snap: StateSnapshot): void {
    if (snap.full) this.fullRewrite = true;
    if (snap.changes && !this.fullRewrite) for (const id of snap.changes.keys()) this.dirty.add(id);
  }

  /** Write a snapshot: known-set changes first, then the checkpoint. */
  async persist(redis: Redis, snap: StateSnapshot): Promise<void> {
    if (snap.full) {
      // Build the new set beside the old one, a chunk per round trip (one huge MULTI
      // would sit in memory whole), then swap it in atomically with the checkpoint.
      const tmp = `${this.knownKey}:next`;
      await redis.del(tmp);
      for (let i = 0; i < snap.full.length; i += 8) {
        const pipeline = redis.pipeline();
        for (const chunk of snap.full.slice(i, i + 8)) pipeline.hset(tmp, ...chunk);
        await execOrThrow(pipeline);
      }
      const multi = redis.multi();
      if (snap.full.length) multi.rename(tmp, this.knownKey);
      else multi.del(this.knownKey);
      if (snap.resourceVersion !== undefined) multi.set(this.rvKey, snap.resourceVersion);
      await execOrThrow(multi);
    } else {
      const multi = redis.multi();
      if (snap.changes) {
        const sets: string[] = [];
        const dels: string[] = [];
        for (const [id, value] of snap.changes) {
          if (value === null) dels.push(id);
          else sets.push(id, value);
        }
        for (let i = 0; i < sets.length; i += HSET_CHUNK * 2) multi.hset(this.knownKey, ...sets.slice(i, i + HSET_CHUNK * 2));
        for (let i = 0; i < dels.length; i += HSET_CHUNK) multi.hdel(this.knownKey, ...dels.slice(i, i + HSET_CHUNK));
      }
      if (snap.resourceVersion !== undefined && snap.resourceVersion !== this.savedResourceVersion) multi.set(this.rvKey, snap.resourceVersion);
      if (multi.length) await execOrThrow(multi);
    }
    if (snap.resourceVersion !== undefined) this.savedResourceVersion = snap.resourceVersion;
  }

  /**
   * Load the checkpoint and the known-set a previous leader left. Returns false
   * when there is no usable checkpoint (the caller must list).
   */
  async load(redis: Redis): Promise<boolean> {
    const rv = await redis.get(this.rvKey);
    if (!rv) return false;
    const known = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, fields] = await redis.hscan(this.knownKey, cursor, 'COUNT', 5000);
      for (let i = 0; i + 1 < fields.length; i += 2) known.set(fields[i]!, fields[i + 1]!);
      cursor = next;
    } while (cursor !== '0');
    this.known = known;
    this.dirty.clear();
    this.fullRewrite = false;
    this.resourceVersion = rv;
    this.savedResourceVersion = rv;
    return true;
  }
}

async function execOrThrow(multi: ReturnType<Redis['multi']> | ReturnType<Redis['pipeline']>): Promise<void> {
  const results = await multi.exec();
  if (!results) throw new Error('redis transaction aborted');
  for (const [err] of results) if (err) throw err;
}
