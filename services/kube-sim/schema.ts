// The custom-resource write pipeline of apiextensions-apiserver (contract §10): prune fields
// the structural schema does not know, apply `default`s, validate, and report errors with the
// exact wording kube-apiserver uses (kube-openapi's messages wrapped in field.Error bodies).
import { parse as parseCel } from '@marcbachmann/cel-js';
import { causeText } from './errors.ts';
import { deepEqual } from './ssa.ts';
import { StatusError, type JSONSchemaProps, type KubeObject, type StatusCause, type ValidationRule } from './types.ts';

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

export interface PipelineResult {
  object: KubeObject;
  /** Validation failures; non-empty means the write is a 422 (see invalidError). */
  causes: StatusCause[];
  /** Pruned field paths without a leading dot (`spec.bogus`), for Strict errors and Warn warnings. */
  unknownFields: string[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const ROOT_KEPT = new Set(['apiVersion', 'kind', 'metadata']);

function child(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

// ---------------------------------------------------------------- pruning

type PruneMode = 'structural' | 'openapi';

/**
 * Walks `value` against `schema`, calling `onUnknown` for each field the schema does not
 * allow, and returns the value without them. 'structural' is CRD semantics (an object schema
 * without properties keeps nothing); 'openapi' is how built-in OpenAPI reads (an object schema
 * with neither properties nor additionalProperties is free-form, e.g. RawExtension).
 */
function prune(value: Json, schema: JSONSchemaProps | undefined, path: string, mode: PruneMode, onUnknown: (p: string) => void, root = false): Json {
  if (!schema) return value;
  if (Array.isArray(value)) return schema.items ? value.map((item, i) => prune(item, schema.items, `${path}[${i}]`, mode, onUnknown)) : value;
  if (!isObject(value)) return value;

  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const embedded = schema['x-kubernetes-embedded-resource'] === true;
  const props = schema.properties;
  const additional = schema.additionalProperties;
  const freeForm = mode === 'openapi' && !props && (additional === undefined || additional === true);
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(value)) {
    const p = child(path, key);
    if ((root || embedded) && ROOT_KEPT.has(key)) {
      // metadata belongs to the core; built-in schemas that describe it still get walked.
      out[key] = key === 'metadata' && mode === 'openapi' && props?.metadata?.properties ? prune(v, props.metadata, p, mode, onUnknown) : v;
      continue;
    }
    const propSchema = props?.[key] ?? (isObject(additional) ? (additional as JSONSchemaProps) : undefined);
    if (propSchema) out[key] = prune(v, propSchema, p, mode, onUnknown);
    else if (preserve || freeForm || additional === true) out[key] = v;
    else onUnknown(p);
  }
  return out;
}

/**
 * Paths of fields the schema does not allow (`spec.bogus`, `spec.containers[0].imagee`), for
 * built-in kinds whose schema comes from kubernetes-models (`$ref`s resolved by the caller).
 */
export function findUnknownFields(obj: unknown, schema: JSONSchemaProps): string[] {
  const unknown: string[] = [];
  prune(obj as Json, schema, '', 'openapi', (p) => unknown.push(p), true);
  return unknown;
}

/**
 * `obj` without the fields findUnknownFields reports, and their paths: built-in kinds decode
 * into typed structs, which drop unknown fields whatever fieldValidation says. Never mutates `obj`.
 */
export function pruneUnknownFields<T>(obj: T, schema: JSONSchemaProps): { object: T; unknownFields: string[] } {
  const unknownFields: string[] = [];
  const object = prune(obj as Json, schema, '', 'openapi', (p) => unknownFields.push(p), true) as T;
  return { object, unknownFields };
}

// ---------------------------------------------------------------- defaulting

function isNullable(schema: JSONSchemaProps): boolean {
  return schema.nullable === true;
}

function defaultValue(schema: JSONSchemaProps): Json | undefined {
  return schema.default === undefined ? undefined : (structuredClone(schema.default) as Json);
}

function defaultInPlace(value: Json, schema: JSONSchemaProps | undefined, root: boolean): Json {
  if (!schema) return value;
  if (Array.isArray(value)) return schema.items ? value.map((item) => defaultInPlace(item, schema.items, false)) : value;
  if (!isObject(value)) return value;
  const props = schema.properties ?? {};
  const additional = isObject(schema.additionalProperties) ? (schema.additionalProperties as JSONSchemaProps) : undefined;
  for (const [key, v] of Object.entries(value)) {
    if (root && ROOT_KEPT.has(key)) continue;
    const s = props[key] ?? additional;
    if (!s) continue;
    if (v === null && !isNullable(s)) {
      // apiextensions: a null in a non-nullable field is defaulted if it can be, else dropped.
      const d = defaultValue(s);
      if (d === undefined) delete value[key];
      else value[key] = defaultInPlace(d, s, false);
      continue;
    }
    value[key] = defaultInPlace(v, s, false);
  }
  for (const [key, s] of Object.entries(props)) {
    if (key in value || (root && ROOT_KEPT.has(key))) continue;
    const d = defaultValue(s);
    if (d !== undefined) value[key] = defaultInPlace(d, s, false);
  }
  return value;
}

/** Applies schema `default`s to absent fields (recursively, also inside defaults). Returns a copy. */
export function applyDefaults<T extends KubeObject>(obj: T, schema: JSONSchemaProps): T {
  return defaultInPlace(structuredClone(obj) as unknown as Json, schema, true) as unknown as T;
}

// ---------------------------------------------------------------- validation

/** How field.Error prints a bad value (Go %v for scalars, %q for strings). */
function showValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

function jsonType(v: Json): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function invalid(field: string, value: unknown, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${showValue(value)}: ${detail}`, field };
}

function typeInvalid(field: string, value: unknown, detail: string): StatusCause {
  return { reason: 'FieldValueTypeInvalid', message: `Invalid value: ${showValue(value)}: ${detail}`, field };
}

function typeMatches(v: Json, schema: JSONSchemaProps): { ok: true } | { ok: false; expected: string } {
  if (v === null) return isNullable(schema) || !schema.type ? { ok: true } : { ok: false, expected: schema.type! };
  if (schema['x-kubernetes-int-or-string'] === true) {
    return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'string' ? { ok: true } : { ok: false, expected: 'integer,string' };
  }
  const type = schema.type;
  if (!type) return { ok: true };
  const actual = jsonType(v);
  const ok = type === actual || (type === 'number' && actual === 'integer');
  return ok ? { ok: true } : { ok: false, expected: type };
}

// Light format checks: the formats CRD authors use in practice.
const FORMATS: Record<string, (s: string) => boolean> = {
  'date-time': (s) => /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s.replace(' ', 'T'))),
  datetime: (s) => FORMATS['date-time']!(s),
  date: (s) => /^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(Date.parse(s)),
  byte: (s) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s),
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  ipv4: (s) => /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(s),
};

const patternCache = new Map<string, RegExp | null>();
function compilePattern(pattern: string): RegExp | null {
  if (!patternCache.has(pattern)) {
    let re: RegExp | null = null;
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      try {
        re = new RegExp(pattern);
      } catch {
        re = null; // CRD validation rejects such patterns; nothing sensible to enforce here.
      }
    }
    patternCache.set(pattern, re);
  }
  return patternCache.get(pattern)!;
}

// ---------------------------------------------------------------- CEL rules

type CompiledRule = ((activation: Record<string, unknown>) => unknown) | Error;
const compiledRules = new Map<string, CompiledRule>();

/** A rule parsed once (CRD schemas repeat on every write); a rule that does not parse is kept as its Error. */
export function compileRule(rule: string): CompiledRule {
  let c = compiledRules.get(rule);
  if (!c) {
    try {
      c = parseCel(rule) as (activation: Record<string, unknown>) => unknown;
    } catch (err) {
      c = err instanceof Error ? err : new Error(String(err));
    }
    if (compiledRules.size > 10_000) compiledRules.clear();
    compiledRules.set(rule, c);
  }
  return c;
}

/** A JSON value as apiextensions hands it to CEL: `integer` fields are CEL ints, the rest as JSON. */
function toCel(v: Json | undefined, schema: JSONSchemaProps | undefined): unknown {
  if (typeof v === 'number') return schema?.type === 'integer' && Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map((x) => toCel(x, schema?.items));
  if (isObject(v)) {
    const additional = isObject(schema?.additionalProperties) ? (schema!.additionalProperties as JSONSchemaProps) : undefined;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = toCel(x, schema?.properties?.[k] ?? additional);
    return out;
  }
  return v;
}

/** The first line of a CEL error: the library adds a caret picture of the expression below it. */
const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim();

/**
 * `x-kubernetes-validations` at one node, as apiextensions runs them: `self` is the value
 * here, a rule naming `oldSelf` (a transition rule) runs only on an update that had a value
 * here. A false rule gives its message (or messageExpression's, or "failed rule: <rule>") on
 * the field, with the schema type as the shown value: `spec: Invalid value: "object": …`.
 */
function celCauses(v: Json, old: Json | undefined, schema: JSONSchemaProps, path: string, causes: StatusCause[]): void {
  const type = schema.type ?? 'object';
  let self: unknown;
  let oldSelf: unknown;
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    if (!rule || typeof rule.rule !== 'string') continue;
    const transition = /\boldSelf\b/.test(rule.rule);
    if (transition && old === undefined && !rule.optionalOldSelf) continue;
    const program = compileRule(rule.rule);
    const ruleText = (typeof rule.message === 'string' ? rule.message.trim() : '') || rule.rule.trim();
    if (program instanceof Error) {
      causes.push(invalid(path, type, `compilation failed: ${firstLine(program)}`));
      continue;
    }
    self ??= toCel(v, schema);
    if (transition) oldSelf ??= old === undefined ? null : toCel(old, schema);
    let result: unknown;
    try {
      result = program(transition ? { self, oldSelf } : { self });
    } catch (err) {
      causes.push(invalid(path, type, `${firstLine(err)} evaluating rule: ${ruleText}`));
      continue;
    }
    if (result === true) continue;
    const field = typeof rule.fieldPath === 'string' && rule.fieldPath ? child(path, rule.fieldPath.replace(/^\./, '')) : path;
    causes.push(ruleFailure(rule, field, type, ruleMessage(rule, self, oldSelf)));
  }
}

function ruleMessage(rule: ValidationRule, self: unknown, oldSelf: unknown): string {
  if (typeof rule.messageExpression === 'string' && rule.messageExpression) {
    const program = compileRule(rule.messageExpression);
    if (!(program instanceof Error)) {
      try {
        const text = program({ self, oldSelf });
        if (typeof text === 'string' && text.trim()) return text.trim();
      } catch {
        // fall back to the static message, as apiextensions does
      }
    }
  }
  return (typeof rule.message === 'string' && rule.message.trim()) || `failed rule: ${rule.rule.trim()}`;
}

function ruleFailure(rule: ValidationRule, field: string, type: string, detail: string): StatusCause {
  switch (rule.reason) {
    case 'FieldValueForbidden':
      return { reason: 'FieldValueForbidden', message: `Forbidden: ${detail}`, field };
    case 'FieldValueRequired':
      return { reason: 'FieldValueRequired', message: `Required value: ${detail}`, field };
    case 'FieldValueDuplicate':
      return { reason: 'FieldValueDuplicate', message: `Duplicate value: ${showValue(type)}`, field };
    default:
      return invalid(field, type, detail);
  }
}

function validateValue(v: Json, schema: JSONSchemaProps, path: string, causes: StatusCause[], root = false, old?: Json): void {
  const at = path || '<root>';
  const t = typeMatches(v, schema);
  if (!t.ok) {
    causes.push(typeInvalid(path, jsonType(v), `${at} in body must be of type ${t.expected}: ${JSON.stringify(jsonType(v))}`));
    return;
  }
  if (v === null) return;

  if (typeof v === 'string') {
    if (schema.format && FORMATS[schema.format] && !FORMATS[schema.format]!(v))
      causes.push(typeInvalid(path, v, `${at} in body must be of type ${schema.format}: ${JSON.stringify(v)}`));
    const length = [...v].length;
    if (schema.maxLength !== undefined && length > schema.maxLength)
      causes.push({ reason: 'FieldValueTooLong', message: `Too long: may not be more than ${schema.maxLength} ${schema.maxLength === 1 ? 'byte' : 'bytes'}`, field: path });
    if (schema.minLength !== undefined && length < schema.minLength)
      causes.push(invalid(path, v, `${at} in body should be at least ${schema.minLength} chars long`));
    if (schema.pattern !== undefined) {
      const re = compilePattern(schema.pattern);
      if (re && !re.test(v)) causes.push(invalid(path, v, `${at} in body should match '${schema.pattern}'`));
    }
  }

  if (typeof v === 'number') {
    const multipleOf = schema.multipleOf;
    if (typeof multipleOf === 'number' && multipleOf > 0 && !Number.isInteger(v / multipleOf))
      causes.push(invalid(path, v, `${at} in body should be a multiple of ${multipleOf}`));
    if (schema.maximum !== undefined) {
      if (schema.exclusiveMaximum ? v >= schema.maximum : v > schema.maximum)
        causes.push(invalid(path, v, `${at} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`));
    }
    if (schema.minimum !== undefined) {
      if (schema.exclusiveMinimum ? v <= schema.minimum : v < schema.minimum)
        causes.push(invalid(path, v, `${at} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`));
    }
  }

  if (Array.isArray(v)) {
    if (schema.maxItems !== undefined && v.length > schema.maxItems)
      causes.push({ reason: 'FieldValueTooMany', message: `Too many: ${v.length}: must have at most ${schema.maxItems} ${schema.maxItems === 1 ? 'item' : 'items'}`, field: path });
    if (schema.minItems !== undefined && v.length < schema.minItems)
      causes.push(invalid(path, v, `${at} in body should have at least ${schema.minItems} items`));
  }

  if (schema.enum && !schema.enum.some((e) => deepEqual(e, v))) {
    const supported = schema.enum.map((e) => JSON.stringify(typeof e === 'string' ? e : JSON.stringify(e))).join(', ');
    causes.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${showValue(v)}: supported values: ${supported}`, field: path });
  }

  // List items have no old value to pair with here (no listType=map correlation): their transition rules do not run.
  if (Array.isArray(v) && schema.items) v.forEach((item, i) => validateValue(item, schema.items!, `${path}[${i}]`, causes));

  if (isObject(v)) {
    for (const name of schema.required ?? []) {
      if (root && ROOT_KEPT.has(name)) continue;
      if (!(name in v)) causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: child(path, name) });
    }
    const additional = isObject(schema.additionalProperties) ? (schema.additionalProperties as JSONSchemaProps) : undefined;
    for (const [key, x] of Object.entries(v)) {
      if (root && ROOT_KEPT.has(key)) continue;
      const s = schema.properties?.[key] ?? additional;
      if (s) validateValue(x, s, child(path, key), causes, false, isObject(old) ? old[key] : undefined);
    }
  }

  if (schema['x-kubernetes-validations']?.length) celCauses(v, old, schema, path, causes);
}

/** Validates a (pruned, defaulted) object against its schema; returns the causes, empty if valid. */
export function validateObject(obj: KubeObject, schema: JSONSchemaProps, old?: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  validateValue(obj as unknown as Json, schema, '', causes, true, old as unknown as Json | undefined);
  return causes;
}

/**
 * The CR write pipeline: prune unknown fields (apiVersion, kind and metadata are always kept;
 * metadata is the core's to check), apply defaults, validate. Never mutates `obj`.
 * `fieldValidation` is accepted for symmetry with the request; what to do with
 * `unknownFields` (400 for Strict, warnings for Warn) is the caller's decision, see
 * strictDecodingError and unknownFieldWarnings.
 */
export function pruneDefaultValidate(obj: KubeObject, schema: JSONSchemaProps, opts: { fieldValidation: FieldValidation; old?: KubeObject }): PipelineResult {
  const unknownFields: string[] = [];
  const pruned = prune(structuredClone(obj) as unknown as Json, schema, '', 'structural', (p) => unknownFields.push(p), true);
  const object = defaultInPlace(pruned, schema, true) as unknown as KubeObject;
  return { object, causes: validateObject(object, schema, opts.old), unknownFields };
}

// ---------------------------------------------------------------- errors

/**
 * The 422 Invalid Status of contract §5: `CronTab.stable.example.com "ct" is invalid: <err>`
 * or `[<err1>, <err2>]` when several (duplicates collapse, as apimachinery's aggregate does).
 */
export function invalidError(kind: string, group: string, name: string, causes: StatusCause[]): StatusError {
  const qualified = group ? `${kind}.${group}` : kind;
  const texts = [...new Set(causes.map(causeText))];
  const summary = texts.length === 0 ? '' : texts.length === 1 ? `: ${texts[0]}` : `: [${texts.join(', ')}]`;
  return new StatusError(422, 'Invalid', `${qualified} ${JSON.stringify(name)} is invalid${summary}`, { name, ...(group ? { group } : {}), kind, causes });
}

/** `unknown field "spec.bogus"` per pruned field, the text of Warn-mode `Warning` headers. */
export function unknownFieldWarnings(unknownFields: readonly string[]): string[] {
  return unknownFields.map((f) => `unknown field ${JSON.stringify(f)}`);
}

/** The 400 that `fieldValidation=Strict` turns unknown fields into. */
export function strictDecodingError(unknownFields: readonly string[]): StatusError {
  return new StatusError(400, 'BadRequest', `strict decoding error: ${unknownFieldWarnings(unknownFields).join(', ')}`);
}
