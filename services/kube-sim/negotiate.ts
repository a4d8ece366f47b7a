// Accept negotiation for resource requests, as k8s.io/apiserver's endpoints/handlers/negotiation
// does it: media ranges are tried by q (then specificity) in header order, the first one the
// endpoint can serve wins, and none is a 406. Discovery, /openapi and /version do not negotiate.
//
// kube-sim writes JSON only (contract §1 scope), so the yaml and protobuf ranges are answered
// with JSON; kubectl and client-go decode by the reply's Content-Type.
import { TABLE_CONTENT_TYPE } from './table.ts';
import { StatusError, type KubeObject, type ResourceInfo } from './types.ts';

/** kube-apiserver's serializers for built-in resources, in its order (the 406 message lists them). */
export const SERVED_MEDIA_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];

export const PARTIAL_CONTENT_TYPE = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';
export const PARTIAL_LIST_CONTENT_TYPE = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

/** What a response is written as: the object itself, or a meta.k8s.io/v1 transform of it. */
export type Output = 'Object' | 'Table' | 'PartialObjectMetadata' | 'PartialObjectMetadataList';

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
  params: Map<string, string>;
}

export function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [full = '', ...rest] = part.split(';').map((s) => s.trim());
    if (!full) continue;
    const slash = full.indexOf('/');
    const type = (slash < 0 ? full : full.slice(0, slash)).toLowerCase();
    const subtype = slash < 0 ? '*' : full.slice(slash + 1).toLowerCase();
    const params = new Map<string, string>();
    let q = 1;
    for (const kv of rest) {
      const i = kv.indexOf('=');
      if (i < 0) continue;
      const key = kv.slice(0, i).trim().toLowerCase();
      const value = kv.slice(i + 1).trim();
      if (key === 'q') q = Number.parseFloat(value) || 0;
      else params.set(key, value);
    }
    ranges.push({ type, subtype, q, params });
  }
  // goautoneg's order: higher q first, then concrete before wildcard; otherwise as sent.
  const wild = (r: MediaRange) => (r.type === '*' ? 2 : r.subtype === '*' ? 1 : 0);
  return ranges.sort((a, b) => b.q - a.q || wild(a) - wild(b));
}

/** The Status kube-apiserver sends when it cannot answer in any media type the client accepts. */
export function notAcceptable(message = `only the following media types are accepted: ${SERVED_MEDIA_TYPES.join(', ')}`): StatusError {
  return new StatusError(406, 'NotAcceptable', message);
}

/** What one media range asks of a served type, or undefined when it cannot be served. */
function outputFor(served: string, r: MediaRange): Output | undefined {
  const stream = r.params.get('stream');
  // Only JSON and protobuf have a stream framer, and the only stream schema is "watch".
  if (stream && (stream !== 'watch' || served === 'application/yaml')) return undefined;
  const as = r.params.get('as');
  if (as === undefined && !r.params.has('g') && !r.params.has('v')) return 'Object';
  if (r.params.get('g') !== 'meta.k8s.io' || r.params.get('v') !== 'v1') return undefined;
  switch (as) {
    case 'Table':
      // Table output is JSON only here, as wantsTable has always decided it.
      return served === 'application/json' && (r.subtype === 'json' || r.subtype === '*') ? 'Table' : undefined;
    case 'PartialObjectMetadata':
    case 'PartialObjectMetadataList':
      return as;
    default:
      return undefined;
  }
}

/** The output for a resource request's Accept; throws the 406 when no range can be served. */
export function negotiate(accept: string | undefined): Output {
  if (!accept || !accept.trim()) return 'Object';
  for (const r of parseAccept(accept)) {
    if (r.type === '*' && r.subtype !== '*') continue; // "*/json" is no media range
    for (const served of SERVED_MEDIA_TYPES) {
      const [type, subtype] = served.split('/');
      if (r.type !== '*' && r.type !== type) continue;
      if (r.subtype !== '*' && r.subtype !== subtype) continue;
      const out = outputFor(served, r);
      if (out) return out;
    }
  }
  throw notAcceptable();
}

export function contentTypeFor(out: Output): string {
  switch (out) {
    case 'Table':
      return TABLE_CONTENT_TYPE;
    case 'PartialObjectMetadata':
      return PARTIAL_CONTENT_TYPE;
    case 'PartialObjectMetadataList':
      return PARTIAL_LIST_CONTENT_TYPE;
    default:
      return 'application/json';
  }
}

/** The Go type kube-apiserver names in its transform errors: the internal type of built-ins, unstructured for CRs. */
function goType(info: ResourceInfo, list: boolean): string {
  if (!info.builtin) return list ? '*unstructured.UnstructuredList' : '*unstructured.Unstructured';
  const pkg = info.group === '' || info.group === 'events.k8s.io' ? 'core' : info.group.split('.')[0];
  return `*${pkg}.${list ? info.listKind : info.kind}`;
}

/** Refuses a PartialObjectMetadata transform of the wrong shape, with handlers/response.go's wording. */
export function checkPartialShape(out: Output, info: ResourceInfo, list: boolean): void {
  if (out === 'PartialObjectMetadataList' && !list)
    throw notAcceptable(`you requested PartialObjectMetadataList, but the requested object is not a list (${goType(info, false)})`);
  if (out === 'PartialObjectMetadata' && list)
    throw notAcceptable(`you requested PartialObjectMetadata, but the requested object is a list (${goType(info, true)})`);
}

export function partialObjectMetadata(obj: { metadata?: unknown }): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: (obj.metadata ?? {}) as KubeObject['metadata'] };
}

export function partialObjectMetadataList(items: KubeObject[], metadata: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'PartialObjectMetadataList', apiVersion: 'meta.k8s.io/v1', metadata, items: items.map(partialObjectMetadata) };
}
