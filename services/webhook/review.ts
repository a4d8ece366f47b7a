// The AdmissionReview wire format (admission.k8s.io/v1): checking what arrives,
// and building what goes back. Everything here treats the body as untrusted JSON.

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';
const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;
export type Operation = (typeof OPERATIONS)[number];

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** The parts of `request` the validators use; the rest is ignored. */
export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  operation: Operation;
  subResource: string;
  name: string;
  namespace: string;
  dryRun: boolean;
  object: unknown;
  oldObject: unknown;
}

/** What a validator decides. A denial's message names the rule and the field, never a secret value. */
export type Decision =
  | { allowed: true; warnings?: string[] }
  | { allowed: false; message: string; code?: number; warnings?: string[] };

export type Parsed = { ok: true; request: AdmissionRequest } | { ok: false; problem: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Check the envelope; the problem names the first thing that is missing or wrong. */
export function parseReview(body: unknown): Parsed {
  if (!isRecord(body)) return { ok: false, problem: 'body must be a JSON object (an AdmissionReview)' };
  if (Object.keys(body).length === 0) return { ok: false, problem: 'body is empty; expected an AdmissionReview' };
  if (body.kind !== 'AdmissionReview') return { ok: false, problem: 'kind must be "AdmissionReview"' };
  if (body.apiVersion !== ADMISSION_API_VERSION) return { ok: false, problem: `apiVersion must be "${ADMISSION_API_VERSION}"` };
  const r = body.request;
  if (r === undefined || r === null) return { ok: false, problem: 'request is missing' };
  if (!isRecord(r)) return { ok: false, problem: 'request must be an object' };
  if (typeof r.uid !== 'string' || r.uid === '') return { ok: false, problem: 'request.uid is missing (a non-empty string)' };
  const k = r.kind;
  if (!isRecord(k) || typeof k.kind !== 'string' || k.kind === '') {
    return { ok: false, problem: 'request.kind is missing (an object with group, version and kind)' };
  }
  if (typeof r.operation !== 'string' || !(OPERATIONS as readonly string[]).includes(r.operation)) {
    return { ok: false, problem: `request.operation is missing (one of ${OPERATIONS.join(', ')})` };
  }
  return {
    ok: true,
    request: {
      uid: r.uid,
      kind: { group: typeof k.group === 'string' ? k.group : '', version: typeof k.version === 'string' ? k.version : '', kind: k.kind },
      operation: r.operation as Operation,
      subResource: typeof r.subResource === 'string' ? r.subResource : '',
      name: typeof r.name === 'string' ? r.name : '',
      namespace: typeof r.namespace === 'string' ? r.namespace : '',
      dryRun: r.dryRun === true,
      object: r.object ?? null,
      oldObject: r.oldObject ?? null,
    },
  };
}

/** The AdmissionReview sent back: always echoes the uid. */
export function reviewResponse(uid: string, decision: Decision): object {
  const response: Record<string, unknown> = { uid, allowed: decision.allowed };
  if (!decision.allowed) response.status = { code: decision.code ?? 403, reason: 'Forbidden', message: decision.message };
  if (decision.warnings?.length) response.warnings = decision.warnings;
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

/** A Kubernetes-style Status body for HTTP errors (400, 405, 413, 415, 500). */
export function statusBody(code: number, reason: string, message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}
