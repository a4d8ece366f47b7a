// The queue contract shared by the relay (producer) and the workers (consumers).
//
// Invariants (controller work-queue semantics, held by BullMQ across processes):
//  - A job is a hint: "look at this key". It never carries the object, and never
//    Secret data: only the key, the event that caused it, a resourceVersion and a time.
//  - The deduplication id is the key. With `keepLastIfActive`, a key has at most one
//    waiting job (later adds coalesce into it) and at most one active job; an add
//    while the key is active is kept and becomes exactly one more pass afterwards.
//  - Every queue key lives under a hash-tagged prefix (`{prefix}`), so all of a
//    queue's keys hash to one slot and its Lua scripts run on Redis Cluster.
import type { ConnectionOptions, JobsOptions } from 'bullmq';
import { quoted } from './bounded.ts';

/** Kinds a worker reconciles. The relay maps every watched object onto one of these. */
export const RECONCILE_KINDS = ['CronTab', 'Secret'] as const;
export type ReconcileKind = (typeof RECONCILE_KINDS)[number];

export interface ObjectKey {
  kind: ReconcileKind;
  namespace: string;
  name: string;
}

/** Why a key was enqueued. Informational only: reconcilers never branch on it. */
export type EnqueueReason = 'ADDED' | 'MODIFIED' | 'DELETED' | 'RELIST' | 'RESYNC' | 'AUDIT' | 'MANUAL';

/** The job payload. Never put Secret data or whole objects here. */
export interface ReconcileJobData {
  key: string;
  reason: EnqueueReason;
  resourceVersion?: string;
  /** Milliseconds since the epoch when the relay saw the change. */
  seenAt: number;
}

export const JOB_NAME = 'reconcile';

/** `Kind/namespace/name`; the job's deduplication id must be exactly this string. */
export function formatKey(key: ObjectKey): string {
  return `${key.kind}/${key.namespace}/${key.name}`;
}

export class InvalidKeyError extends Error {
  override name = 'InvalidKeyError';
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Can these be a namespace (DNS-1123 label, ≤ 63) and the name of a Secret or
 * CronTab (DNS-1123 subdomain, ≤ 253), as the API server requires? Names read from
 * anywhere else (an ownerReference, a label, an audit event) are checked with this
 * before they become a key: nothing else bounds them.
 */
export function isObjectName(namespace: string, name: string): boolean {
  return namespace.length <= 63 && name.length <= 253 && NAMESPACE.test(namespace) && NAME.test(name);
}

export function parseKey(key: string): ObjectKey {
  const parts = key.split('/', 4);
  if (parts.length !== 3 || !parts[1] || !parts[2]) throw new InvalidKeyError(`job key must be Kind/namespace/name, got ${quoted(key)}`);
  const [kind, namespace, name] = parts as [string, string, string];
  if (!(RECONCILE_KINDS as readonly string[]).includes(kind)) throw new InvalidKeyError(`unknown kind ${quoted(kind)} in job key ${quoted(key)}`);
  if (!isObjectName(namespace, name)) throw new InvalidKeyError(`job key ${quoted(key)} does not name an object: a namespace is a DNS-1123 label, a name a DNS-1123 subdomain`);
  return { kind: kind as ReconcileKind, namespace, name };
}

/** Wrap a user prefix in braces (once) so every key of the queue shares a cluster hash slot. */
export function hashTaggedPrefix(prefix: string): string {
  return /^\{[^{}]+\}$/.test(prefix) ? prefix : `{${prefix}}`;
}

/** Retry policy: transient errors back off exponentially; after the last attempt a job stays in the failed set. */
export const RETRY_ATTEMPTS = 8;
export const RETRY_BASE_DELAY_MS = 500;

/** Options for every add. `data.key` and the deduplication id must be the same string. */
export function jobOptions(key: string): JobsOptions {
  return {
    deduplication: { id: key, keepLastIfActive: true },
    attempts: RETRY_ATTEMPTS,
    backoff: { type: 'exponential', delay: RETRY_BASE_DELAY_MS },
    removeOnComplete: { count: 1000 },
    removeOnFail: { count: 10_000 },
  };
}

/** Connection options from a redis:// URL, shaped for BullMQ (blocking commands need no retry limit). */
export function redisConnection(url: string): ConnectionOptions {
  const u = new URL(url);
  const db = u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : undefined;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number.isInteger(db) ? db : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: null,
  };
}
