// The HTTP layer: routing (contract §1), body decoding, Accept negotiation, Status errors,
// Table output, Warning headers and watch streaming. It knows no port: index.ts listens.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import YAML from 'yaml';
import type { Logger } from '../common/logger.ts';
import { ADMIN_USER, parseResourceVersion, validateFieldManager, type Api, type WriteOptionsKind, type DeleteOptions, type FieldValidation, type RequestContext, type UserInfo } from './api.ts';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, VERSION_INFO } from './discovery.ts';
import { badRequest, MAX_BODY_BYTES, methodNotAllowed, pathNotFound, toStatusError, tooLarge, unsupportedMediaType } from './errors.ts';
import type { Faults } from './faults.ts';
import type { ResourceRegistry } from './resources.ts';
import { admissionWarnings } from './admission.ts';
import { strategyFor } from './builtins.ts';
import type { Store } from './store.ts';
import { duplicateFields } from './duplicate-fields.ts';
import { checkPartialShape, contentTypeFor, negotiate, partialObjectMetadata, partialObjectMetadataList, type Output } from './negotiate.ts';
import { TABLE_CONTENT_TYPE, toTable, type IncludeObject } from './table.ts';
import { groupVersion, StatusError, type KubeObject, type ResourceInfo } from './types.ts';
import type { WatchHub } from './watch.ts';

/** What one API request did, for audit logging (reported when the response is done). */
export interface RequestInfo {
  auditID: string;
  verb: string;
  requestURI: string;
  method: string;
  group?: string;
  version?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  code: number;
  user: UserInfo;
  userAgent?: string;
  sourceIPs: string[];
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  /** The object written (or deleted), when the request wrote one. */
  responseObject?: KubeObject;
}

export type RequestListener = (info: RequestInfo) => void;

/** Optional document producers written elsewhere (OpenAPI, protobuf decoding, SSA). */
export interface ServerPlugins {
  openApiRoot?: (hostPrefix: string) => object;
  openApiGroupVersion?: (gvPath: string) => object | undefined;
  decodeProtobuf?: (buf: Buffer) => unknown;
  patch?: (type: string, target: unknown, patch: unknown) => unknown;
}

export interface ServerDeps {
  api: Api;
  store: Store;
  registry: ResourceRegistry;
  watches: WatchHub;
  faults: Faults;
  log: Logger;
  listeners: Set<RequestListener>;
  plugins: ServerPlugins;
}

interface Route {
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

const PATCH_TYPES = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];
const BODY_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];

function sendJson(res: ServerResponse, code: number, body: unknown, contentType = 'application/json', warnings: string[] = []): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = {
    'content-type': contentType,
    'cache-control': 'no-cache, private',
    'content-length': String(Buffer.byteLength(text)),
    'x-content-type-options': 'nosniff',
  };
  if (warnings.length) headers.warning = warningHeaders(warnings);
  res.writeHead(code, headers).end(text);
}

export function warningHeaders(warnings: string[]): string[] {
  return [...new Set(warnings)].map((w) => `299 - ${JSON.stringify(w.replace(/[\r\n]+/g, ' '))}`);
}

function sendStatus(res: ServerResponse, err: StatusError, warnings: string[] = []): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err.details?.retryAfterSeconds) res.setHeader('retry-after', String(err.details.retryAfterSeconds));
  sendJson(res, err.code, err.toStatus(), 'application/json', warnings);
}

function sendText(res: ServerResponse, code: number, text: string): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(text);
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0].trim().toLowerCase();
}

/** The request body, refusing more than 3 MiB (the rest is drained so the 413 reaches the client). */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        tooBig = true;
        chunks.length = 0;
        if (size > 16 * MAX_BODY_BYTES) req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => (tooBig ? reject(tooLarge()) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

export function parseRoute(pathname: string): Route | 'api' | 'apis' | { discovery: string } | { apiGroup: string } | undefined {
  let segs: string[];
  try {
    segs = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api') {
    if (segs.length === 1) return 'api';
    group = '';
    version = segs[1];
    rest = segs.slice(2);
  } else if (segs[0] === 'apis') {
    if (segs.length === 1) return 'apis';
    if (segs.length === 2) return { apiGroup: segs[1] };
    group = segs[1];
    version = segs[2];
    rest = segs.slice(3);
  } else return undefined;
  if (rest.length === 0) return { discovery: group ? `${group}/${version}` : version };
  if (rest[0] === 'namespaces' && rest.length >= 3 && !(group === '' && rest.length === 3 && (rest[2] === 'status' || rest[2] === 'finalize'))) {
    if (rest.length > 5) return undefined;
    return { group, version, namespace: rest[1], plural: rest[2], name: rest[3], subresource: rest[4] };
  }
  if (rest.length > 3) return undefined;
  return { group, version, plural: rest[0], name: rest[1], subresource: rest[2] };
}

function userFrom(req: IncomingMessage): UserInfo {
  const imp = req.headers['impersonate-user'];
  if (typeof imp === 'string' && imp) {
    const groups = req.headers['impersonate-group'];
    const list = Array.isArray(groups) ? groups : groups ? [groups] : [];
    return { username: imp, groups: [...list, 'system:authenticated'] };
  }
  return ADMIN_USER;
}

function boolParam(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v === 'true' || v === '1';
}

function intParam(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^-?\d+$/.test(v)) throw badRequest(`invalid value for ${name}: ${JSON.stringify(v)}: strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`);
  return Number(v);
}

/** Keys a JSON create/update body wrote twice (JSON.parse kept the last silently); none looked for under Ignore. */
function jsonDuplicates(contentType: string | undefined, raw: Buffer, ctx: RequestContext): string[] {
  if (ctx.fieldValidation === 'Ignore' || (mediaType(contentType) || 'application/json') !== 'application/json') return [];
  return duplicateFields(raw.toString('utf8'));
}

function requestContext(req: IncomingMessage, q: URLSearchParams, user: UserInfo, options: WriteOptionsKind): RequestContext {
  const dry = q.getAll('dryRun');
  for (const d of dry) if (d !== 'All') throw badRequest(`Invalid dry run value: "${d}". Valid values are: "All"`);
  const fv = q.get('fieldValidation') ?? 'Warn';
  if (!['Strict', 'Warn', 'Ignore'].includes(fv))
    throw badRequest(`fieldValidation must be one of Ignore, Warn, or Strict, got ${JSON.stringify(fv)}`);
  const fieldManager = q.get('fieldManager') ?? undefined;
  validateFieldManager(fieldManager, options);
  return {
    user,
    userAgent: req.headers['user-agent'],
    dryRun: dry.length > 0,
    fieldManager,
    fieldValidation: fv as FieldValidation,
    force: boolParam(q, 'force'),
    warnings: [],
  };
}

export function createApiHandler(deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { api, registry, log } = deps;

  function decodeBody(info: ResourceInfo | undefined, contentType: string | undefined, buf: Buffer, allowed: string[]): unknown {
    const mt = mediaType(contentType) || 'application/json';
    if (!allowed.includes(mt)) throw unsupportedMediaType(allowed);
    if (mt === 'application/vnd.kubernetes.protobuf') {
      if (!deps.plugins.decodeProtobuf) throw unsupportedMediaType(allowed.filter((t) => t !== mt));
      return deps.plugins.decodeProtobuf(buf);
    }
    const text = buf.toString('utf8');
    if (mt === 'application/yaml' || mt === 'application/apply-patch+yaml') {
      try {
        return YAML.parse(text);
      } catch (err) {
        throw badRequest(`error converting YAML to JSON: yaml: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    if (text.trim() === '') throw badRequest(`the request body is empty; expected a ${info?.kind ?? 'JSON'} object`);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
    }
  }

  /** A response object in the negotiated output; Tables are for GET only, so a write answers them with JSON. */
  function respondObject(res: ServerResponse, info: ResourceInfo, out: Output, code: number, obj: KubeObject, warnings: string[]): void {
    if (out === 'PartialObjectMetadata' || out === 'PartialObjectMetadataList') {
      // kube-apiserver never transforms a Status (a delete's Success).
      if (obj.kind === 'Status') return sendJson(res, code, obj, 'application/json', warnings);
      const list = obj.kind === info.listKind;
      checkPartialShape(out, info, list);
      const body = list ? partialObjectMetadataList(obj.items as KubeObject[], obj.metadata) : partialObjectMetadata(obj);
      return sendJson(res, code, body, contentTypeFor(out), warnings);
    }
    sendJson(res, code, obj, 'application/json', warnings);
  }

  async function handleResource(req: IncomingMessage, res: ServerResponse, url: URL, route: Route, rec: RequestInfo): Promise<void> {
    const q = url.searchParams;
    const info = registry.lookup(route.group, route.version, route.plural);
    if (!info) throw pathNotFound();
    const { name, subresource = '' } = route;
    let namespace = route.namespace;
    if (!info.namespaced && namespace !== undefined) throw pathNotFound();
    if (subresource && !(subresource === 'status' && info.statusSubresource) && !(subresource === 'finalize' && info.resource === 'namespaces' && info.group === ''))
      throw pathNotFound();
    if (info.namespaced && namespace === undefined && name !== undefined) throw pathNotFound();
    const method = req.method ?? 'GET';
    const isCollection = name === undefined;
    const watch = method === 'GET' && isCollection && boolParam(q, 'watch');
    rec.verb = watch
      ? 'watch'
      : isCollection
        ? ({ GET: 'list', POST: 'create', DELETE: 'deletecollection' } as Record<string, string>)[method] ?? method.toLowerCase()
        : ({ GET: 'get', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } as Record<string, string>)[method] ?? method.toLowerCase();
    Object.assign(rec, { group: info.group, version: info.version, resource: info.resource, subresource: subresource || undefined, namespace, name });
    if (subresource === 'status' && !['get', 'update', 'patch'].includes(rec.verb)) throw methodNotAllowed();
    if (subresource === 'finalize' && rec.verb !== 'update') throw methodNotAllowed();
    if (!info.verbs.includes(rec.verb) && !(subresource && ['get', 'update', 'patch'].includes(rec.verb))) throw methodNotAllowed();
    // Across all namespaces a namespaced resource can only be listed and watched.
    if (info.namespaced && namespace === undefined && !['list', 'watch'].includes(rec.verb)) throw methodNotAllowed();

    await deps.faults.beforeRequest(info.resource);
    // Negotiated before any work, as kube-apiserver's handlers do: an Accept with nothing servable
    // writes nothing. (A PartialObjectMetadata of the wrong shape shows only when the answer is
    // built, after a write, as there.)
    const out = negotiate(req.headers.accept);

    const user = rec.user;
    switch (rec.verb) {
      case 'get': {
        const obj = api.get(info, namespace, name!);
        if (out === 'Table') {
          const table = toTable([obj], info, { resourceVersion: obj.metadata.resourceVersion ?? '', includeObject: (q.get('includeObject') as IncludeObject) ?? undefined });
          return sendJson(res, 200, table, TABLE_CONTENT_TYPE);
        }
        return respondObject(res, info, out, 200, obj, []);
      }
      case 'list': {
        const result = api.list(info, namespace, {
          labelSelector: q.get('labelSelector') ?? undefined,
          fieldSelector: q.get('fieldSelector') ?? undefined,
          limit: intParam(q, 'limit'),
          continue: q.get('continue') ?? undefined,
          resourceVersion: q.get('resourceVersion') ?? undefined,
          resourceVersionMatch: q.get('resourceVersionMatch') ?? undefined,
        });
        if (out === 'Table') {
          const table = toTable(result.items, info, {
            resourceVersion: result.resourceVersion,
            continue: result.continue,
            remainingItemCount: result.remainingItemCount,
            includeObject: (q.get('includeObject') as IncludeObject) ?? undefined,
          });
          return sendJson(res, 200, table, TABLE_CONTENT_TYPE);
        }
        const metadata: Record<string, unknown> = { resourceVersion: result.resourceVersion };
        if (result.continue) metadata.continue = result.continue;
        if (result.remainingItemCount !== undefined) metadata.remainingItemCount = result.remainingItemCount;
        if (out === 'PartialObjectMetadata' || out === 'PartialObjectMetadataList') {
          checkPartialShape(out, info, true);
          return sendJson(res, 200, partialObjectMetadataList(result.items, metadata), contentTypeFor(out));
        }
        // kube-apiserver leaves TypeMeta off built-in list items, keeps it on custom resources.
        const items = info.builtin ? result.items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest) : result.items;
        return sendJson(res, 200, { kind: info.listKind, apiVersion: groupVersion(info), metadata, items });
      }
      case 'watch': {
        const selectors = api.parseSelectors(info, { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined });
        const rvParam = q.get('resourceVersion') ?? '';
        const sendInitialEvents = boolParam(q, 'sendInitialEvents');
        if (q.has('sendInitialEvents') && (q.get('resourceVersionMatch') !== 'NotOlderThan' || !boolParam(q, 'allowWatchBookmarks')))
          throw new StatusError(422, 'Invalid', 'ListOptions.meta.k8s.io "" is invalid: sendInitialEvents: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks to true', {
            group: 'meta.k8s.io',
            kind: 'ListOptions',
          });
        let resourceVersion = rvParam === '' || rvParam === '0' ? undefined : parseResourceVersion(rvParam);
        if (sendInitialEvents) resourceVersion = undefined;
        const timeoutSeconds = intParam(q, 'timeoutSeconds');
        // Every event carries one object, so only PartialObjectMetadata fits (checked before the 200).
        if (out === 'PartialObjectMetadata' || out === 'PartialObjectMetadataList') checkPartialShape(out, info, false);
        deps.watches.serve(deps.store, api, req, res, {
          info,
          namespace,
          selectors,
          resourceVersion,
          allowBookmarks: boolParam(q, 'allowWatchBookmarks'),
          sendInitialEvents,
          timeoutSeconds: timeoutSeconds !== undefined && timeoutSeconds > 0 ? timeoutSeconds : undefined,
          output: out === 'PartialObjectMetadataList' ? 'Object' : out, // the List form was refused just above
          includeObject: (q.get('includeObject') as IncludeObject) ?? undefined,
        });
        rec.code = 200;
        return;
      }
      case 'create': {
        const ctx = requestContext(req, q, user, 'CreateOptions');
        const raw = await readBody(req);
        const body = decodeBody(info, req.headers['content-type'], raw, BODY_TYPES);
        ctx.duplicateFields = jsonDuplicates(req.headers['content-type'], raw, ctx);
        const obj = await api.create(ctx, info, namespace, body, subresource);
        rec.responseObject = obj;
        return respondObject(res, info, out, 201, obj, ctx.warnings);
      }
      case 'update': {
        const ctx = requestContext(req, q, user, 'UpdateOptions');
        const raw = await readBody(req);
        const body = decodeBody(info, req.headers['content-type'], raw, BODY_TYPES);
        ctx.duplicateFields = jsonDuplicates(req.headers['content-type'], raw, ctx);
        const obj = await api.retryConcurrent(() => api.update(ctx, info, namespace, name!, body, subresource));
        rec.responseObject = obj;
        return respondObject(res, info, out, 200, obj, ctx.warnings);
      }
      case 'patch': {
        const ctx = requestContext(req, q, user, 'PatchOptions');
        const ct = mediaType(req.headers['content-type']);
        const allowed = info.builtin ? PATCH_TYPES : PATCH_TYPES.filter((t) => t !== 'application/strategic-merge-patch+json');
        const body = decodeBody(info, ct, await readBody(req), allowed);
        if (ct === 'application/apply-patch+yaml') {
          if (!ctx.fieldManager) throw badRequest('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch');
          const { object, created } = await api.retryConcurrent(() => api.apply(ctx, info, namespace, name!, body, subresource));
          rec.responseObject = object;
          return respondObject(res, info, out, created ? 201 : 200, object, ctx.warnings);
        }
        if (ctx.force) throw badRequest('force is only valid for apply patch');
        const patchWith = deps.plugins.patch;
        if (!patchWith) throw unsupportedMediaType([]);
        const obj = await api.retryConcurrent(async () => {
          const current = api.get(info, namespace, name!);
          const patched = patchWith(ct, current, body) as KubeObject;
          if (patched === null || typeof patched !== 'object' || Array.isArray(patched)) throw badRequest('the patch produced something that is not an object');
          const stored = api.peek(info, namespace, name!)!;
          return api.writeUpdate(ctx, info, stored, api.decodeForPatch(info, patched), subresource);
        });
        rec.responseObject = obj;
        return respondObject(res, info, out, 200, obj, ctx.warnings);
      }
      case 'delete': {
        const ctx = requestContext(req, q, user, 'DeleteOptions');
        const opts = await deleteOptions(req, q, ctx);
        const { object, deleted } = await api.retryConcurrent(() => api.delete(ctx, info, namespace, name!, opts));
        rec.responseObject = object;
        if (deleted && !strategyFor(info).returnsDeletedObject) {
          const details: Record<string, unknown> = { name, kind: info.resource, uid: object.metadata.uid };
          if (info.group) details.group = info.group;
          return respondObject(res, info, out, 200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details }, ctx.warnings);
        }
        return respondObject(res, info, out, 200, object, ctx.warnings);
      }
      case 'deletecollection': {
        const ctx = requestContext(req, q, user, 'DeleteOptions');
        const opts = await deleteOptions(req, q, ctx);
        const items = await api.deleteCollection(ctx, info, namespace, { labelSelector: q.get('labelSelector') ?? undefined, fieldSelector: q.get('fieldSelector') ?? undefined }, opts);
        return respondObject(res, info, out, 200, { kind: info.listKind, apiVersion: groupVersion(info), metadata: {}, items }, ctx.warnings);
      }
      default:
        throw methodNotAllowed();
    }
  }

  async function deleteOptions(req: IncomingMessage, q: URLSearchParams, ctx: RequestContext): Promise<DeleteOptions> {
    const buf = await readBody(req);
    let body: Record<string, any> = {};
    if (buf.length && buf.toString('utf8').trim()) {
      const parsed = decodeBody(undefined, req.headers['content-type'], buf, BODY_TYPES);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) body = parsed as Record<string, any>;
      else throw badRequest('DeleteOptions must be a JSON object');
    }
    if (Array.isArray(body.dryRun) && body.dryRun.length) {
      for (const d of body.dryRun) if (d !== 'All') throw badRequest(`Invalid dry run value: "${d}". Valid values are: "All"`);
      ctx.dryRun = true;
    }
    const qp = q.get('propagationPolicy');
    const qo = q.get('orphanDependents');
    return {
      propagationPolicy: (qp ?? body.propagationPolicy) || undefined,
      orphanDependents: qo !== null ? qo === 'true' : body.orphanDependents,
      gracePeriodSeconds: intParam(q, 'gracePeriodSeconds') ?? body.gracePeriodSeconds,
      preconditions: body.preconditions ?? undefined,
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse, rec: RequestInfo): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://kube-sim');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    switch (path) {
      case '/healthz':
      case '/livez':
      case '/readyz':
        return sendText(res, 200, 'ok');
      case '/version':
        return sendJson(res, 200, VERSION_INFO);
      case '/openapi/v2':
        throw pathNotFound();
      case '/openapi/v3': {
        if (!deps.plugins.openApiRoot) throw pathNotFound();
        return sendJson(res, 200, deps.plugins.openApiRoot(''));
      }
    }
    if (path.startsWith('/openapi/v3/')) {
      const doc = deps.plugins.openApiGroupVersion?.(path.slice('/openapi/v3/'.length));
      if (!doc) throw pathNotFound();
      return sendJson(res, 200, doc);
    }
    const route = parseRoute(path);
    if (!route) throw pathNotFound();
    if (route === 'api' || route === 'apis' || 'discovery' in route || 'apiGroup' in route) {
      if (method !== 'GET') throw methodNotAllowed();
      rec.verb = 'get';
      await deps.faults.beforeRequest(undefined);
      if (route === 'api') return sendJson(res, 200, apiVersions(req.headers.host ?? '127.0.0.1'));
      if (route === 'apis') return sendJson(res, 200, apiGroupList(registry));
      if ('apiGroup' in route) {
        const g = apiGroup(registry, route.apiGroup);
        if (!g) throw pathNotFound();
        return sendJson(res, 200, g);
      }
      const doc = apiResourceList(registry, route.discovery);
      if (!doc) throw pathNotFound();
      return sendJson(res, 200, doc);
    }
    return handleResource(req, res, url, route, rec);
  }

  return (req, res) => {
    const received = new Date();
    const rec: RequestInfo = {
      auditID: randomUUID(),
      verb: (req.method ?? 'GET').toLowerCase(),
      requestURI: req.url ?? '/',
      method: req.method ?? 'GET',
      code: 0,
      user: userFrom(req),
      userAgent: req.headers['user-agent'],
      sourceIPs: [req.socket.remoteAddress ?? ''],
      requestReceivedTimestamp: received.toISOString(),
      stageTimestamp: '',
    };
    res.on('close', () => {
      rec.code ||= res.statusCode;
      rec.stageTimestamp = new Date().toISOString();
      for (const l of deps.listeners) {
        try {
          l(rec);
        } catch (err) {
          log.warn({ err }, 'request listener failed');
        }
      }
    });
    handle(req, res, rec).catch((err: unknown) => {
      const status = toStatusError(err);
      if (status.code >= 500 && !(err instanceof StatusError)) log.error({ err, url: req.url, method: req.method }, 'request failed');
      rec.code = status.code;
      // Drain an unread body so the client reads the Status rather than a reset.
      if (!req.complete) req.resume();
      sendStatus(res, status, admissionWarnings(err));
    });
  };
}
