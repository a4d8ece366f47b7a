// CronTab → CronJob: pure desired-state builders and a plan, then a small act.
//
// Level-triggered: every pass reads the CronTab and its CronJob and decides from
// them alone. A converged CronTab costs two reads and no write: the comparison
// covers only the fields kreconcile owns, with the API server's defaults
// normalised away, so a CronJob the server filled in is not patched forever.
import { isDeepStrictEqual } from 'node:util';
import type { ICronJob } from 'kubernetes-models/batch/v1/CronJob';
import type { IIoK8sApiCoreV1Container as Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApimachineryPkgApisMetaV1ObjectMeta as ObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
import type { IIoK8sApimachineryPkgApisMetaV1OwnerReference as OwnerReference } from '@kubernetes-models/apimachinery/apis/meta/v1/OwnerReference';
import type { ObjectKey } from '../../common/queue.ts';
import { cronTabSpecProblems } from '../../common/cron.ts';
import { CONTAINER_NAME, CRONTAB_LABEL, MANAGED_BY, MANAGED_BY_LABEL, OWNED_FIELDS_ANNOTATION, ownedFields, ownedFieldsDigest } from '../../common/cronjob-ownership.ts';
import { CRONJOBS, CRONTABS } from '../kube.ts';
import { done, permanent, requeue, type Outcome, type ReconcileContext } from '../outcome.ts';
import type { ObjectRef } from '../events.ts';

export type CronJob = ICronJob;

export const CRONTAB_API_VERSION = 'stable.example.com/v1';
export { CONTAINER_NAME, CRONTAB_LABEL, MANAGED_BY, MANAGED_BY_LABEL, OWNED_FIELDS_ANNOTATION };
/** A CronJob of our name still being deleted: look again shortly. */
export const DELETING_REQUEUE_MS = 1_000;
/** NameConflict is healed by the periodic resync too; this only shortens the wait. */
export const CONFLICT_REQUEUE_MS = 60_000;

export interface CronTabSpec {
  cronSpec: string;
  image: string;
  replicas?: number;
  timeZone?: string;
  suspend?: boolean;
  concurrencyPolicy?: 'Allow' | 'Forbid' | 'Replace';
  /** Not in the CRD yet; carried if it grows them. */
  command?: string[];
  args?: string[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface CronTabStatus {
  observedGeneration?: number;
  cronJobName?: string;
  lastScheduleTime?: string;
  conditions?: Condition[];
}

export interface CronTab {
  apiVersion: string;
  kind: 'CronTab';
  metadata: ObjectMeta & { name: string; namespace: string; uid: string };
  spec: CronTabSpec;
  status?: CronTabStatus;
}

// ---------------------------------------------------------------- desired state

export function ownerReference(ct: CronTab): OwnerReference {
  return { apiVersion: CRONTAB_API_VERSION, kind: 'CronTab', name: ct.metadata.name, uid: ct.metadata.uid, controller: true, blockOwnerDeletion: true };
}

/** The CronJob a CronTab asks for. Deterministic: same CronTab, same object. */
export function desiredCronJob(ct: CronTab): CronJob {
  const { spec } = ct;
  const replicas = spec.replicas ?? 1;
  const container: Container = { name: CONTAINER_NAME, image: spec.image };
  if (spec.command) container.command = [...spec.command];
  if (spec.args) container.args = [...spec.args];
  const cronJob: CronJob = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: {
      name: ct.metadata.name,
      namespace: ct.metadata.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY, [CRONTAB_LABEL]: ct.metadata.name },
      ownerReferences: [ownerReference(ct)],
    },
    spec: {
      schedule: spec.cronSpec,
      ...(spec.timeZone !== undefined ? { timeZone: spec.timeZone } : {}),
      ...(spec.suspend !== undefined ? { suspend: spec.suspend } : {}),
      ...(spec.concurrencyPolicy !== undefined ? { concurrencyPolicy: spec.concurrencyPolicy } : {}),
      jobTemplate: {
        spec: {
          parallelism: replicas,
          completions: replicas,
          template: { spec: { restartPolicy: 'OnFailure', containers: [container] } },
        },
      },
    },
  };
  // The relay skips watch events of a CronJob that still matches this stamp: our own writes.
  cronJob.metadata!.annotations = { [OWNED_FIELDS_ANNOTATION]: ownedFieldsDigest(cronJob, ct.metadata.uid) };
  return cronJob;
}

/** Owned fields that differ, by name (for logs and Events). Empty means converged. */
export function diffCronJob(want: CronJob, actual: CronJob, owner: OwnerReference): string[] {
  const a = ownedFields(want, owner.uid);
  const b = ownedFields(actual, owner.uid);
  return Object.keys(a).filter((k) => !isDeepStrictEqual(a[k], b[k]));
}

/** `actual` with every owned field set from `want`; keeps resourceVersion (for a conditional PUT) and fields others own. */
export function mergeOwned(want: CronJob, actual: CronJob): CronJob {
  const out = structuredClone(actual);
  const meta = (out.metadata ??= {});
  meta.labels = { ...meta.labels, ...want.metadata!.labels };
  meta.annotations = { ...meta.annotations, ...want.metadata!.annotations };
  const ownerRef = want.metadata!.ownerReferences![0]!;
  meta.ownerReferences = [...(meta.ownerReferences ?? []).filter((r) => r.uid !== ownerRef.uid), ownerRef];
  delete meta.managedFields;
  const spec = (out.spec ??= { schedule: '', jobTemplate: {} });
  const ws = want.spec!;
  spec.schedule = ws.schedule;
  // Optional CronTab fields: absent in the CronTab means the server default, so reset rather than keep a stale value.
  if (ws.timeZone !== undefined) spec.timeZone = ws.timeZone;
  else delete spec.timeZone;
  spec.suspend = ws.suspend ?? false;
  spec.concurrencyPolicy = ws.concurrencyPolicy ?? 'Allow';
  const wantJob = ws.jobTemplate.spec!;
  const job = ((spec.jobTemplate ??= {}).spec ??= { template: {} });
  job.parallelism = wantJob.parallelism;
  job.completions = wantJob.completions;
  const pod = ((job.template ??= {}).spec ??= { containers: [] });
  pod.restartPolicy = wantJob.template.spec!.restartPolicy;
  const wantContainer = wantJob.template.spec!.containers[0]!;
  const containers = pod.containers ?? [];
  const i = containers.findIndex((c) => c.name === CONTAINER_NAME);
  const mine: Container = i >= 0 ? { ...containers[i]!, image: wantContainer.image } : { ...wantContainer };
  if (wantContainer.command) mine.command = wantContainer.command;
  else delete mine.command;
  if (wantContainer.args) mine.args = wantContainer.args;
  else delete mine.args;
  if (i >= 0) containers[i] = mine;
  else containers.push(mine);
  pod.containers = containers;
  return out;
}

export type Ownership = 'owned' | 'orphan' | 'foreign';

/**
 * owned: controlled by this CronTab (same uid). orphan: made by kreconcile for an
 * earlier CronTab of this name that no longer exists (its uid differs) — garbage.
 * foreign: anything else; never touched.
 */
export function ownership(cj: CronJob, ct: Pick<CronTab, 'metadata'>): Ownership {
  const controller = (cj.metadata?.ownerReferences ?? []).find((r) => r.controller);
  if (!controller || controller.kind !== 'CronTab' || controller.apiVersion.split('/')[0] !== CRONTAB_API_VERSION.split('/')[0]) return 'foreign';
  if (controller.uid === ct.metadata.uid) return 'owned';
  const managed = cj.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY;
  return managed && controller.name === ct.metadata.name ? 'orphan' : 'foreign';
}

export type Step =
  | { op: 'create'; obj: CronJob }
  | { op: 'update'; obj: CronJob; changed: string[] }
  | { op: 'none' }
  /** A CronJob of our name belongs to someone else. */
  | { op: 'conflict'; message: string }
  /** Our CronJob from a CronTab that no longer exists: delete it (conditionally), then create. */
  | { op: 'deleteOrphan'; name: string; uid: string; resourceVersion: string }
  /** A CronJob of our name is being deleted: wait for it to go. */
  | { op: 'wait'; message: string };

/** Pure: same CronTab and CronJob, same step. */
export function plan(ct: CronTab, actual: CronJob | undefined): Step {
  const want = desiredCronJob(ct);
  if (!actual) return { op: 'create', obj: want };
  const name = ct.metadata.name;
  if (actual.metadata?.deletionTimestamp) return { op: 'wait', message: `CronJob ${name} is being deleted` };
  const who = ownership(actual, ct);
  if (who === 'foreign') return { op: 'conflict', message: `CronJob ${name} already exists and is not controlled by this CronTab; kreconcile leaves it alone` };
  if (who === 'orphan') return { op: 'deleteOrphan', name, uid: actual.metadata!.uid!, resourceVersion: actual.metadata!.resourceVersion! };
  const changed = diffCronJob(want, actual, ownerReference(ct));
  return changed.length ? { op: 'update', obj: mergeOwned(want, actual), changed } : { op: 'none' };
}

// ---------------------------------------------------------------- status

export type ReadyVerdict = { ready: true } | { ready: false; reason: string; message: string };

/**
 * The status this pass should leave. `lastTransitionTime` moves only when the Ready
 * condition's status flips, so re-reconciling a converged CronTab changes nothing.
 */
export function desiredStatus(ct: CronTab, cj: CronJob | undefined, verdict: ReadyVerdict, now: Date): CronTabStatus {
  const prev = ct.status ?? {};
  const prevReady = prev.conditions?.find((c) => c.type === 'Ready');
  const status: Condition['status'] = verdict.ready ? 'True' : 'False';
  const ready: Condition = {
    type: 'Ready',
    status,
    reason: verdict.ready ? 'Synced' : verdict.reason,
    message: verdict.ready ? `CronJob ${ct.metadata.name} matches the spec` : verdict.message,
    lastTransitionTime: prevReady?.status === status && prevReady.lastTransitionTime ? prevReady.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    ...(ct.metadata.generation !== undefined ? { observedGeneration: ct.metadata.generation } : {}),
  };
  const owned = cj && verdict.ready;
  const out: CronTabStatus = {
    ...(ct.metadata.generation !== undefined ? { observedGeneration: ct.metadata.generation } : {}),
    ...(owned ? { cronJobName: cj.metadata!.name! } : {}),
    ...(owned && cj.status?.lastScheduleTime ? { lastScheduleTime: cj.status.lastScheduleTime } : {}),
    conditions: [...(prev.conditions ?? []).filter((c) => c.type !== 'Ready'), ready],
  };
  return out;
}

type StatusPatch = { [K in keyof CronTabStatus]-?: CronTabStatus[K] | null };

/**
 * The merge patch for `/status`, or undefined when nothing we own differs.
 * Fields we own that should be absent are null, so the patch removes them.
 */
export function statusChange(ct: CronTab, want: CronTabStatus): StatusPatch | undefined {
  const norm = (s: CronTabStatus): StatusPatch => ({
    observedGeneration: s.observedGeneration ?? null,
    cronJobName: s.cronJobName ?? null,
    lastScheduleTime: s.lastScheduleTime ?? null,
    conditions: s.conditions ?? [],
  });
  const have = norm(ct.status ?? {});
  const next = norm(want);
  return isDeepStrictEqual(have, next) ? undefined : next;
}

// ---------------------------------------------------------------- validation

const specProblemsCache = new Map<string, ReturnType<typeof cronTabSpecProblems>>();
const SPEC_CACHE_MAX = 10_000;
/** Longer specs are checked each time: the map bounds the count of keys, this their size (≤ 20 MB in all). */
const SPEC_CACHE_KEY_MAX = 2048;

/**
 * cronTabSpecProblems, remembered per spec: parsing a schedule (and its time zone)
 * costs more than the rest of a converged reconcile, and a resync sees the same
 * specs again and again. The key is the whole spec, so the answer cannot go stale.
 */
export function specProblems(spec: unknown): ReturnType<typeof cronTabSpecProblems> {
  const key = JSON.stringify(spec) ?? 'undefined';
  let problems = specProblemsCache.get(key);
  if (!problems) {
    problems = cronTabSpecProblems(spec);
    if (key.length > SPEC_CACHE_KEY_MAX) return problems;
    if (specProblemsCache.size >= SPEC_CACHE_MAX) specProblemsCache.clear();
    specProblemsCache.set(key, problems);
  }
  return problems;
}

/** How many specs specProblems remembers (for tests). */
export function rememberedSpecCount(): number {
  return specProblemsCache.size;
}

// ---------------------------------------------------------------- act

function cronTabRef(ct: CronTab): ObjectRef {
  return { apiVersion: ct.apiVersion ?? CRONTAB_API_VERSION, kind: 'CronTab', namespace: ct.metadata.namespace, name: ct.metadata.name, uid: ct.metadata.uid, resourceVersion: ct.metadata.resourceVersion };
}

function cronJobRef(namespace: string, name: string, uid?: string): ObjectRef {
  return { apiVersion: 'batch/v1', kind: 'CronJob', namespace, name, uid };
}

/** Writes the status when it differs; true when it wrote. */
async function writeStatus(ctx: ReconcileContext, ct: CronTab, cj: CronJob | undefined, verdict: ReadyVerdict, changes: string[]): Promise<boolean> {
  const change = statusChange(ct, desiredStatus(ct, cj, verdict, ctx.now()));
  if (!change) return false;
  // Conditional on the resourceVersion read: a CronTab changed since then is re-read, not overwritten.
  // Status fields we don't own would be dropped by a merge patch of `conditions`; we keep the others in `desiredStatus`.
  await ctx.kube.mergePatch(CRONTABS, ct.metadata.namespace, ct.metadata.name, { metadata: { resourceVersion: ct.metadata.resourceVersion }, status: change }, 'status');
  changes.push('status');
  return true;
}

/** CronTab gone: delete the CronJob kreconcile made for it, if one is left (a cluster's GC does the same). */
async function cleanUp(ctx: ReconcileContext, key: ObjectKey, cj: CronJob | undefined): Promise<Outcome> {
  if (!cj || cj.metadata?.deletionTimestamp) return done();
  const controller = (cj.metadata?.ownerReferences ?? []).find((r) => r.controller);
  const ours = cj.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY && controller?.kind === 'CronTab' && controller.name === key.name;
  if (!ours) return done();
  await ctx.kube.delete(CRONJOBS, key.namespace, key.name, { uid: cj.metadata!.uid, resourceVersion: cj.metadata!.resourceVersion });
  await ctx.events.record({ regarding: cronJobRef(key.namespace, key.name, cj.metadata!.uid), type: 'Normal', reason: 'CronJobDeleted', action: 'Delete', note: `deleted CronJob ${key.name}: its CronTab no longer exists` });
  return done(['cronjob deleted (owner gone)']);
}

export async function reconcileCronTab(ctx: ReconcileContext, key: ObjectKey): Promise<Outcome> {
  // Both reads at once: one round trip of latency. The CronJob read is wasted only for an invalid CronTab.
  const [ct, actual] = await Promise.all([ctx.kube.get<CronTab>(CRONTABS, key.namespace, key.name), ctx.kube.get<CronJob>(CRONJOBS, key.namespace, key.name)]);
  if (!ct) return cleanUp(ctx, key, actual);
  // Being deleted: background GC removes the CronJob; nothing of ours to write.
  if (ct.metadata.deletionTimestamp) return done();
  const changes: string[] = [];

  const problems = specProblems(ct.spec);
  if (problems.length) {
    const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
    // Only the pass that records the problem emits the Event; re-reads of the same invalid spec stay quiet.
    if (await writeStatus(ctx, ct, undefined, { ready: false, reason: 'InvalidSpec', message }, changes)) await ctx.events.record({ regarding: cronTabRef(ct), type: 'Warning', reason: 'InvalidSpec', action: 'Reconcile', note: message });
    return permanent(`invalid spec: ${message}`, changes);
  }

  const step = plan(ct, actual);
  switch (step.op) {
    case 'none':
      await writeStatus(ctx, ct, actual, { ready: true }, changes);
      return done(changes);
    case 'create': {
      // The two reads ran at once, so the CronJob may have been read after the CronTab was deleted
      // and its CronJob garbage-collected. A CronTab read after the CronJob was found missing settles
      // it: a CronTab that still exists never had its CronJob collected, so it never gets a second one.
      const still = await ctx.kube.get<CronTab>(CRONTABS, key.namespace, key.name);
      if (!still || still.metadata.uid !== ct.metadata.uid || still.metadata.deletionTimestamp) return requeue(0, 'the CronTab went away while its CronJob was read', changes);
      const created = await ctx.kube.create<CronJob>(CRONJOBS, key.namespace, step.obj);
      changes.push('cronjob created');
      // The Event and the status are independent writes: one round trip, not two (record never throws).
      await Promise.all([
        ctx.events.record({ regarding: cronTabRef(ct), type: 'Normal', reason: 'CronJobCreated', action: 'Create', note: `created CronJob ${key.name} (schedule "${ct.spec.cronSpec}", image ${ct.spec.image})` }),
        writeStatus(ctx, ct, created, { ready: true }, changes),
      ]);
      return done(changes);
    }
    case 'update': {
      const updated = await ctx.kube.update<CronJob>(CRONJOBS, key.namespace, key.name, step.obj);
      changes.push(`cronjob updated: ${step.changed.join(', ')}`);
      await Promise.all([
        ctx.events.record({ regarding: cronTabRef(ct), type: 'Normal', reason: 'CronJobUpdated', action: 'Update', note: `updated CronJob ${key.name}: ${step.changed.join(', ')}` }),
        writeStatus(ctx, ct, updated, { ready: true }, changes),
      ]);
      return done(changes);
    }
    case 'conflict': {
      if (await writeStatus(ctx, ct, undefined, { ready: false, reason: 'NameConflict', message: step.message }, changes)) await ctx.events.record({ regarding: cronTabRef(ct), type: 'Warning', reason: 'NameConflict', action: 'Reconcile', note: step.message });
      return requeue(CONFLICT_REQUEUE_MS, 'NameConflict', changes);
    }
    case 'deleteOrphan': {
      await ctx.kube.delete(CRONJOBS, key.namespace, step.name, { uid: step.uid, resourceVersion: step.resourceVersion });
      changes.push('orphaned cronjob deleted');
      await ctx.events.record({ regarding: cronJobRef(key.namespace, step.name, step.uid), type: 'Normal', reason: 'CronJobDeleted', action: 'Delete', note: `deleted CronJob ${step.name} left by an earlier CronTab of this name` });
      return requeue(0, 'orphan deleted; create next', changes);
    }
    case 'wait':
      return requeue(DELETING_REQUEUE_MS, step.message, changes);
  }
}
