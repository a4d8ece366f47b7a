// Object-metadata validation shared by every kind, with kube-apiserver's messages.
import { causes } from './errors.ts';
import { labelKeyProblem, labelValueProblem } from './selectors.ts';
import type { KubeObject, StatusCause } from './types.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Problems with `value` as a DNS-1123 label (namespace names), as messages. */
export function dns1123LabelProblems(value: string): string[] {
  const out: string[] = [];
  if (value.length > 63) out.push('must be no more than 63 characters');
  if (!DNS1123_LABEL.test(value)) out.push(LABEL_MSG);
  return out;
}

export function dns1123SubdomainProblems(value: string): string[] {
  const out: string[] = [];
  if (value.length > 253) out.push('must be no more than 253 characters');
  if (!DNS1123_SUBDOMAIN.test(value)) out.push(SUBDOMAIN_MSG);
  return out;
}

const MAX_ANNOTATIONS_BYTES = 256 * 1024;

/** metadata checks every kind shares; `nameRule` picks the name format. */
export function validateObjectMeta(obj: KubeObject, nameRule: 'subdomain' | 'label' | 'segment' = 'subdomain'): StatusCause[] {
  const out: StatusCause[] = [];
  const m = obj.metadata;
  const name = m.name ?? '';
  if (!name) out.push(causes.required('metadata.name', 'name or generateName is required'));
  else {
    const problems =
      nameRule === 'label' ? dns1123LabelProblems(name) : nameRule === 'subdomain' ? dns1123SubdomainProblems(name) : segmentProblems(name);
    for (const p of problems) out.push(causes.invalid('metadata.name', name, p));
  }
  if (m.generateName) {
    for (const p of dns1123SubdomainProblems(m.generateName.replace(/[-.]+$/, '') + (m.generateName.match(/[-.]$/) ? 'a' : '')))
      out.push(causes.invalid('metadata.generateName', m.generateName, p));
  }
  for (const [k, v] of Object.entries(m.labels ?? {})) {
    const kp = labelKeyProblem(k);
    if (kp) out.push(causes.invalid('metadata.labels', k, kp));
    if (typeof v !== 'string') out.push(causes.invalid(`metadata.labels`, v, 'must be a string'));
    else {
      const vp = labelValueProblem(v);
      if (vp) out.push(causes.invalid('metadata.labels', v, vp));
    }
  }
  let annotationBytes = 0;
  for (const [k, v] of Object.entries(m.annotations ?? {})) {
    const kp = labelKeyProblem(k);
    if (kp) out.push(causes.invalid('metadata.annotations', k, kp));
    annotationBytes += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  if (annotationBytes > MAX_ANNOTATIONS_BYTES) out.push(causes.tooLong('metadata.annotations', MAX_ANNOTATIONS_BYTES));
  const finalizers = m.finalizers ?? [];
  if (!Array.isArray(finalizers)) out.push(causes.invalid('metadata.finalizers', finalizers, 'must be a list'));
  const refs = m.ownerReferences ?? [];
  let controllers = 0;
  refs.forEach((ref, i) => {
    const f = `metadata.ownerReferences[${i}]`;
    if (!ref.apiVersion) out.push(causes.invalid(`${f}.apiVersion`, ref.apiVersion ?? '', 'version must not be empty'));
    if (!ref.kind) out.push(causes.invalid(`${f}.kind`, ref.kind ?? '', 'kind must not be empty'));
    if (!ref.name) out.push(causes.invalid(`${f}.name`, ref.name ?? '', 'name must not be empty'));
    if (!ref.uid) out.push(causes.invalid(`${f}.uid`, ref.uid ?? '', 'uid must not be empty'));
    if (ref.controller) controllers++;
  });
  if (controllers > 1) out.push(causes.invalid('metadata.ownerReferences', refs, 'Only one reference can have Controller set to true'));
  return out;
}

function segmentProblems(name: string): string[] {
  if (name === '.' || name === '..') return [`may not be '${name}'`];
  if (/[/%]/.test(name)) return [`may not contain '${name.includes('/') ? '/' : '%'}'`];
  return [];
}

/** RFC3339 timestamp, second precision, `Z`: how metav1.Time serialises. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** RFC3339 with exactly six fractional digits: metav1.MicroTime. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
