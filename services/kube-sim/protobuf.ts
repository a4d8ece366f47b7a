// Decodes `application/vnd.kubernetes.protobuf` request bodies (contract §11): every
// `kubectl create <generator>` POSTs one, and a 415 is fatal to kubectl. Responses stay JSON.
// The message layout lives in proto/k8s.proto; protobufjs does the wire decoding.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { StatusError } from './types.ts';

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf';

/** The 4-byte prefix of every Kubernetes protobuf body: "k8s\0". */
export const PROTOBUF_MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

/** True for `application/vnd.kubernetes.protobuf`, with or without parameters, any case. */
export function isProtobufContentType(ct?: string): boolean {
  if (!ct) return false;
  return ct.split(';')[0]!.trim().toLowerCase() === PROTOBUF_CONTENT_TYPE;
}

const root = protobuf.parse(readFileSync(new URL('./proto/k8s.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
const lookup = (name: string): protobuf.Type => root.lookupType(`kubesim.${name}`);

/** The kinds whose protobuf body kube-sim understands, by `apiVersion/Kind`. */
const KINDS: Record<string, string> = {
  'v1/Secret': 'Secret',
  'v1/ConfigMap': 'ConfigMap',
  'v1/Namespace': 'Namespace',
  'batch/v1/CronJob': 'CronJob',
  'batch/v1/Job': 'Job',
};

/**
 * Go pointer fields (`*bool`, `*int32`, `*string`): present on the wire only when set, and then
 * kept in JSON even when zero. Every other scalar is a Go value field, always written by the
 * server's encoder and dropped from JSON when zero (`omitempty`).
 */
const POINTER_FIELDS = new Set([
  'Secret.immutable',
  'ConfigMap.immutable',
  'ObjectMeta.deletionGracePeriodSeconds',
  'OwnerReference.controller',
  'OwnerReference.blockOwnerDeletion',
  'CronJobSpec.startingDeadlineSeconds',
  'CronJobSpec.suspend',
  'CronJobSpec.successfulJobsHistoryLimit',
  'CronJobSpec.failedJobsHistoryLimit',
  'CronJobSpec.timeZone',
  'JobSpec.parallelism',
  'JobSpec.completions',
  'JobSpec.activeDeadlineSeconds',
  'JobSpec.manualSelector',
  'JobSpec.backoffLimit',
  'JobSpec.ttlSecondsAfterFinished',
  'JobSpec.completionMode',
  'JobSpec.suspend',
  'PodSpec.terminationGracePeriodSeconds',
  'PodSpec.activeDeadlineSeconds',
]);

/** Go value fields serialised without omitempty: kept even when empty. */
const ALWAYS_FIELDS = new Set(['CronJobSpec.schedule', 'Container.name', 'EnvVar.name', 'ContainerPort.containerPort', 'PodSpec.containers', 'LocalObjectReference.name']);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** int64 fields decode as Long objects when the `long` package is present, else as numbers. */
function int64ToNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  return protobuf.util.LongBits.from(value as protobuf.Long).toNumber(false);
}

function scalarToJson(field: protobuf.Field, value: unknown): Json {
  if (field.type === 'bytes') return Buffer.from(value as Uint8Array).toString('base64');
  if (field.type === 'int64') return int64ToNumber(value);
  return value as Json;
}

/** metav1.Time → RFC 3339 with second precision; the zero time is absent (JSON null in Go). */
function timeToJson(msg: protobuf.Message): string | undefined {
  const m = msg as unknown as { seconds?: unknown; nanos?: number };
  const seconds = m.seconds === undefined || m.seconds === null ? 0 : int64ToNumber(m.seconds);
  if (!seconds && !m.nanos) return undefined;
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function isEmptyScalar(v: Json): boolean {
  return v === '' || v === 0 || v === false;
}

function messageToJson(type: protobuf.Type, msg: protobuf.Message): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const field of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(msg, field.name)) continue;
    const raw = (msg as unknown as Record<string, unknown>)[field.name];
    if (raw === null || raw === undefined) continue;
    const key = `${type.name}.${field.name}`;
    const value = valueToJson(field, raw);
    if (value === undefined) continue;
    const empty = Array.isArray(value) ? value.length === 0 : field.map ? Object.keys(value as object).length === 0 : isEmptyScalar(value);
    if (empty && !POINTER_FIELDS.has(key) && !ALWAYS_FIELDS.has(key)) continue;
    out[field.name] = value;
  }
  return out;
}

function valueToJson(field: protobuf.Field, raw: unknown): Json | undefined {
  field.resolve();
  const elementType = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
  const one = (v: unknown): Json | undefined => {
    if (!elementType) return scalarToJson(field, v);
    if (elementType.name === 'Time') return timeToJson(v as protobuf.Message) ?? undefined;
    if (elementType.name === 'Quantity') return (v as { string?: string }).string ?? '';
    return messageToJson(elementType, v as protobuf.Message);
  };
  if (field.map) {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(raw as Record<string, unknown>)) out[k] = one(v) ?? null;
    return out;
  }
  if (field.repeated) return (raw as unknown[]).map((v) => one(v) ?? null);
  return one(raw);
}

function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

function decodeMessage(type: protobuf.Type, bytes: Uint8Array, what: string): protobuf.Message {
  try {
    return type.decode(bytes);
  } catch (err) {
    throw badRequest(`unable to decode ${what} from protobuf: ${(err as Error).message}`);
  }
}

/**
 * Decodes a Kubernetes protobuf body ("k8s\0" + runtime.Unknown) into the object's JSON shape,
 * with apiVersion and kind from the envelope; Secret data comes back base64 as in JSON.
 * Malformed bodies are 400 BadRequest; kinds without a message layout here are 415.
 */
export function decodeProtobufObject(body: Buffer): Record<string, unknown> {
  if (body.length < PROTOBUF_MAGIC.length || !body.subarray(0, PROTOBUF_MAGIC.length).equals(PROTOBUF_MAGIC))
    throw badRequest(`provided data does not appear to be a protobuf message, expected prefix [${[...PROTOBUF_MAGIC].join(' ')}]`);

  const unknown = decodeMessage(lookup('Unknown'), body.subarray(PROTOBUF_MAGIC.length), 'runtime.Unknown') as unknown as {
    typeMeta?: { apiVersion?: string; kind?: string };
    raw?: Uint8Array;
    contentEncoding?: string;
    contentType?: string;
  };
  const apiVersion = unknown.typeMeta?.apiVersion ?? '';
  const kind = unknown.typeMeta?.kind ?? '';
  if (!apiVersion || !kind) throw badRequest('Object \'Kind\' is missing in protobuf body');
  if (unknown.contentEncoding) throw new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - content encoding ${JSON.stringify(unknown.contentEncoding)} is not supported`);

  const messageName = KINDS[`${apiVersion}/${kind}`];
  if (!messageName)
    throw new StatusError(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - kube-sim does not decode protobuf for ${apiVersion}, Kind=${kind}; send it as application/json (protobuf is supported for ${Object.keys(KINDS).join(', ')})`,
    );

  const type = lookup(messageName);
  const message = decodeMessage(type, unknown.raw ?? new Uint8Array(), `${apiVersion}, Kind=${kind}`);
  return { apiVersion, kind, ...messageToJson(type, message) };
}

/**
 * Encodes a JSON-shaped object the way a Kubernetes client would (for tests and tools).
 * Only fields in proto/k8s.proto survive; Secret data is taken as base64.
 */
export function encodeProtobufObject(obj: { apiVersion: string; kind: string; [key: string]: unknown }): Buffer {
  const messageName = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!messageName) throw new Error(`no protobuf layout for ${obj.apiVersion}, Kind=${obj.kind}`);
  const type = lookup(messageName);
  const { apiVersion, kind, ...rest } = obj;
  const raw = type.encode(type.fromObject(toProtoShape(type, rest))).finish();
  const envelope = lookup('Unknown');
  const unknown = envelope.encode(envelope.fromObject({ typeMeta: { apiVersion, kind }, raw, contentEncoding: '', contentType: '' })).finish();
  return Buffer.concat([PROTOBUF_MAGIC, unknown]);
}

/** The inverse of messageToJson's special cases: Time strings, Quantity strings, base64 bytes. */
function toProtoShape(type: protobuf.Type, json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(json)) {
    const field = type.fields[key];
    if (!field || value === null || value === undefined) continue;
    field.resolve();
    const elementType = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    const one = (v: unknown): unknown => {
      if (!elementType) return field.type === 'bytes' ? Buffer.from(String(v), 'base64') : v;
      if (elementType.name === 'Time') return { seconds: Math.floor(Date.parse(String(v)) / 1000), nanos: 0 };
      if (elementType.name === 'Quantity') return { string: String(v) };
      return toProtoShape(elementType, v as Record<string, unknown>);
    };
    if (field.map) out[key] = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, one(v)]));
    else if (field.repeated) out[key] = (value as unknown[]).map(one);
    else out[key] = one(value);
  }
  return out;
}
