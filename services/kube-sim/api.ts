// The generic registry: what kube-apiserver does between decoding a request and
// writing to etcd. Every write (HTTP, garbage collector, namespace controller) goes
// through here, so metadata rules, validation, admission and dry-run hold everywhere.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { strategyFor, metaCauses, undeletableNamespace } from './builtins.ts';
import { fromView, toView } from './convert.ts';
import { crdNamesPending, crdResources, crdServes, markCrdTerminating } from './crd.ts';
import { alreadyExists, badRequest, cause, causes, conflict, expired, forbidden, invalid, namespaceNotFound, notFound } from './errors.ts';
import { generationPolicy, ResourceRegistry, storageOf } from './resources.ts';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, type FieldRequirement, type LabelRequirement } from './selectors.ts';
import { objectKey, Store, type StoreEvent } from './store.ts';
import { groupVersion, StatusError, type JSONSchemaProps, type KubeObject, type ManagedFieldsEntry, type ResourceInfo, type StatusCause } from './types.ts';
import { builtinSchema } from './builtin-schemas.ts';
import { pruneDefaultValidate, pruneUnknownFields } from './schema.ts';
import { managerFromRequest, recordUpdate, serverSideApply } from './ssa.ts';
import { rfc3339 } from './validation.ts';

type Obj = Record<string, any>;

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

/** Per-request write settings and the warnings the request collects. */
export interface RequestContext {
  user: UserInfo;
  userAgent?: string;
  dryRun: boolean;
  fieldManager?: string;
  fieldValidation: FieldValidation;
  force?: boolean;
  /** Warnings to return as `Warning: 299` headers. */
  warnings: string[];
  /** Keys the JSON body of a create or update wrote twice: reported with unknown fields, before them. */
  duplicateFields?: string[];
}

export const ADMIN_USER: UserInfo = { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };

export function systemContext(username: string): RequestContext {
  return { user: { username, groups: ['system:serviceaccounts', 'system:authenticated'] }, dryRun: false, fieldValidation: 'Ignore', warnings: [], fieldManager: username.split(':').pop() };
}

export interface AdmissionAttributes {
  operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  resource: ResourceInfo;
  subResource: string;
  name: string;
  namespace: string;
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun: boolean;
  options: Record<string, unknown>;
  userInfo: UserInfo;
}

/** Validating admission (admission.ts); throws StatusError to deny. */
export interface Admission {
  validate(attrs: AdmissionAttributes): Promise<{ warnings: string[] }>;
}

/** Pieces that need the running server (admission calls webhooks found in the store). */
export interface ApiPlugins {
  admission?: Admission;
}

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  orphanDependents?: boolean;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface DeleteResult {
  /** The object as it is now (deleted or marked for deletion). */
  object: KubeObject;
  /** False when finalizers keep it. */
  deleted: boolean;
}

export interface Selectors {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

const GENERATE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
const MAX_FIELD_MANAGER = 128;

export class Api {
  readonly plugins: ApiPlugins = {};
  /** CR creates refused while their CRD terminates: bucket names. */
  private readonly terminatingCrds = new Set<string>();

  constructor(
    readonly store: Store,
    readonly registry: ResourceRegistry,
    readonly now: () => Date = () => new Date(),
  ) {
    // CRDs serve their resources as soon as they are Established (which we set on create).
    store.subscribe(storageOf({ group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' }), (e) => this.onCrdEvent(e));
  }

  // ------------------------------------------------------------------ reads

  get(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject {
    const stored = this.peek(info, namespace, name);
    if (!stored) throw notFound(info, name);
    return toView(info, stored);
  }

  /** The stored object, or undefined. */
  peek(info: ResourceInfo, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.get(storageOf(info), objectKey(info.namespaced ? namespace : undefined, name));
  }

  parseSelectors(info: ResourceInfo, opts: { labelSelector?: string; fieldSelector?: string }): Selectors {
    const supported = new Set(['metadata.name', 'metadata.namespace', ...(info.fieldSelectors ?? [])]);
    return {
      labels: opts.labelSelector ? parseLabelSelector(opts.labelSelector) : [],
      fields: opts.fieldSelector ? parseFieldSelector(opts.fieldSelector, (f) => supported.has(f)) : [],
    };
  }

  /** Whether a stored object is selected (field selectors read the stored form). */
  matches(sel: Selectors, stored: KubeObject): boolean {
    if (sel.labels.length && !matchLabels(sel.labels, stored.metadata.labels)) return false;
    if (sel.fields.length && !matchFields(sel.fields, stored)) return false;
    return true;
  }

  list(info: ResourceInfo, namespace: string | undefined, opts: ListOptions = {}): ListResult {
    const sel = this.parseSelectors(info, opts);
    const bucket = storageOf(info);
    const ns = info.namespaced ? namespace : undefined;
    if (opts.resourceVersionMatch && !opts.resourceVersion)
      throw invalid({ group: 'meta.k8s.io', kind: 'ListOptions' }, '', [causes.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided')]);
    if (opts.resourceVersionMatch && !['Exact', 'NotOlderThan'].includes(opts.resourceVersionMatch))
      throw invalid({ group: 'meta.k8s.io', kind: 'ListOptions' }, '', [causes.notSupported('resourceVersionMatch', opts.resourceVersionMatch, ['Exact', 'NotOlderThan'])]);
    const current = this.store.currentRevision;
    let snapshot = current;
    let from: string | undefined;
    let served = 0;
    if (opts.continue) {
      if (opts.resourceVersion && opts.resourceVersion !== '0') throw badRequest('specifying resource version is not allowed when using continue');
      const token = decodeContinue(opts.continue);
      if (token.rv < this.store.oldestAvailableRevision)
        throw expired(
          'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.',
        );
      snapshot = token.rv;
      from = token.start;
      served = token.served ?? 0;
    } else if (opts.resourceVersion && opts.resourceVersion !== '0') {
      const rv = parseResourceVersion(opts.resourceVersion);
      if (rv > current)
        throw new StatusError(504, 'Timeout', `Timeout: Too large resource version: ${rv}, current: ${current}`, { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: 1 });
      if (opts.resourceVersionMatch === 'Exact') {
        this.store.assertAvailable(rv);
        snapshot = rv;
      }
    }
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const items: KubeObject[] = [];
    let lastKey: string | undefined;
    let more = false;
    for (const [key, obj] of this.store.range(bucket, { namespace: ns, from, atRevision: snapshot })) {
      if (!this.matches(sel, obj)) continue;
      if (items.length >= limit) {
        more = true;
        break;
      }
      items.push(toView(info, obj));
      lastKey = key;
    }
    const result: ListResult = { items, resourceVersion: String(snapshot) };
    if (more && lastKey !== undefined) {
      result.continue = encodeContinue({ rv: snapshot, start: `${lastKey}\u0000`, served: served + items.length });
      if (!sel.labels.length && !sel.fields.length) result.remainingItemCount = Math.max(0, this.store.countAt(bucket, ns, snapshot) - served - items.length);
    }
    return result;
  }

  // ------------------------------------------------------------------ writes

  async create(
    ctx: RequestContext,
    info: ResourceInfo,
    namespace: string | undefined,
    body: unknown,
    subresource = '',
    opts: { managedFields?: ManagedFieldsEntry[] } = {},
  ): Promise<KubeObject> {
    if (subresource) throw new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
    const obj = fromView(info, this.decodeObject(info, body));
    const meta = obj.metadata;
    this.checkNamespace(info, namespace, meta);
    if (!meta.name && meta.generateName) meta.name = meta.generateName + randomSuffix();
    const name = meta.name ?? '';
    const now = this.now();
    if (info.namespaced) this.requireLiveNamespace(info, namespace!, name);
    if (this.terminatingCrds.has(storageOf(info)))
      throw new StatusError(405, 'MethodNotAllowed', `create not allowed while custom resource definition is terminating`, {});
    // Fields only the server sets.
    meta.uid = randomUUID();
    meta.creationTimestamp = rfc3339(now);
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    if (generationPolicy(info) !== 'none') meta.generation = 1;
    else delete meta.generation;
    if (info.statusSubresource && !info.builtin) delete obj.status;
    const result = this.prepare(ctx, info, obj, undefined, now);
    setManagedFields(result, opts.managedFields ?? this.managedFieldsFor(ctx, info, undefined, result, '', now));
    await this.admit(ctx, info, 'CREATE', '', result, null, name, namespace);
    const bucket = storageOf(info);
    const key = objectKey(info.namespaced ? namespace : undefined, name);
    if (this.store.get(bucket, key)) throw alreadyExists(info, name);
    // Admission may have waited on webhooks: the namespace may have started terminating meanwhile.
    if (info.namespaced) this.requireLiveNamespace(info, namespace!, name);
    if (ctx.dryRun) return toView(info, result);
    this.store.commit(bucket, key, result);
    return toView(info, result);
  }

  /** PUT: the whole object, optimistic concurrency on metadata.resourceVersion. */
  async update(ctx: RequestContext, info: ResourceInfo, namespace: string | undefined, name: string, body: unknown, subresource = ''): Promise<KubeObject> {
    const obj = fromView(info, this.decodeObject(info, body));
    this.checkNamespace(info, namespace, obj.metadata);
    if (obj.metadata.name !== name) throw badRequest(`the name of the object (${obj.metadata.name ?? ''}) does not match the name on the URL (${name})`);
    const old = this.peek(info, namespace, name);
    if (!old) throw notFound(info, name);
    if (!obj.metadata.resourceVersion && !info.builtin)
      throw invalid(info, name, [cause('FieldValueInvalid', 'metadata.resourceVersion', 'Invalid value: 0x0: must be specified for an update')]);
    return this.writeUpdate(ctx, info, old, obj, subresource);
  }

  /**
   * The update path shared by PUT, PATCH and controllers: `obj` is the desired stored-form
   * object; its resourceVersion, when set, is a precondition.
   */
  async writeUpdate(
    ctx: RequestContext,
    info: ResourceInfo,
    old: KubeObject,
    obj: KubeObject,
    subresource = '',
    opts: { managedFields?: ManagedFieldsEntry[] } = {},
  ): Promise<KubeObject> {
    const name = old.metadata.name!;
    const namespace = old.metadata.namespace;
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== old.metadata.resourceVersion) throw conflict(info, name);
    if (obj.metadata.uid && obj.metadata.uid !== old.metadata.uid)
      throw conflict(info, name, `Precondition failed: UID in precondition: ${obj.metadata.uid}, UID in object meta: ${old.metadata.uid}`);
    const now = this.now();
    let next: KubeObject;
    if (subresource === 'status') {
      // Only status moves through /status; everything else stays as stored.
      next = { ...structuredClone(old), status: structuredClone(obj.status) };
      if (obj.status === undefined) delete next.status;
    } else if (subresource === 'finalize') {
      next = { ...structuredClone(old), spec: { ...(old.spec as Obj), finalizers: (obj.spec as Obj | undefined)?.finalizers ?? [] } };
    } else if (subresource) {
      throw notFound(info, name);
    } else {
      next = structuredClone(obj);
      if (info.statusSubresource) {
        if (old.status === undefined) delete next.status;
        else next.status = structuredClone(old.status);
      }
    }
    // Server-owned metadata never changes through an update.
    const meta = next.metadata;
    const oldMeta = old.metadata;
    meta.name = oldMeta.name;
    if (info.namespaced) meta.namespace = oldMeta.namespace;
    else delete meta.namespace;
    meta.uid = oldMeta.uid;
    meta.creationTimestamp = oldMeta.creationTimestamp;
    meta.resourceVersion = oldMeta.resourceVersion;
    for (const f of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (oldMeta[f] === undefined) delete meta[f];
      else (meta as Obj)[f] = oldMeta[f];
    }
    if (meta.generateName === undefined && oldMeta.generateName !== undefined) meta.generateName = oldMeta.generateName;
    if (oldMeta.deletionTimestamp) {
      const added = (meta.finalizers ?? []).filter((f) => !(oldMeta.finalizers ?? []).includes(f));
      if (added.length)
        throw invalid(info, name, [
          causes.forbidden('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`),
        ]);
    }
    const result = this.prepare(ctx, info, next, old, now, subresource);
    // generation follows the kind's rule
    const policy = generationPolicy(info);
    if (policy !== 'none' && specChanged(policy, old, result)) result.metadata.generation = (oldMeta.generation ?? 0) + 1;
    setManagedFields(result, opts.managedFields ?? this.managedFieldsFor(ctx, info, old, result, subresource, now));
    // A write that changes nothing (managedFields times aside) stores nothing and emits no event.
    if (sameObject(old, result)) return toView(info, old);
    await this.admit(ctx, info, 'UPDATE', subresource, result, old, name, namespace);
    this.assertUnchangedSince(info, old);
    if (ctx.dryRun) return toView(info, result);
    const bucket = storageOf(info);
    const key = objectKey(namespace, name);
    if (result.metadata.deletionTimestamp && readyToRemove(result)) {
      const e = this.store.commit(bucket, key, undefined);
      return toView(info, e.object);
    }
    this.store.commit(bucket, key, result);
    return toView(info, result);
  }

  async delete(ctx: RequestContext, info: ResourceInfo, namespace: string | undefined, name: string, opts: DeleteOptions = {}): Promise<DeleteResult> {
    const old = this.peek(info, namespace, name);
    if (!old) throw notFound(info, name);
    const pre = opts.preconditions ?? {};
    if (pre.uid && pre.uid !== old.metadata.uid)
      throw conflict(info, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    if (pre.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
      throw conflict(info, name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    if (info.group === '' && info.resource === 'namespaces' && undeletableNamespace(name)) throw forbidden(info, name, 'this namespace may not be deleted');
    const policy = opts.propagationPolicy ?? (opts.orphanDependents === true ? 'Orphan' : 'Background');
    if (!['Background', 'Foreground', 'Orphan'].includes(policy))
      throw invalid({ group: 'meta.k8s.io', kind: 'DeleteOptions' }, '', [causes.notSupported('propagationPolicy', policy, ['Foreground', 'Background', 'Orphan', 'nil'])]);
    await this.admit(ctx, info, 'DELETE', '', null, old, name, namespace);
    this.assertUnchangedSince(info, old);
    const bucket = storageOf(info);
    const key = objectKey(info.namespaced ? namespace : undefined, name);
    const finalizers = [...(old.metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion');
    if (policy === 'Orphan' && !finalizers.includes('orphan')) finalizers.push('orphan');
    const isNamespace = info.group === '' && info.resource === 'namespaces';
    if (old.metadata.deletionTimestamp) {
      // Already terminating: only a new GC finalizer changes anything.
      if (finalizers.length === (old.metadata.finalizers ?? []).length) return { object: toView(info, old), deleted: false };
      const next = structuredClone(old);
      next.metadata.finalizers = finalizers;
      if (!ctx.dryRun) this.store.commit(bucket, key, next);
      return { object: toView(info, next), deleted: false };
    }
    if (finalizers.length || isNamespace) {
      const next = structuredClone(old);
      const now = this.now();
      next.metadata.deletionTimestamp = rfc3339(now);
      next.metadata.deletionGracePeriodSeconds = 0;
      if (finalizers.length) next.metadata.finalizers = finalizers;
      if (next.metadata.generation !== undefined) next.metadata.generation++;
      if (isNamespace) next.status = { ...((next.status as Obj) ?? {}), phase: 'Terminating' };
      if (info.group === 'apiextensions.k8s.io' && info.kind === 'CustomResourceDefinition') markCrdTerminating(next, now);
      if (!ctx.dryRun) this.store.commit(bucket, key, next);
      return { object: toView(info, next), deleted: false };
    }
    if (ctx.dryRun) return { object: toView(info, old), deleted: true };
    const e = this.store.commit(bucket, key, undefined);
    return { object: toView(info, e.object), deleted: true };
  }

  /**
   * Server-side apply (`application/apply-patch+yaml`): merge with field ownership; creates
   * the object when absent (201).
   */
  async apply(ctx: RequestContext, info: ResourceInfo, namespace: string | undefined, name: string, body: unknown, subresource = ''): Promise<{ object: KubeObject; created: boolean }> {
    const applied = this.decodeObject(info, body);
    if (applied.metadata.name && applied.metadata.name !== name)
      throw badRequest(`the name of the object (${applied.metadata.name}) does not match the name on the URL (${name})`);
    this.checkNamespace(info, namespace, applied.metadata);
    const manager = managerName(ctx);
    const live = this.peek(info, namespace, name);
    const args = {
      applied,
      manager,
      force: !!ctx.force,
      apiVersion: groupVersion(info),
      now: rfc3339(this.now()),
      subresource: subresource || undefined,
      statusSubresource: info.statusSubresource,
      schema: info.schema,
    };
    if (!live) {
      if (subresource) throw notFound(info, name);
      const { object } = serverSideApply({ ...args, live: undefined });
      object.metadata = { ...object.metadata, name, ...(info.namespaced ? { namespace } : {}) };
      const created = await this.create(ctx, info, namespace, object, '', { managedFields: object.metadata.managedFields });
      return { object: created, created: true };
    }
    const { object } = serverSideApply({ ...args, live: toView(info, live) });
    const updated = await this.writeUpdate(ctx, info, live, fromView(info, object), subresource, { managedFields: object.metadata.managedFields ?? [] });
    return { object: updated, created: false };
  }

  /** deletecollection: every selected object, each through the normal delete. */
  async deleteCollection(ctx: RequestContext, info: ResourceInfo, namespace: string | undefined, listOpts: ListOptions, opts: DeleteOptions): Promise<KubeObject[]> {
    const { items } = this.list(info, namespace, { labelSelector: listOpts.labelSelector, fieldSelector: listOpts.fieldSelector });
    const out: KubeObject[] = [];
    for (const item of items) {
      try {
        out.push((await this.delete(ctx, info, item.metadata.namespace, item.metadata.name!, opts)).object);
      } catch (err) {
        if (!(err instanceof StatusError && err.code === 404)) throw err;
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ helpers

  /** Body → object of this resource's type, or 400 naming what is wrong. */
  decodeObject(info: ResourceInfo, body: unknown): KubeObject {
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      throw badRequest(`the object provided is unrecognized (must be of type ${info.kind}): couldn't get version/kind; json parse error: expected an object`);
    const obj = structuredClone(body) as Obj;
    const gv = groupVersion(info);
    if (obj.kind === undefined && obj.apiVersion === undefined && info.builtin) {
      obj.apiVersion = gv;
      obj.kind = info.kind;
    }
    if (!obj.kind) throw badRequest(`Object 'Kind' is missing in '${truncate(JSON.stringify(body))}'`);
    if (!obj.apiVersion) throw badRequest(`Object 'apiVersion' is missing in '${truncate(JSON.stringify(body))}'`);
    if (obj.apiVersion !== gv) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`);
    if (obj.kind !== info.kind) throw badRequest(`the kind in the data (${obj.kind}) does not match the expected kind (${info.kind}) for ${gv}`);
    obj.metadata ??= {};
    const m = obj.metadata;
    const asGo = (field: string, goType: string) =>
      badRequest(`${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: json: cannot unmarshal ${jsonType(m[field])} into Go struct field ObjectMeta.metadata.${field} of type ${goType}`);
    if (typeof m !== 'object' || Array.isArray(m)) throw badRequest(`${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: json: cannot unmarshal ${jsonType(m)} into Go struct field ${info.kind}.metadata of type v1.ObjectMeta`);
    for (const f of ['name', 'generateName', 'namespace', 'resourceVersion', 'uid'])
      if (m[f] !== undefined && m[f] !== null && typeof m[f] !== 'string') throw asGo(f, 'string');
    for (const f of ['labels', 'annotations']) {
      if (m[f] === null) delete m[f];
      else if (m[f] !== undefined && (typeof m[f] !== 'object' || Array.isArray(m[f]) || Object.values(m[f]).some((v) => typeof v !== 'string'))) throw asGo(f, 'map[string]string');
    }
    if (m.finalizers === null) delete m.finalizers;
    else if (m.finalizers !== undefined && (!Array.isArray(m.finalizers) || m.finalizers.some((f: unknown) => typeof f !== 'string'))) throw asGo('finalizers', '[]string');
    if (m.ownerReferences === null) delete m.ownerReferences;
    else if (m.ownerReferences !== undefined && !Array.isArray(m.ownerReferences)) throw asGo('ownerReferences', '[]v1.OwnerReference');
    for (const k of Object.keys(m)) if (m[k] === null) delete m[k];
    strategyFor(info).decode?.(obj as KubeObject, info);
    // Serialise as kube-apiserver does: apiVersion, kind, metadata, then the rest.
    const { apiVersion, kind, metadata, ...rest } = obj;
    return { apiVersion, kind, metadata, ...rest } as KubeObject;
  }

  /**
   * Webhook calls are awaited between reading an object and writing it back: if someone else
   * wrote it meanwhile, this write must not overwrite theirs. Callers retry (retryConcurrent).
   */
  private assertUnchangedSince(info: ResourceInfo, old: KubeObject): void {
    const current = this.peek(info, old.metadata.namespace, old.metadata.name!);
    if (current?.metadata.resourceVersion !== old.metadata.resourceVersion) throw new ConcurrentModification(info, old.metadata.name!);
  }

  /** Runs a read-modify-write again when it lost a race with another writer (as kube-apiserver's GuaranteedUpdate does). */
  async retryConcurrent<T>(fn: () => Promise<T>, attempts = 5): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof ConcurrentModification) || i >= attempts) throw err;
      }
    }
  }

  /** A patched object (in the view's form) → stored form, with the same decode checks as a PUT body. */
  decodeForPatch(info: ResourceInfo, patched: unknown): KubeObject {
    return fromView(info, this.decodeObject(info, patched));
  }

  private checkNamespace(info: ResourceInfo, namespace: string | undefined, meta: Obj): void {
    if (info.namespaced) {
      if (meta.namespace && meta.namespace !== namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = namespace;
    } else {
      delete meta.namespace;
    }
  }

  private requireLiveNamespace(info: ResourceInfo, namespace: string, name: string): void {
    const ns = this.store.get('namespaces', namespace);
    if (!ns) throw namespaceNotFound(namespace);
    if (ns.metadata.deletionTimestamp) {
      const err = forbidden(info, name, `unable to create new content in namespace ${namespace} because it is being terminated`);
      err.details!.causes = [{ reason: 'NamespaceTerminating', message: `namespace ${namespace} is being terminated`, field: 'metadata.namespace' }];
      throw err;
    }
  }

  /** Defaults, schema, validation and unknown-field handling: the object as it would be stored. */
  private prepare(ctx: RequestContext, info: ResourceInfo, obj: KubeObject, old: KubeObject | undefined, now: Date, subresource = ''): KubeObject {
    const strategy = strategyFor(info);
    const name = obj.metadata.name ?? '';
    let result = obj;
    const problems: StatusCause[] = [];
    let unknown: string[] = [];
    if (!info.builtin && info.schema) {
      const out = pruneDefaultValidate(result, info.schema, { fieldValidation: ctx.fieldValidation, old });
      result = out.object;
      problems.push(...out.causes);
      unknown = out.unknownFields;
    } else if (info.builtin) {
      const schema = schemaOfBuiltin(info);
      if (schema) {
        const out = pruneUnknownFields(result, schema);
        result = out.object;
        unknown = out.unknownFields;
      }
    }
    const duplicates = ctx.duplicateFields ?? [];
    if ((duplicates.length || unknown.length) && ctx.fieldValidation !== 'Ignore') {
      // The decoder meets duplicates first; unknown fields come from the schema after it.
      const list = [...duplicates.map((f) => `duplicate field "${f}"`), ...unknown.map((f) => `unknown field "${f}"`)];
      if (ctx.fieldValidation === 'Strict') throw badRequest(`strict decoding error: ${list.join(', ')}`);
      if (ctx.fieldValidation === 'Warn') for (const w of list) if (!ctx.warnings.includes(w)) ctx.warnings.push(w);
    }
    const peers = () => [...this.store.range(storageOf(info))].map(([, o]) => o).filter((o) => o.metadata.name !== result.metadata.name);
    strategy.normalize?.(result, { info, now, old, subresource, peers });
    problems.unshift(...metaCauses(result, info));
    problems.push(...(strategy.validate?.(result, { info, now, old, subresource }) ?? []));
    if (problems.length) throw invalid(info, name, problems);
    return result;
  }

  private async admit(
    ctx: RequestContext,
    info: ResourceInfo,
    operation: AdmissionAttributes['operation'],
    subResource: string,
    object: KubeObject | null,
    oldObject: KubeObject | null,
    name: string,
    namespace: string | undefined,
  ): Promise<void> {
    const admission = this.plugins.admission;
    if (!admission) return;
    const optionsKind = operation === 'CREATE' ? 'CreateOptions' : operation === 'UPDATE' ? 'UpdateOptions' : 'DeleteOptions';
    const options: Obj = { kind: optionsKind, apiVersion: 'meta.k8s.io/v1' };
    if (ctx.fieldManager && operation !== 'DELETE') options.fieldManager = ctx.fieldManager;
    if (ctx.dryRun) options.dryRun = ['All'];
    const { warnings } = await admission.validate({
      operation,
      resource: info,
      subResource,
      name,
      namespace: info.namespaced ? (namespace ?? '') : '',
      object: object ? toView(info, object) : null,
      oldObject: oldObject ? toView(info, oldObject) : null,
      dryRun: ctx.dryRun,
      options,
      userInfo: ctx.user,
    });
    ctx.warnings.push(...warnings);
  }

  /** managedFields after this write: the field manager's own tracking, or a plain entry. */
  private managedFieldsFor(ctx: RequestContext, info: ResourceInfo, old: KubeObject | undefined, updated: KubeObject, subresource: string, now: Date): ManagedFieldsEntry[] {
    const manager = managerName(ctx);
    const apiVersion = groupVersion(info);
    return recordUpdate({
      live: old,
      updated,
      manager,
      operation: 'Update',
      subresource: subresource || undefined,
      apiVersion,
      now: rfc3339(now),
      schema: info.schema,
    });
  }

  /** The naming controller's second look: CRDs of `group` waiting for names are written again, their status recomputed. */
  private async recheckPendingCrds(group: unknown): Promise<void> {
    const bucket = storageOf({ group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' });
    const crdInfo = this.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
    if (!crdInfo) return;
    const waiting = [...this.store.range(bucket)].map(([, o]) => o).filter((o) => (o as Obj).spec?.group === group && crdNamesPending(o));
    for (const crd of waiting) {
      await this.writeUpdate(systemContext('system:serviceaccount:kube-system:apiextensions-naming-controller'), crdInfo, crd, structuredClone(crd), 'status').catch(() => {
        // Changed or gone meanwhile: its own write event brings the next look.
      });
    }
  }

  private onCrdEvent(e: StoreEvent): void {
    const crd = e.object;
    const spec = (crd as Obj).spec ?? {};
    const prevSpec = (e.prev as Obj | undefined)?.spec;
    const bucket = `${spec.names?.plural}.${spec.group}`;
    const before = new Map<string, ResourceInfo>();
    if (prevSpec) {
      for (const r of this.registry.all()) if (r.group === prevSpec.group && r.resource === prevSpec.names?.plural) before.set(r.version, r);
      this.registry.unregister(prevSpec.group, prevSpec.names?.plural);
    }
    // A CRD that went, or changed its names, may free names another CRD of its group waits for.
    if (!crdNamesPending(crd)) void this.recheckPendingCrds(spec.group);
    if (e.type === 'DELETED') {
      this.terminatingCrds.delete(bucket);
      return;
    }
    if (crd.metadata.deletionTimestamp) this.terminatingCrds.add(bucket);
    if (!crdServes(crd)) return;
    const { resources, preferredVersion } = crdResources(crd);
    for (const r of resources) {
      // Objects stored before a schema change get its defaults when read (as apiextensions does).
      const was = before.get(r.version);
      r.schemaRevision = was && isDeepStrictEqual(was.schema, r.schema) ? was.schemaRevision : e.rv;
      this.registry.register(r, preferredVersion);
    }
  }
}

/** A write that lost a race with another writer after admission; retried by the caller. */
export class ConcurrentModification extends StatusError {
  constructor(info: ResourceInfo, name: string) {
    const c = conflict(info, name);
    super(c.code, c.reason, c.message, c.details);
  }
}

/** Managed-by name: the fieldManager parameter, else the User-Agent up to its first '/'. */
export function managerName(ctx: Pick<RequestContext, 'fieldManager' | 'userAgent'>): string {
  return managerFromRequest(ctx.fieldManager, ctx.userAgent) || 'unknown';
}

/** The options object a write's query parameters decode into; errors about them name it. */
export type WriteOptionsKind = 'CreateOptions' | 'UpdateOptions' | 'PatchOptions' | 'DeleteOptions';

export function validateFieldManager(m: string | undefined, options: WriteOptionsKind = 'PatchOptions'): void {
  if (m !== undefined && m.length > MAX_FIELD_MANAGER)
    throw invalid({ group: 'meta.k8s.io', kind: options }, '', [causes.tooLong('fieldManager', MAX_FIELD_MANAGER)]);
}

function readyToRemove(obj: KubeObject): boolean {
  if ((obj.metadata.finalizers ?? []).length) return false;
  const specFinalizers = (obj.spec as Obj | undefined)?.finalizers;
  return !(obj.kind === 'Namespace' && Array.isArray(specFinalizers) && specFinalizers.length);
}

let builtinSchemasMissing = false;

/**
 * The built-in kind's schema, or undefined when the schema sources (kubernetes-models and the
 * TypeScript compiler, dev dependencies) are not installed: then unknown fields pass through.
 */
function schemaOfBuiltin(info: ResourceInfo): JSONSchemaProps | undefined {
  if (builtinSchemasMissing) return undefined;
  try {
    // Objects reach prepare() in stored form, and events.k8s.io Events are stored as core v1 Events.
    if (info.group === 'events.k8s.io' && info.resource === 'events') return builtinSchema('', 'v1', 'Event');
    return builtinSchema(info.group, info.version, info.kind);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
    builtinSchemasMissing = true;
    return undefined;
  }
}

function setManagedFields(obj: KubeObject, entries: ManagedFieldsEntry[]): void {
  if (entries.length) obj.metadata.managedFields = entries;
  else delete obj.metadata.managedFields;
}

/** Equal apart from what every write changes (resourceVersion, managedFields times). */
function sameObject(a: KubeObject, b: KubeObject): boolean {
  const strip = (o: KubeObject) => ({
    ...o,
    metadata: { ...o.metadata, resourceVersion: undefined, managedFields: (o.metadata.managedFields ?? []).map(({ time: _t, ...rest }) => rest) },
  });
  return isDeepStrictEqual(strip(a), strip(b));
}

function specChanged(policy: ReturnType<typeof generationPolicy>, old: KubeObject, next: KubeObject): boolean {
  if (policy === 'spec') return !isDeepStrictEqual(old.spec, next.spec);
  const rest = (o: KubeObject) => {
    const { metadata: _m, status, ...others } = o;
    return policy === 'nonMetadata' ? { ...others, status } : others;
  };
  return !isDeepStrictEqual(rest(old), rest(next));
}

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_ALPHABET[Math.floor(Math.random() * GENERATE_ALPHABET.length)];
  return s;
}

function truncate(s: string, n = 256): string {
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

export function parseResourceVersion(s: string): number {
  if (!/^\d+$/.test(s)) throw badRequest(`invalid resource version "${s}": strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax`);
  return Number(s);
}

interface ContinueToken {
  rv: number;
  start: string;
  served?: number;
}

function encodeContinue(t: ContinueToken): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: t.rv, start: t.start, n: t.served })).toString('base64url');
}

function decodeContinue(s: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
    if (t.v !== 'meta.k8s.io/v1' || typeof t.rv !== 'number' || typeof t.start !== 'string') throw new Error('bad token');
    return { rv: t.rv, start: t.start, served: typeof t.n === 'number' ? t.n : undefined };
  } catch {
    throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
  }
}

