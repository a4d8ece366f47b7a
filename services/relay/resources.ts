// What the relay watches, and how an object of each resource maps onto the key
// of the object a worker must reconcile. The relay only ever holds an object's
// identity (namespace/name), its resourceVersion and that key: never the object.
import { CRONTAB_LABEL, isAsWritten, MANAGED_BY, MANAGED_BY_LABEL, type CronJobLike } from '../common/cronjob-ownership.ts';
import { formatKey, isObjectName } from '../common/queue.ts';

/** The few metadata fields the relay reads from an object. */
export interface ObjectMetaLite {
  name?: unknown;
  namespace?: unknown;
  resourceVersion?: unknown;
  labels?: unknown;
  ownerReferences?: unknown;
  generation?: unknown;
  deletionTimestamp?: unknown;
}

export interface WatchedResource {
  /** Plural resource name, also the name of its checkpoint and known-set in Redis. */
  name: 'secrets' | 'crontabs' | 'cronjobs';
  group: string;
  version: string;
  kind: string;
  /** All-namespace collection path. */
  path: string;
  labelSelector?: string;
  /**
   * MODIFIED events that leave metadata.generation (and deletion) as last seen are
   * not enqueued: they are status/metadata writes (mostly the worker's own status
   * write), which the worker does not act on. Only for CronTabs.
   */
  skipSameGeneration?: true;
  /**
   * Events of an object whose owned fields are exactly as a worker last wrote them
   * (cronjob-ownership.ts) are not enqueued, unless its lastScheduleTime moved (the
   * worker mirrors it into the CronTab's status): they are the worker's own writes.
   * Only for CronJobs.
   */
  skipOwnWrites?: true;
  /** The key to reconcile for this object, or undefined when it maps to nothing. */
  keyFor(namespace: string, name: string, meta: ObjectMetaLite): string | undefined;
}

// The labels the worker puts on CronJobs; CRONTAB_LABEL is the fallback for a CronJob without an ownerReference.
export { CRONTAB_LABEL, MANAGED_BY_LABEL };
export const MANAGED_BY_VALUE = MANAGED_BY;
export const CRONTAB_GROUP = 'stable.example.com';

/** A managed CronJob maps to its CronTab: the controller ownerReference of kind CronTab, else the label. */
export function owningCronTab(namespace: string, meta: ObjectMetaLite): string | undefined {
  if (Array.isArray(meta.ownerReferences)) {
    const owners = meta.ownerReferences.filter(
      (o): o is { kind: string; name: string; apiVersion?: string; controller?: boolean } =>
        !!o && typeof o === 'object' && (o as { kind?: unknown }).kind === 'CronTab' && typeof (o as { name?: unknown }).name === 'string' && (o as { name: string }).name !== '',
    );
    const owner = owners.find((o) => o.controller) ?? owners[0];
    if (owner) return isObjectName(namespace, owner.name) ? formatKey({ kind: 'CronTab', namespace, name: owner.name }) : undefined;
  }
  const labels = meta.labels;
  if (labels && typeof labels === 'object') {
    const name = (labels as Record<string, unknown>)[CRONTAB_LABEL];
    if (typeof name === 'string' && isObjectName(namespace, name)) return formatKey({ kind: 'CronTab', namespace, name });
  }
  return undefined;
}

export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  {
    name: 'secrets',
    group: '',
    version: 'v1',
    kind: 'Secret',
    path: '/api/v1/secrets',
    keyFor: (namespace, name) => formatKey({ kind: 'Secret', namespace, name }),
  },
  {
    name: 'crontabs',
    group: CRONTAB_GROUP,
    version: 'v1',
    kind: 'CronTab',
    path: `/apis/${CRONTAB_GROUP}/v1/crontabs`,
    skipSameGeneration: true,
    keyFor: (namespace, name) => formatKey({ kind: 'CronTab', namespace, name }),
  },
  {
    name: 'cronjobs',
    group: 'batch',
    version: 'v1',
    kind: 'CronJob',
    path: '/apis/batch/v1/cronjobs',
    labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
    skipOwnWrites: true,
    keyFor: (namespace, _name, meta) => owningCronTab(namespace, meta),
  },
];

export function resourceByName(name: string): WatchedResource | undefined {
  return WATCHED_RESOURCES.find((r) => r.name === name);
}

/** Find the watched resource an audit objectRef names (group '' is core). */
export function resourceFor(group: string | undefined, resource: string | undefined): WatchedResource | undefined {
  return WATCHED_RESOURCES.find((r) => r.name === resource && r.group === (group ?? ''));
}

// ---- known-set entries -------------------------------------------------------
// The relay remembers, per resource, every object it has seen: id "namespace/name"
// → its resourceVersion and, when it differs from the default, the key it maps to
// (a CronJob's CronTab). A compact string keeps 100,000 entries small.

export interface KnownEntry {
  resourceVersion: string;
  key: string;
}

export function objectId(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function defaultKey(resource: WatchedResource, id: string): string {
  return `${resource.kind}/${id}`;
}

export function encodeEntry(resource: WatchedResource, id: string, entry: KnownEntry): string {
  return entry.key === defaultKey(resource, id) ? entry.resourceVersion : `${entry.resourceVersion} ${entry.key}`;
}

export function decodeEntry(resource: WatchedResource, id: string, value: string): KnownEntry {
  const space = value.indexOf(' ');
  if (space < 0) return { resourceVersion: value, key: defaultKey(resource, id) };
  return { resourceVersion: value.slice(0, space), key: value.slice(space + 1) };
}

// ---- watch events ----------------------------------------------------------------

/**
 * What a worker acts on, in one string: generation and whether deletion started.
 * Undefined when the object has no generation (then every event counts).
 */
export function specFingerprint(meta: ObjectMetaLite): string | undefined {
  if (typeof meta.generation !== 'number') return undefined;
  return meta.deletionTimestamp ? `${meta.generation}d` : String(meta.generation);
}

/** The fingerprint of a CronJob as a worker wrote it and with no lastScheduleTime. */
export const AS_WRITTEN = 'w:';

/**
 * For a CronJob exactly as a worker wrote it: AS_WRITTEN and its lastScheduleTime.
 * Undefined for any other (drifted, foreign, being deleted): its events always count.
 */
export function ownWriteFingerprint(obj: unknown): string | undefined {
  if (!isAsWritten(obj as CronJobLike)) return undefined;
  const last = (obj as { status?: { lastScheduleTime?: unknown } }).status?.lastScheduleTime;
  return `${AS_WRITTEN}${typeof last === 'string' ? last : ''}`;
}

/** The fingerprint a resource skips on (see skipSameGeneration, skipOwnWrites), if any. */
export function fingerprintOf(resource: WatchedResource, obj: unknown, meta: ObjectMetaLite): string | undefined {
  if (resource.skipSameGeneration) return specFingerprint(meta);
  if (resource.skipOwnWrites) return ownWriteFingerprint(obj);
  return undefined;
}

export type ParsedEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; id: string; resourceVersion: string; key: string | undefined; fingerprint?: string }
  | { type: 'BOOKMARK'; resourceVersion: string }
  | { type: 'ERROR'; code: number | undefined; message: string }
  | { type: 'BAD'; reason: string };

const CHANGE_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/**
 * Parse one line of a watch stream. Never throws: anything unusable is `BAD` with
 * a reason that names what is wrong and never quotes the object (a Secret's data).
 */
export function parseWatchLine(line: string, resource: WatchedResource): ParsedEvent {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return { type: 'BAD', reason: 'not JSON' };
  }
  if (!event || typeof event !== 'object') return { type: 'BAD', reason: 'not an object' };
  const { type, object } = event as { type?: unknown; object?: unknown };
  if (!object || typeof object !== 'object') return { type: 'BAD', reason: 'event without an object' };
  const obj = object as { kind?: unknown; code?: unknown; message?: unknown; metadata?: unknown };
  if (type === 'ERROR') {
    return { type: 'ERROR', code: typeof obj.code === 'number' ? obj.code : undefined, message: typeof obj.message === 'string' ? obj.message : 'watch error' };
  }
  const meta = (obj.metadata && typeof obj.metadata === 'object' ? obj.metadata : undefined) as ObjectMetaLite | undefined;
  const rv = meta?.resourceVersion;
  if (type === 'BOOKMARK') {
    if (typeof rv !== 'string' || rv === '') return { type: 'BAD', reason: 'bookmark without a resourceVersion' };
    return { type: 'BOOKMARK', resourceVersion: rv };
  }
  if (typeof type !== 'string' || !CHANGE_TYPES.has(type)) return { type: 'BAD', reason: `unknown event type ${JSON.stringify(String(type)).slice(0, 40)}` };
  if (obj.kind !== undefined && obj.kind !== resource.kind) return { type: 'BAD', reason: `unexpected kind ${JSON.stringify(String(obj.kind)).slice(0, 60)} on the ${resource.name} watch` };
  if (!meta) return { type: 'BAD', reason: 'object without metadata' };
  const { name, namespace } = meta;
  if (typeof name !== 'string' || name === '' || typeof namespace !== 'string' || namespace === '') return { type: 'BAD', reason: 'object without namespace/name' };
  if (typeof rv !== 'string' || rv === '') return { type: 'BAD', reason: 'object without a resourceVersion' };
  if (name.includes('/') || namespace.includes('/')) return { type: 'BAD', reason: 'malformed namespace/name' };
  const ev: ParsedEvent = { type: type as 'ADDED' | 'MODIFIED' | 'DELETED', id: objectId(namespace, name), resourceVersion: rv, key: resource.keyFor(namespace, name, meta) };
  const fingerprint = fingerprintOf(resource, obj, meta);
  if (fingerprint !== undefined) ev.fingerprint = fingerprint;
  return ev;
}
