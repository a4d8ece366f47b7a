// Constructors for the Status errors kube-apiserver returns, with its exact wording
// (clients and people match on these messages).
import { StatusError, qualifiedResource, type ResourceInfo, type StatusCause } from './types.ts';

type Res = Pick<ResourceInfo, 'group' | 'resource'>;

function details(r: Res, name: string): { name: string; group?: string; kind: string } {
  return r.group ? { name, group: r.group, kind: r.resource } : { name, kind: r.resource };
}

export function notFound(r: Res, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, details(r, name));
}

export function namespaceNotFound(namespace: string): StatusError {
  return new StatusError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' });
}

/** An unknown path or resource. */
export function pathNotFound(): StatusError {
  return new StatusError(404, 'NotFound', 'the server could not find the requested resource', {});
}

export function alreadyExists(r: Res, name: string): StatusError {
  return new StatusError(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`, details(r, name));
}

export function conflict(r: Res, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): StatusError {
  return new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": ${why}`, details(r, name));
}

/** `field: message` as kube-apiserver joins a cause for the Status message. */
export function causeText(c: StatusCause): string {
  return c.field ? `${c.field}: ${c.message}` : c.message;
}

export function invalid(r: Pick<ResourceInfo, 'group' | 'kind'>, name: string, causes: StatusCause[]): StatusError {
  const kind = r.group ? `${r.kind}.${r.group}` : r.kind;
  const texts = causes.map(causeText);
  const err = texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`;
  const d = r.group ? { name, group: r.group, kind: r.kind, causes } : { name, kind: r.kind, causes };
  return new StatusError(422, 'Invalid', `${kind} "${name}" is invalid: ${err}`, d);
}

export function cause(reason: string, field: string, message: string): StatusCause {
  return { reason, message, field };
}

export const causes = {
  required: (field: string, detail = '') => cause('FieldValueRequired', field, detail ? `Required value: ${detail}` : 'Required value'),
  invalid: (field: string, value: unknown, detail: string) => cause('FieldValueInvalid', field, `Invalid value: ${formatValue(value)}: ${detail}`),
  forbidden: (field: string, detail: string) => cause('FieldValueForbidden', field, `Forbidden: ${detail}`),
  notSupported: (field: string, value: unknown, supported: string[]) =>
    cause('FieldValueNotSupported', field, `Unsupported value: ${formatValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`),
  tooLong: (field: string, max: number) => cause('FieldValueTooLong', field, `Too long: must have at most ${max} bytes`),
  duplicate: (field: string, value: unknown) => cause('FieldValueDuplicate', field, `Duplicate value: ${formatValue(value)}`),
};

/** Values as Go's field errors print them: strings quoted, numbers bare, objects as `object`. */
export function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return `[]interface {}{...}`;
  return '"object"';
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

export function forbidden(r: Res, name: string, why: string): StatusError {
  return new StatusError(403, 'Forbidden', `${qualifiedResource(r)} "${name}" is forbidden: ${why}`, details(r, name));
}

export function methodNotAllowed(message = 'the server does not allow this method on the requested resource'): StatusError {
  return new StatusError(405, 'MethodNotAllowed', message, {});
}

export function unsupportedMediaType(accepted: string[]): StatusError {
  return new StatusError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`, {});
}

export const MAX_BODY_BYTES = 3 * 1024 * 1024;

export function tooLarge(): StatusError {
  return new StatusError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${MAX_BODY_BYTES}`, {});
}

export function expired(message: string): StatusError {
  return new StatusError(410, 'Expired', message);
}

export function tooOldResourceVersion(requested: number, current: number): StatusError {
  return expired(`too old resource version: ${requested} (${current})`);
}

export function internalError(message: string): StatusError {
  return new StatusError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] });
}

/** Any thrown value as a StatusError (unexpected exceptions become 500s). */
export function toStatusError(err: unknown): StatusError {
  if (err instanceof StatusError) return err;
  return internalError(err instanceof Error ? err.message : String(err));
}
