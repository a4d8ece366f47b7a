// The three PATCH flavours kube-apiserver applies before admission and validation:
// JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch (built-ins).
// Every function returns a fresh value and never mutates its inputs: the store hands us its
// live objects, and the result is mutated further (resourceVersion, managedFields) by the core.
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import { StatusError } from './types.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

/** A patch that parsed but cannot be applied: 422 with the reason as the message and a cause. */
function cannotApply(message: string): StatusError {
  return new StatusError(422, 'Invalid', message, { causes: [{ reason: 'UnexpectedServerResponse', message }] });
}

// ---------------------------------------------------------------- JSON merge patch

function mergeInto(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergeInto(out[key], value);
  }
  return out;
}

/** RFC 7386: objects merge recursively, `null` deletes, anything else replaces. */
export function applyMergePatch<T = unknown>(target: unknown, patch: unknown): T {
  return mergeInto(clone(target) as Json, clone(patch) as Json) as T;
}

// ---------------------------------------------------------------- JSON patch

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

/** Structural checks done before touching the document: a malformed patch is a 400. */
function checkOperations(ops: unknown): asserts ops is Operation[] {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  ops.forEach((op: unknown, i) => {
    if (!isObject(op)) throw badRequest(`invalid JSON patch: operation ${i} is not an object`);
    if (typeof op.op !== 'string' || !OPS.has(op.op)) throw badRequest(`invalid JSON patch: operation ${i}: Unexpected kind: ${String(op.op)}`);
    if (typeof op.path !== 'string') throw badRequest(`invalid JSON patch: operation ${i} (${op.op}): missing "path"`);
    if (op.path !== '' && !op.path.startsWith('/')) throw badRequest(`invalid JSON patch: operation ${i} (${op.op}): path ${JSON.stringify(op.path)} must start with "/"`);
    if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string')
      throw badRequest(`invalid JSON patch: operation ${i} (${op.op}): missing "from"`);
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !('value' in op))
      throw badRequest(`invalid JSON patch: operation ${i} (${op.op}): missing "value"`);
  });
}

interface PatchErrorLike {
  name: string;
  index?: number;
  operation?: { op?: string; path?: string; from?: string };
}

function describeFailure(err: PatchErrorLike): string {
  const op = err.operation?.op ?? 'unknown';
  const path = err.operation?.path ?? '';
  switch (err.name) {
    case 'TEST_OPERATION_FAILED':
      return `testing value ${path} failed: test failed`;
    case 'OPERATION_FROM_UNRESOLVABLE':
      return `${op} operation does not apply: doc is missing from path: ${err.operation?.from ?? ''}: missing value`;
    case 'OPERATION_PATH_ILLEGAL_ARRAY_INDEX':
    case 'OPERATION_VALUE_OUT_OF_BOUNDS':
      return `${op} operation does not apply: invalid index referenced by path ${path}`;
    case 'OPERATION_PATH_CANNOT_ADD':
    case 'OPERATION_PATH_UNRESOLVABLE':
      return `${op} operation does not apply: doc is missing path: ${JSON.stringify(path)}: missing value`;
    default:
      return `${op} operation at ${JSON.stringify(path)} failed: ${err.name}`;
  }
}

/**
 * RFC 6902 through fast-json-patch. A malformed patch is 400 BadRequest; an operation that
 * cannot apply (failing `test`, missing path, bad index) is 422 Invalid naming the operation.
 */
export function applyJsonPatch<T = unknown>(target: unknown, ops: unknown): T {
  checkOperations(ops);
  try {
    // Clone both: fast-json-patch inserts operation values by reference.
    const result = fastJsonPatch.applyPatch(clone(target), clone(ops), true, true);
    return result.newDocument as T;
  } catch (err) {
    if (err instanceof fastJsonPatch.JsonPatchError) throw cannotApply(describeFailure(err as PatchErrorLike));
    throw err;
  }
}

// ---------------------------------------------------------------- strategic merge patch

const DIRECTIVE = '$patch';
const RETAIN_KEYS = '$retainKeys';
const SET_ORDER_PREFIX = '$setElementOrder/';
const DELETE_PRIMITIVE_PREFIX = '$deleteFromPrimitiveList/';

interface ListStrategy {
  /** Elements are objects merged by this key; absent for sets of primitives. */
  mergeKey?: string;
}

/**
 * patchStrategy=merge lists of the built-ins kube-sim serves (from the Go struct tags of
 * k8s.io/api). Looked up as `<parent field>.<field>` first, then `*.<field>`; every other
 * list is replaced wholesale, as for a field without a patch strategy.
 */
const MERGE_LISTS: Record<string, ListStrategy> = {
  'metadata.finalizers': {},
  'metadata.ownerReferences': { mergeKey: 'uid' },
  '*.containers': { mergeKey: 'name' },
  '*.initContainers': { mergeKey: 'name' },
  '*.ephemeralContainers': { mergeKey: 'name' },
  '*.env': { mergeKey: 'name' },
  '*.volumes': { mergeKey: 'name' },
  '*.volumeMounts': { mergeKey: 'mountPath' },
  '*.volumeDevices': { mergeKey: 'devicePath' },
  '*.ports': { mergeKey: 'containerPort' },
  '*.imagePullSecrets': { mergeKey: 'name' },
  '*.hostAliases': { mergeKey: 'ip' },
  '*.topologySpreadConstraints': { mergeKey: 'topologyKey' },
  '*.schedulingGates': { mergeKey: 'name' },
  '*.resourceClaims': { mergeKey: 'name' },
  'status.conditions': { mergeKey: 'type' },
};

function listStrategy(parent: string, field: string): ListStrategy | undefined {
  return MERGE_LISTS[`${parent}.${field}`] ?? MERGE_LISTS[`*.${field}`];
}

function isPrimitive(v: unknown): boolean {
  return v === null || typeof v !== 'object';
}

function sameElement(a: Json, b: Json, mergeKey: string | undefined): boolean {
  if (mergeKey === undefined) return a === b;
  return isObject(a) && isObject(b) && a[mergeKey] !== undefined && a[mergeKey] === b[mergeKey];
}

function indexIn(list: readonly Json[], item: Json, mergeKey: string | undefined): number {
  return list.findIndex((x) => sameElement(x, item, mergeKey));
}

/**
 * Orders a merged list as kube-apiserver does: items named by the patch (or its
 * $setElementOrder) follow that order, server-only items keep their relative order, and the
 * two runs interleave by their positions in the original list.
 */
function normalizeOrder(merged: Json[], order: readonly Json[], original: readonly Json[], mergeKey: string | undefined): Json[] {
  const fromPatch = merged.filter((x) => indexIn(order, x, mergeKey) >= 0);
  const serverOnly = merged.filter((x) => indexIn(order, x, mergeKey) < 0);
  fromPatch.sort((a, b) => indexIn(order, a, mergeKey) - indexIn(order, b, mergeKey));
  serverOnly.sort((a, b) => indexIn(original, a, mergeKey) - indexIn(original, b, mergeKey));
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < fromPatch.length) {
    if (i >= serverOnly.length) out.push(fromPatch[j++]!);
    else if (j >= fromPatch.length) out.push(serverOnly[i++]!);
    else {
      const li = indexIn(original, serverOnly[i]!, mergeKey);
      const ri = indexIn(original, fromPatch[j]!, mergeKey);
      if (li >= 0 && ri >= 0 && li < ri) out.push(serverOnly[i++]!);
      else out.push(fromPatch[j++]!);
    }
  }
  return out;
}

/** Removes every `$…` directive from a value that replaces (rather than merges into) the target. */
function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.filter((x) => !(isObject(x) && DIRECTIVE in x)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) if (!k.startsWith('$')) out[k] = stripDirectives(x);
  return out;
}

function mergeList(original: Json[], patch: Json[], strategy: ListStrategy, path: string): Json[] {
  const { mergeKey } = strategy;
  if (mergeKey === undefined) {
    if (!patch.every(isPrimitive)) return stripDirectives(patch) as Json[];
    const merged = [...original];
    for (const v of patch) if (!merged.includes(v)) merged.push(v);
    return normalizeOrder(merged, patch, original, undefined);
  }

  let base = original;
  const items: JsonObject[] = [];
  let replace = false;
  for (const item of patch) {
    if (!isObject(item)) throw badRequest(`unable to merge list ${path}: element ${JSON.stringify(item)} is not an object`);
    const directive = item[DIRECTIVE];
    if (directive === undefined) {
      items.push(item);
      continue;
    }
    if (directive === 'delete') {
      if (item[mergeKey] === undefined) throw noMergeKey(item, mergeKey);
      base = base.filter((x) => !sameElement(x, item, mergeKey));
    } else if (directive === 'replace') replace = true;
    else if (directive !== 'merge') throw badPatchType(directive, path);
  }
  if (replace) return items.map((x) => mergeMap({}, x, path));

  const merged = [...base];
  for (const item of items) {
    if (item[mergeKey] === undefined) throw noMergeKey(item, mergeKey);
    const at = indexIn(merged, item, mergeKey);
    if (at >= 0) merged[at] = mergeMap(merged[at] as JsonObject, item, path);
    else merged.push(mergeMap({}, item, path));
  }
  return normalizeOrder(merged, items, base, mergeKey);
}

function noMergeKey(item: JsonObject, mergeKey: string): StatusError {
  const shown = JSON.stringify(stripDirectives(item));
  return new StatusError(422, 'Invalid', `map: ${shown} does not contain declared merge key: ${mergeKey}`);
}

function badPatchType(directive: Json, path: string): StatusError {
  return badRequest(`Unknown patch type: ${JSON.stringify(directive)} in ${path || 'the patch'}`);
}

function parentOf(path: string): string {
  const parts = path.split('.');
  return parts[parts.length - 1] ?? '';
}

/** Merges `patch` into `original` (which this function owns and may change). */
function mergeMap(original: JsonObject, patch: JsonObject, path: string): JsonObject {
  const directive = patch[DIRECTIVE];
  if (directive === 'replace') return stripDirectives(patch) as JsonObject;
  if (directive === 'delete') return {};
  if (directive !== undefined && directive !== 'merge') throw badPatchType(directive, path);

  const parent = parentOf(path);
  const retain = patch[RETAIN_KEYS];
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest('invalid patch: $retainKeys must be a list of strings');
    const keep = new Set(retain);
    for (const k of Object.keys(patch))
      if (!k.startsWith('$') && patch[k] !== null && !keep.has(k)) throw new StatusError(422, 'Invalid', 'patch content doesn\'t match retainKeys list');
    for (const k of Object.keys(original)) if (!keep.has(k)) delete original[k];
  }

  const orders = new Map<string, Json[]>();
  const deletions = new Map<string, Json[]>();
  for (const [key, value] of Object.entries(patch)) {
    if (key === DIRECTIVE || key === RETAIN_KEYS) continue;
    if (key.startsWith(SET_ORDER_PREFIX)) {
      if (!Array.isArray(value)) throw badRequest('invalid patch: $setElementOrder list must be a list');
      orders.set(key.slice(SET_ORDER_PREFIX.length), value);
      continue;
    }
    if (key.startsWith(DELETE_PRIMITIVE_PREFIX)) {
      if (!Array.isArray(value)) throw badRequest('invalid patch: $deleteFromPrimitiveList must be a list');
      deletions.set(key.slice(DELETE_PRIMITIVE_PREFIX.length), value);
      continue;
    }
    if (key.startsWith('$')) throw badRequest(`invalid patch: unknown directive ${JSON.stringify(key)}`);

    const childPath = path ? `${path}.${key}` : key;
    if (value === null) {
      delete original[key];
      continue;
    }
    const current = original[key];
    if (isObject(value)) {
      original[key] = mergeMap(isObject(current) ? current : {}, value, childPath);
    } else if (Array.isArray(value)) {
      const strategy = listStrategy(parent, key);
      original[key] = strategy && Array.isArray(current) ? mergeList(current, value, strategy, childPath) : strategy ? mergeList([], value, strategy, childPath) : (stripDirectives(value) as Json[]);
    } else {
      original[key] = value;
    }
  }

  for (const [key, remove] of deletions) {
    const current = original[key];
    if (Array.isArray(current)) original[key] = current.filter((x) => !remove.includes(x));
  }
  for (const [key, order] of orders) {
    const current = original[key];
    if (!Array.isArray(current)) continue;
    const strategy = listStrategy(parent, key);
    if (strategy) original[key] = normalizeOrder(current, order, current, strategy.mergeKey);
  }
  return original;
}

/**
 * Strategic merge patch for built-in kinds: objects merge like a merge patch, lists with a
 * known merge key merge element by element, `metadata.finalizers` merges as a set, other lists
 * are replaced. Understands `$patch` (replace/delete/merge), `$retainKeys`,
 * `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>`; no `$…` key survives.
 */
export function applyStrategicMergePatch<T = unknown>(target: unknown, patch: unknown): T {
  if (!isObject(patch)) throw badRequest('strategic merge patch must be a JSON object');
  const base = isObject(target) ? (clone(target) as JsonObject) : {};
  return mergeMap(base, clone(patch) as JsonObject, '') as T;
}
