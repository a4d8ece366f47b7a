// What kreconcile owns on a CronJob it made for a CronTab. The worker compares these
// fields to decide whether to write; the relay uses their digest to tell the worker's
// own writes (nothing to do) from drift (reconcile the CronTab again).
//
// The worker stamps every CronJob it writes with the digest of the owned fields it
// wrote (annotation OWNED_FIELDS_ANNOTATION). A CronJob whose owned fields still
// hash to that digest is exactly as a worker left it, so its watch event needs no
// reconcile; anyone else's change to an owned field breaks the match.
import { createHash } from 'node:crypto';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'kreconcile';
export const CRONTAB_LABEL = 'kreconcile.io/crontab';
export const CONTAINER_NAME = 'crontab';
export const OWNED_FIELDS_ANNOTATION = 'kreconcile.io/owned-fields';

interface OwnerRefLike {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

interface ContainerLike {
  name?: string;
  image?: string;
  command?: string[];
  args?: string[];
}

/** The parts of a CronJob read here; the kubernetes-models CronJob type fits it. */
export interface CronJobLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: OwnerRefLike[]; deletionTimestamp?: unknown };
  spec?: {
    schedule?: string;
    timeZone?: string;
    suspend?: boolean;
    concurrencyPolicy?: string;
    jobTemplate?: { spec?: { parallelism?: number; completions?: number; template?: { spec?: { restartPolicy?: string; containers?: ContainerLike[] } } } };
  };
}

/**
 * The fields kreconcile owns, with server defaults normalised (suspend false,
 * concurrencyPolicy Allow, absent = null), so desired and actual compare equal
 * exactly when no write is needed. Everything else on the CronJob is left alone.
 */
export function ownedFields(cj: CronJobLike, ownerUid: string | undefined): Record<string, unknown> {
  const labels = cj.metadata?.labels ?? {};
  const jobSpec = cj.spec?.jobTemplate?.spec;
  const podSpec = jobSpec?.template?.spec;
  const container = podSpec?.containers?.find((c) => c.name === CONTAINER_NAME);
  const ref = (cj.metadata?.ownerReferences ?? []).find((r) => r.uid === ownerUid);
  return {
    'metadata.labels.managed-by': labels[MANAGED_BY_LABEL] ?? null,
    'metadata.labels.crontab': labels[CRONTAB_LABEL] ?? null,
    'metadata.ownerReferences': ref ? { ...ref, controller: ref.controller ?? false, blockOwnerDeletion: ref.blockOwnerDeletion ?? false } : null,
    'spec.schedule': cj.spec?.schedule ?? null,
    'spec.timeZone': cj.spec?.timeZone ?? null,
    'spec.suspend': cj.spec?.suspend ?? false,
    'spec.concurrencyPolicy': cj.spec?.concurrencyPolicy ?? 'Allow',
    'spec.jobTemplate.spec.parallelism': jobSpec?.parallelism ?? 1,
    'spec.jobTemplate.spec.completions': jobSpec?.completions ?? null,
    'spec.jobTemplate.spec.template.spec.restartPolicy': podSpec?.restartPolicy ?? 'Always',
    'container.image': container?.image ?? null,
    'container.command': container?.command ?? null,
    'container.args': container?.args ?? null,
  };
}

/** JSON with object keys sorted, so equal values always give the same text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value)
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A short digest of the owned fields (sha256, base64url, 128 bits). */
export function ownedFieldsDigest(cj: CronJobLike, ownerUid: string | undefined): string {
  return createHash('sha256').update(canonicalJson(ownedFields(cj, ownerUid))).digest('base64url').slice(0, 22);
}

/** The uid of the CronTab that controls this CronJob, if one does. */
export function controllingCronTabUid(cj: CronJobLike): string | undefined {
  return (cj.metadata?.ownerReferences ?? []).find((r) => r.controller && r.kind === 'CronTab')?.uid;
}

/**
 * True when the CronJob's owned fields are exactly those a worker last wrote: the
 * annotation is present and matches. A CronJob being deleted never counts.
 */
export function isAsWritten(cj: CronJobLike): boolean {
  const stamped = cj.metadata?.annotations?.[OWNED_FIELDS_ANNOTATION];
  if (!stamped || cj.metadata?.deletionTimestamp) return false;
  const uid = controllingCronTabUid(cj);
  return uid !== undefined && stamped === ownedFieldsDigest(cj, uid);
}
