// Server-side apply and field ownership (`metadata.managedFields`), contract §3 and §4.
//
// A field set is a set of paths to the fields a manager owns. Paths go through maps by field
// name (`f:spec`), through associative lists by the item's key (`k:{"name":"app"}`), and
// through set lists by value (`v:"a"`). Other lists are atomic: owned as one field.
// Invariants kept here, as structured-merge-diff keeps them:
// - a manager's Apply entry owns exactly the fields of its last applied configuration;
// - any write takes the fields it changes away from every other manager;
// - apply never silently overwrites a value another manager owns: that is a conflict,
//   unless `force`, which moves ownership to the applier;
// - a field the applier stops applying is removed only if nobody else owns it.
// Identity and bookkeeping fields (apiVersion, kind, metadata.name/namespace/uid/
// resourceVersion/generation/creationTimestamp/managedFields…) are never owned.
import type { JSONSchemaProps, KubeObject, ManagedFieldsEntry } from './types.ts';
import { StatusError } from './types.ts';

type Json = unknown;
type PathElement = { f: string } | { k: Record<string, Json> } | { v: Json };
type FieldPath = PathElement[];

/** A set of field paths, keyed by their fieldsV1 spelling so equal paths collide. */
class FieldSet {
  readonly paths = new Map<string, FieldPath>();

  static of(paths: Iterable<FieldPath>): FieldSet {
    const s = new FieldSet();
    for (const p of paths) s.add(p);
    return s;
  }
  /** From path keys (pathKey's spelling), parsing each element once. */
  static fromKeys(keys: Iterable<string>): FieldSet {
    const s = new FieldSet();
    for (const key of keys) s.paths.set(key, key.split(SEP).map((e) => parseElementKey(e)!));
    return s;
  }
  add(p: FieldPath): void { this.paths.set(pathKey(p), p); }
  has(p: FieldPath): boolean { return this.paths.has(pathKey(p)); }
  delete(p: FieldPath): void { this.paths.delete(pathKey(p)); }
  get size(): number { return this.paths.size; }
  values(): FieldPath[] { return [...this.paths.values()]; }
  union(o: FieldSet): FieldSet { return FieldSet.of([...this.values(), ...o.values()]); }
  minus(o: FieldSet): FieldSet { return FieldSet.of(this.values().filter((p) => !o.has(p))); }
  /** True when some path of this set is `prefix` or lies below it. */
  hasUnder(prefix: FieldPath): boolean {
    const k = pathKey(prefix);
    for (const key of this.paths.keys()) if (key === k || key.startsWith(k + SEP)) return true;
    return false;
  }
}

const SEP = '\u0000';

function sortedKeyObject(o: Record<string, Json>): Record<string, Json> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

function elementKey(e: PathElement): string {
  if ('f' in e) return `f:${e.f}`;
  if ('k' in e) return `k:${JSON.stringify(sortedKeyObject(e.k))}`;
  return `v:${JSON.stringify(e.v)}`;
}

function pathKey(p: FieldPath): string {
  return p.map(elementKey).join(SEP);
}

function parseElementKey(s: string): PathElement | undefined {
  if (s.startsWith('f:')) return { f: s.slice(2) };
  try {
    if (s.startsWith('k:')) return { k: JSON.parse(s.slice(2)) as Record<string, Json> };
    if (s.startsWith('v:')) return { v: JSON.parse(s.slice(2)) };
  } catch {
    return undefined;
  }
  return undefined; // `i:` (index) paths are never produced here
}

/** How structured-merge-diff prints a path: `.spec.containers[name="app"].image`. */
export function formatFieldPath(p: FieldPath): string {
  return p.map((e) => {
    if ('f' in e) return `.${e.f}`;
    if ('k' in e) return `[${Object.entries(sortedKeyObject(e.k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    return `[=${JSON.stringify(e.v)}]`;
  }).join('');
}

// ---- fieldsV1 <-> FieldSet ------------------------------------------------

export function fieldSetToFieldsV1(set: FieldSet): Record<string, unknown> {
  // A FieldSet is keyed by the fieldsV1 spelling of each path.
  return keysToFieldsV1(set.paths.keys());
}

export function fieldsV1ToFieldSet(tree: unknown): FieldSet {
  return FieldSet.fromKeys(fieldsV1Keys(tree));
}

/** Sorted keys, and a path with nothing below it spelled `{}`, not `{".":{}}`. */
function tidyFieldsV1(node: Record<string, any>): Record<string, any> {
  const keys = Object.keys(node).filter((k) => k !== '.');
  if (keys.length === 0) return {};
  const out: Record<string, any> = {};
  if ('.' in node) out['.'] = {};
  for (const k of keys.sort()) out[k] = tidyFieldsV1(node[k]);
  return out;
}

// ---- list types -------------------------------------------------------------

type ListType = { type: 'atomic' } | { type: 'map'; keys: string[] } | { type: 'set' };

/** Lists of built-in kinds that kube-apiserver merges by key (`patchMergeKey` / `listMapKeys`). */
const BUILTIN_LIST_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  imagePullSecrets: ['name'],
  volumeMounts: ['mountPath'],
  conditions: ['type'],
  ownerReferences: ['uid'],
  webhooks: ['name'],
};

function schemaAt(schema: JSONSchemaProps | undefined, fieldNames: (string | number)[]): JSONSchemaProps | undefined {
  let s = schema;
  for (const f of fieldNames) {
    if (!s) return undefined;
    if (typeof f === 'number') s = s.items;
    else s = s.properties?.[f] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
  }
  return s;
}

interface Ctx {
  /** CRD schema; when given, lists follow its `x-kubernetes-list-type`, else built-in rules. */
  schema?: JSONSchemaProps;
}

function listTypeOf(ctx: Ctx, fieldNames: (string | number)[], items: Json[]): ListType {
  const isObj = (x: Json) => !!x && typeof x === 'object' && !Array.isArray(x);
  const keyed = (keys: string[]): ListType =>
    items.every((it) => isObj(it) && keys.every((k) => isScalar((it as Record<string, Json>)[k])))
      ? { type: 'map', keys }
      : { type: 'atomic' };
  if (ctx.schema) {
    const s = schemaAt(ctx.schema, fieldNames);
    const lt = s?.['x-kubernetes-list-type'];
    if (lt === 'map' && Array.isArray(s?.['x-kubernetes-list-map-keys'])) return keyed(s!['x-kubernetes-list-map-keys'] as string[]);
    if (lt === 'set') return items.every(isScalar) ? { type: 'set' } : { type: 'atomic' };
    // Fall through for metadata, which CRD schemas never describe.
    if (fieldNames[0] !== 'metadata') return { type: 'atomic' };
  }
  const last = fieldNames[fieldNames.length - 1];
  if (fieldNames.length === 2 && fieldNames[0] === 'metadata' && last === 'finalizers') return items.every(isScalar) ? { type: 'set' } : { type: 'atomic' };
  const keys = typeof last === 'string' ? BUILTIN_LIST_KEYS[last] : undefined;
  return keys ? keyed(keys) : { type: 'atomic' };
}

function isScalar(x: Json): boolean {
  return x === null || ['string', 'number', 'boolean'].includes(typeof x);
}

function isMap(x: Json): x is Record<string, Json> {
  return !!x && typeof x === 'object' && !Array.isArray(x);
}

function keyOf(item: Record<string, Json>, keys: string[]): Record<string, Json> {
  return Object.fromEntries(keys.map((k) => [k, item[k]]));
}

function matchesKey(item: Json, key: Record<string, Json>): boolean {
  return isMap(item) && Object.entries(key).every(([k, v]) => deepEqual(item[k], v));
}

export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

const STRIPPED_META = new Set([
  'name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'generateName',
]);

/** Whether a top-level field takes part in ownership for this write. */
type TopFilter = (field: string) => boolean;

function topFilter(subresource: string | undefined, statusSubresource: boolean | undefined): TopFilter {
  if (subresource === 'status') return (f) => f === 'status';
  if (statusSubresource) return (f) => f !== 'status';
  return () => true;
}

/** The leaf field paths of an object: what a write of it would own. */
function fieldsOf(obj: Json, ctx: Ctx, filter: TopFilter): FieldSet {
  return FieldSet.fromKeys(leafValues(obj, ctx, filter).keys());
}

const NOT_FOUND = Symbol('not found');

function getAt(obj: Json, path: FieldPath): Json | typeof NOT_FOUND {
  let cur: Json = obj;
  for (const e of path) {
    if ('f' in e) {
      if (!isMap(cur) || !Object.hasOwn(cur, e.f)) return NOT_FOUND;
      cur = cur[e.f];
    } else if ('k' in e) {
      if (!Array.isArray(cur)) return NOT_FOUND;
      const found = cur.find((it) => matchesKey(it, e.k));
      if (found === undefined) return NOT_FOUND;
      cur = found;
    } else {
      if (!Array.isArray(cur)) return NOT_FOUND;
      const i = cur.findIndex((it) => deepEqual(it, e.v));
      if (i < 0) return NOT_FOUND;
      cur = cur[i];
    }
  }
  return cur;
}

function removeAt(obj: Json, path: FieldPath): void {
  if (path.length === 0) return;
  const parent = getAt(obj, path.slice(0, -1));
  const last = path[path.length - 1]!;
  if ('f' in last) {
    if (isMap(parent)) delete parent[last.f];
  } else if (Array.isArray(parent)) {
    const i = 'k' in last ? parent.findIndex((it) => matchesKey(it, last.k)) : parent.findIndex((it) => deepEqual(it, last.v));
    if (i >= 0) parent.splice(i, 1);
  }
}

function dropNulls(x: Json): Json {
  if (Array.isArray(x)) return x.map(dropNulls);
  if (isMap(x)) return Object.fromEntries(Object.entries(x).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => [k, dropNulls(v)]));
  return x;
}

/** Merge `applied` into `live` (both already cloned), maps field by field, keyed lists item by item. */
function mergeInto(live: Json, applied: Json, ctx: Ctx, names: (string | number)[]): Json {
  if (isMap(applied)) {
    const out: Record<string, Json> = isMap(live) ? live : {};
    for (const [k, v] of Object.entries(applied)) if (v !== undefined) out[k] = mergeInto(out[k], v, ctx, [...names, k]);
    return out;
  }
  if (Array.isArray(applied)) {
    const lt = listTypeOf(ctx, names, applied);
    if (lt.type === 'atomic' || !Array.isArray(live)) return applied;
    if (lt.type === 'set') {
      const out = [...live];
      for (const v of applied) if (!out.some((x) => deepEqual(x, v))) out.push(v);
      return out;
    }
    const out = [...live];
    for (const item of applied as Record<string, Json>[]) {
      const key = keyOf(item, lt.keys);
      const i = out.findIndex((x) => matchesKey(x, key));
      if (i >= 0) out[i] = mergeInto(out[i], item, ctx, [...names, 0]);
      else out.push(item);
    }
    return out;
  }
  return applied;
}

// ---- managed fields bookkeeping ---------------------------------------------

interface Manager {
  entry: ManagedFieldsEntry;
  set: FieldSet;
}

function sameIdentity(a: ManagedFieldsEntry, b: Pick<ManagedFieldsEntry, 'manager' | 'operation' | 'apiVersion' | 'subresource'>): boolean {
  if (a.manager !== b.manager || a.operation !== b.operation || (a.subresource ?? '') !== (b.subresource ?? '')) return false;
  // Appliers keep one entry whatever version they apply with; updaters have one per version.
  return a.operation === 'Apply' || a.apiVersion === b.apiVersion;
}

function readManagers(obj: KubeObject | undefined): Manager[] {
  const entries = obj?.metadata?.managedFields;
  if (!Array.isArray(entries)) return [];
  return entries.map((entry) => ({ entry, set: fieldsV1ToFieldSet(entry.fieldsV1) }));
}

function writeManagers(managers: Manager[]): ManagedFieldsEntry[] {
  return managers
    .filter((m) => m.set.size > 0)
    .map((m) => {
      const e: ManagedFieldsEntry = {
        manager: m.entry.manager,
        operation: m.entry.operation,
        apiVersion: m.entry.apiVersion,
        time: m.entry.time,
        fieldsType: 'FieldsV1',
        fieldsV1: fieldSetToFieldsV1(m.set),
      };
      if (m.entry.subresource) e.subresource = m.entry.subresource;
      return e;
    });
}

/** How the apiserver names a manager in a conflict: `"kubectl" using v1`, `"x" with subresource "status" using v1`. */
function describeManager(e: ManagedFieldsEntry): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === 'Update') s += ` using ${e.apiVersion}`;
  return s;
}

interface Conflict {
  manager: string;
  path: FieldPath;
}

/** The 409 kube-apiserver answers to a conflicting apply (apimachinery managedfields/internal/conflict.go). */
export function applyConflictError(conflicts: Conflict[]): StatusError {
  const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${c.manager}`, field: formatFieldPath(c.path) }));
  let message: string;
  if (conflicts.length === 1) {
    message = `Apply failed with 1 conflict: conflict with ${conflicts[0]!.manager}: ${formatFieldPath(conflicts[0]!.path)}`;
  } else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) byManager.set(c.manager, [...(byManager.get(c.manager) ?? []), formatFieldPath(c.path)]);
    const lines: string[] = [];
    for (const m of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${m}:`);
      for (const p of byManager.get(m)!) lines.push(`- ${p}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new StatusError(409, 'Conflict', message, { causes });
}

/**
 * The manager name for a write: the `fieldManager` parameter, else the User-Agent up to its
 * first `/` (kubectl's is `kubectl/v1.32.4 (linux/amd64) …`), cut to 128 characters.
 */
export function managerFromRequest(fieldManager?: string, userAgent?: string): string {
  if (fieldManager) return fieldManager;
  return [...(userAgent ?? '').split('/')[0]!].slice(0, 128).join('');
}

export interface ApplyRequest {
  /** The stored object; undefined when the apply creates it. */
  live?: KubeObject;
  /** The applied configuration, decoded from the apply-patch body. */
  applied: KubeObject;
  manager: string;
  force: boolean;
  /** The request's group/version, recorded on Update entries and in messages. */
  apiVersion: string;
  /** RFC3339 (seconds) time for the entry. */
  now: string;
  /** `status` for an apply to `/status`. */
  subresource?: string;
  /**
   * The resource serves `/status`: an apply to the main resource leaves status alone, and an
   * apply to `/status` touches only status (contract §4). Default false.
   */
  statusSubresource?: boolean;
  /** CRD schema, for `x-kubernetes-list-type` lists; built-ins use the built-in list keys. */
  schema?: JSONSchemaProps;
}

/**
 * Server-side apply: merge `applied` into `live` with field ownership.
 * Throws StatusError 409 Conflict (causes `FieldManagerConflict`) when another manager owns a
 * field whose value the apply would change and `force` is false.
 */
export function serverSideApply(req: ApplyRequest): { object: KubeObject } {
  const ctx: Ctx = { schema: req.schema };
  const filter = topFilter(req.subresource, req.statusSubresource);
  const applied = dropNulls(structuredClone(req.applied)) as KubeObject;
  const appliedSet = fieldsOf(applied, ctx, filter);
  const identity = { manager: req.manager, operation: 'Apply' as const, apiVersion: req.apiVersion, subresource: req.subresource };

  if (!req.live) {
    const object = restrictTop(applied, undefined, filter);
    object.metadata = { ...(object.metadata ?? {}) };
    object.metadata.managedFields = writeManagers([{ entry: { ...identity, time: req.now, fieldsType: 'FieldsV1', fieldsV1: {} }, set: appliedSet }]);
    return { object };
  }

  const live = structuredClone(req.live);
  let managers = readManagers(live);
  if (managers.length === 0) {
    // Objects written before anyone tracked ownership: the apiserver credits everything to this name.
    const all = fieldsOf(live, ctx, () => true);
    if (all.size > 0) {
      managers = [{ entry: { manager: 'before-first-apply', operation: 'Update', apiVersion: live.apiVersion, time: req.now, fieldsType: 'FieldsV1', fieldsV1: {} }, set: all }];
    }
  }
  let mine = managers.find((m) => sameIdentity(m.entry, identity));
  const others = managers.filter((m) => m !== mine);

  // Conflicts: applied fields whose value would change and that someone else owns.
  const changed = FieldSet.of(appliedSet.values().filter((p) => {
    const before = getAt(live, p);
    if (before === NOT_FOUND) return true;
    const last = p[p.length - 1]!;
    if (!('f' in last)) return false; // an existing list item is not changed by being named again
    return !deepEqual(before, getAt(applied, p));
  }));
  const conflicts: Conflict[] = [];
  for (const o of others) {
    for (const p of o.set.values()) if (changed.has(p)) conflicts.push({ manager: describeManager(o.entry), path: p });
  }
  if (conflicts.length > 0 && !req.force) throw applyConflictError(conflicts);

  // Whoever changed fields now owns them alone (forced, or owned by no one before).
  for (const o of others) o.set = o.set.minus(changed);

  // Fields this manager applied last time, omits now, and nobody else owns: removed.
  const othersOwn = others.reduce((acc, o) => acc.union(o.set), new FieldSet());
  const previous = mine?.set ?? new FieldSet();
  const dropped = previous.minus(appliedSet).values()
    .filter((p) => !othersOwn.hasUnder(p))
    .sort((a, b) => a.length - b.length);
  let merged = live as Json;
  const removed = new FieldSet();
  for (const p of dropped) {
    // Fields of a removed list item went with it (and can no longer be found by key).
    if (p.some((_, i) => i > 0 && removed.has(p.slice(0, i)))) continue;
    removeAt(merged, p);
    removed.add(p);
  }

  merged = mergeInto(merged, restrictTop(applied, live, filter), ctx, []);
  const object = merged as KubeObject;
  // Never take identity from the applied body: the stored object's bookkeeping stays.
  const metadata: Record<string, unknown> = { ...(object.metadata ?? {}) };
  for (const k of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink']) {
    if (req.live.metadata?.[k] !== undefined) metadata[k] = req.live.metadata[k];
    else delete metadata[k];
  }
  object.metadata = metadata;

  if (!mine) {
    mine = { entry: { ...identity, time: req.now, fieldsType: 'FieldsV1', fieldsV1: {} }, set: appliedSet };
    managers = [...others, mine];
  } else {
    // A re-apply that changes nothing keeps its entry as it was, so the write is a no-op
    // (no new resourceVersion, no watch event), as kube-apiserver only moves the time on change.
    const sameSet = mine.set.size === appliedSet.size && appliedSet.values().every((p) => mine!.set.has(p));
    const unchanged = sameSet && deepEqual(withoutManagedFields(object), withoutManagedFields(req.live));
    mine.set = appliedSet;
    if (!unchanged) mine.entry = { ...mine.entry, apiVersion: req.apiVersion, time: req.now };
  }
  object.metadata.managedFields = writeManagers(managers);
  return { object };
}

function withoutManagedFields(o: KubeObject): KubeObject {
  const { managedFields: _m, ...metadata } = o.metadata ?? {};
  return { ...o, metadata };
}

/** The applied object limited to what this write may touch (status rules of contract §4). */
function restrictTop(applied: KubeObject, live: KubeObject | undefined, filter: TopFilter): KubeObject {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(applied)) {
    if (k === 'apiVersion' || k === 'kind' || filter(k)) out[k] = v;
    else if (k === 'metadata') out[k] = {}; // identity comes from the stored object
  }
  if (live === undefined && !out.metadata) out.metadata = applied.metadata ?? {};
  if (!out.metadata) out.metadata = {};
  return dropNulls(out) as KubeObject;
}

export interface UpdateRequest {
  live?: KubeObject;
  updated: KubeObject;
  manager: string;
  operation: 'Update';
  apiVersion: string;
  now: string;
  subresource?: string;
  schema?: JSONSchemaProps;
}

/**
 * Ownership after a non-apply write (create, update, patch): the writer takes the fields it
 * set or changed; every other manager loses those and any field the write removed.
 * Returns the new `metadata.managedFields` for `updated`.
 *
 * Every write of every object goes through here, so it works on path keys (the fieldsV1
 * spelling joined by SEP) rather than FieldSets: no path arrays, and a manager's fieldsV1
 * converts to keys and back without parsing its field elements.
 */
export function recordUpdate(req: UpdateRequest): ManagedFieldsEntry[] {
  const ctx: Ctx = { schema: req.schema };
  const after = leafValues(req.updated, ctx);
  const before = req.live ? leafValues(req.live, ctx) : new Map<string, Json>();
  const changed = new Set<string>();
  for (const [key, value] of after) {
    if (!before.has(key)) changed.add(key);
    // A list item (k:/v:) that exists is unchanged; its fields are compared one by one.
    else if (lastElement(key).startsWith('f:') && !deepEqual(before.get(key), value)) changed.add(key);
  }
  const removed = new Set<string>();
  for (const key of before.keys()) if (!after.has(key)) removed.add(key);

  const identity = { manager: req.manager, operation: 'Update' as const, apiVersion: req.apiVersion, subresource: req.subresource };
  // Ownership lives on the stored object; what the client sent in managedFields is ignored.
  const entries = Array.isArray(req.live?.metadata?.managedFields) ? req.live!.metadata!.managedFields! : [];
  // A manager's keys are only taken apart when this write changes its set; most writes
  // change no set (the same manager writing the fields it owns), and keep every fieldsV1 as stored.
  const managers: { entry: ManagedFieldsEntry; keys?: Set<string> }[] = entries.map((entry) => ({ entry }));
  const keysOf = (m: { entry: ManagedFieldsEntry; keys?: Set<string> }) => (m.keys ??= fieldsV1Keys(m.entry.fieldsV1));
  let mine = managers.find((m) => sameIdentity(m.entry, identity));
  for (const m of managers) {
    if (m === mine) continue;
    const loses = (key: string) => fieldsV1Has(m.entry.fieldsV1, key);
    if (![...changed].some(loses) && ![...removed].some(loses)) continue;
    const keys = keysOf(m);
    for (const key of changed) keys.delete(key);
    for (const key of removed) keys.delete(key);
  }
  if (changed.size > 0 || mine) {
    if (!mine) {
      mine = { entry: { ...identity, time: req.now, fieldsType: 'FieldsV1', fieldsV1: {} }, keys: new Set<string>() };
      managers.push(mine);
    }
    const tree = mine.entry.fieldsV1;
    if (mine.keys || [...changed].some((key) => !fieldsV1Has(tree, key)) || [...removed].some((key) => fieldsV1Has(tree, key))) {
      const keys = keysOf(mine);
      for (const key of changed) keys.add(key);
      for (const key of removed) keys.delete(key);
    }
    if (changed.size > 0) mine.entry = { ...mine.entry, time: req.now };
  }
  const out: ManagedFieldsEntry[] = [];
  for (const m of managers) {
    const fieldsV1 = m.keys ? (m.keys.size ? keysToFieldsV1(m.keys) : undefined) : isNonEmptyTree(m.entry.fieldsV1) ? m.entry.fieldsV1 : undefined;
    if (!fieldsV1) continue;
    const e: ManagedFieldsEntry = { manager: m.entry.manager, operation: m.entry.operation, apiVersion: m.entry.apiVersion, time: m.entry.time, fieldsType: 'FieldsV1', fieldsV1 };
    if (m.entry.subresource) e.subresource = m.entry.subresource;
    out.push(e);
  }
  return out;
}

function isNonEmptyTree(tree: unknown): tree is Record<string, unknown> {
  return !!tree && typeof tree === 'object' && Object.keys(tree).length > 0;
}

/** Whether the path key is in a fieldsV1 tree (as fieldsV1Keys would list it). */
function fieldsV1Has(tree: unknown, key: string): boolean {
  let node = tree;
  for (const element of key.split(SEP)) {
    if (!node || typeof node !== 'object' || !Object.hasOwn(node, element)) return false;
    node = (node as Record<string, unknown>)[element];
  }
  return !!node && typeof node === 'object' && ('.' in node || Object.keys(node).length === 0);
}

function lastElement(key: string): string {
  return key.slice(key.lastIndexOf(SEP) + 1);
}

/** The leaf field paths of an object (what a write of it would own), as path key → the value there. */
function leafValues(obj: Json, ctx: Ctx, filter: TopFilter = () => true): Map<string, Json> {
  const leaves = new Map<string, Json>();
  // Of list items with the same key (which validation refuses), the first one counts, as in getAt.
  const out = { set: (key: string, value: Json) => void (leaves.has(key) || leaves.set(key, value)) };
  const names: (string | number)[] = [];
  const walk = (value: Json, key: string) => {
    if (isMap(value)) {
      const top = names.length === 0;
      const inMetadata = names.length === 1 && names[0] === 'metadata';
      let empty = true;
      for (const k of Object.keys(value)) {
        if (top && (k === 'apiVersion' || k === 'kind' || !filter(k))) continue;
        if (inMetadata && STRIPPED_META.has(k)) continue;
        empty = false;
        if (value[k] === undefined) continue;
        names.push(k);
        walk(value[k], top ? `f:${k}` : `${key}${SEP}f:${k}`);
        names.pop();
      }
      if (empty && !top && !inMetadata) out.set(key, value);
      return;
    }
    if (Array.isArray(value)) {
      const lt = listTypeOf(ctx, names, value);
      if (lt.type === 'atomic' || value.length === 0) { out.set(key, value); return; }
      if (lt.type === 'set') { for (const v of value) out.set(`${key}${SEP}v:${JSON.stringify(v)}`, v); return; }
      for (const item of value as Record<string, Json>[]) {
        const itemKey = `${key}${SEP}${elementKey({ k: keyOf(item, lt.keys) })}`;
        out.set(itemKey, item);
        names.push(0);
        for (const [k, v] of Object.entries(item)) {
          if (v === undefined) continue;
          names.push(k);
          walk(v, `${itemKey}${SEP}f:${k}`);
          names.pop();
        }
        names.pop();
      }
      return;
    }
    out.set(key, value);
  };
  walk(obj, '');
  return leaves;
}

/** The path keys of a fieldsV1 tree. */
function fieldsV1Keys(tree: unknown): Set<string> {
  const out = new Set<string>();
  const walk = (node: unknown, key: string) => {
    if (!node || typeof node !== 'object') return;
    let leaf = true;
    for (const k of Object.keys(node)) {
      if (k === '.') {
        if (key) out.add(key);
        continue;
      }
      leaf = false;
      let element = k;
      if (k.startsWith('k:') || k.startsWith('v:')) {
        // Spelled as elementKey spells it, whatever key order the stored entry has.
        const parsed = parseElementKey(k);
        if (!parsed) continue;
        element = elementKey(parsed);
      } else if (!k.startsWith('f:')) continue; // `i:` (index) paths are never produced here
      walk((node as Record<string, unknown>)[k], key ? `${key}${SEP}${element}` : element);
    }
    if (leaf && key) out.add(key);
  };
  walk(tree, '');
  return out;
}

function keysToFieldsV1(keys: Iterable<string>): Record<string, unknown> {
  const root: Record<string, any> = {};
  for (const key of keys) {
    let node = root;
    for (const e of key.split(SEP)) node = node[e] ??= {};
    node['.'] = {};
  }
  return tidyFieldsV1(root);
}

/** Exposed for tests and for callers that need to read ownership. */
export function ownedPaths(entry: ManagedFieldsEntry): string[] {
  return fieldsV1ToFieldSet(entry.fieldsV1).values().map(formatFieldPath).sort();
}
