// OpenAPI v3 as kube-apiserver publishes it (contract §2): a root naming one document per
// group-version, and per-GV documents with every resource's paths and the kinds' schemas.
// kubectl needs this to `apply` at all: it looks for a PATCH operation carrying the kind's
// `x-kubernetes-group-version-kind` and a `fieldValidation` parameter, then leaves schema
// checks to the server (fieldValidation=Strict); `kubectl explain` reads components.schemas.
import { createHash } from 'node:crypto';
import { API_VERSION_DESCRIPTION, KIND_DESCRIPTION, builtinComponents, builtinSchemaId, metaSchemaId, type NamedSchema } from './builtin-schemas.ts';
import { groupVersion, type ResourceInfo } from './types.ts';

const REF = '#/components/schemas/';
const VERSION = 'v1.32.4';

/** `api/v1` or `apis/<group>/<version>`: the key under /openapi/v3. */
export function gvPath(r: Pick<ResourceInfo, 'group' | 'version'>): string {
  return r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`;
}

function parseGvPath(path: string): { group: string; version: string } | undefined {
  const p = path.replace(/^\/+|\/+$/g, '');
  let m = /^api\/([^/]+)$/.exec(p);
  if (m) return { group: '', version: m[1]! };
  m = /^apis\/([^/]+)\/([^/]+)$/.exec(p);
  if (m) return { group: m[1]!, version: m[2]! };
  return undefined;
}

function pascal(s: string): string {
  return s.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');
}

/** A custom kind's component id, as kube-apiserver names it: reversed group, version, kind. */
function customSchemaId(r: Pick<ResourceInfo, 'group' | 'version'>, kind: string): string {
  if (!r.group) return `io.k8s.api.core.${r.version}.${kind}`;
  return [...r.group.split('.').reverse(), r.version, kind].join('.');
}

const ref = (id: string) => ({ $ref: REF + id });

// ---- parameters -------------------------------------------------------------

function query(name: string, description: string, type: 'string' | 'integer' | 'boolean' = 'string') {
  return { name, in: 'query', description, schema: { type, uniqueItems: true } };
}

const P = {
  name: (kind: string) => ({ name: 'name', in: 'path', description: `name of the ${kind}`, required: true, schema: { type: 'string', uniqueItems: true } }),
  namespace: { name: 'namespace', in: 'path', description: 'object name and auth scope, such as for teams and projects', required: true, schema: { type: 'string', uniqueItems: true } },
  pretty: query('pretty', "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
  dryRun: query('dryRun', 'When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed'),
  fieldManager: query('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.'),
  fieldValidation: query('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.'),
  force: query('force', 'Force is going to "force" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.', 'boolean'),
  gracePeriodSeconds: query('gracePeriodSeconds', 'The duration in seconds before the object should be deleted.', 'integer'),
  propagationPolicy: query('propagationPolicy', "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
  orphanDependents: query('orphanDependents', 'Deprecated: please use the PropagationPolicy.', 'boolean'),
  list: [
    query('allowWatchBookmarks', 'allowWatchBookmarks requests watch events with type "BOOKMARK".', 'boolean'),
    query('continue', 'The continue option should be set when retrieving more results from the server.'),
    query('fieldSelector', 'A selector to restrict the list of returned objects by their fields. Defaults to everything.'),
    query('labelSelector', 'A selector to restrict the list of returned objects by their labels. Defaults to everything.'),
    query('limit', 'limit is a maximum number of responses to return for a list call.', 'integer'),
    query('resourceVersion', 'resourceVersion sets a constraint on what resource versions a request may be served from.'),
    query('resourceVersionMatch', 'resourceVersionMatch determines how resourceVersion is applied to list calls.'),
    query('sendInitialEvents', '`sendInitialEvents=true` may be set together with `watch=true`.', 'boolean'),
    query('timeoutSeconds', 'Timeout for the list/watch call.', 'integer'),
    query('watch', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.', 'boolean'),
  ],
};

const JSON_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];

function content(schema: object, types = JSON_TYPES) {
  return Object.fromEntries(types.map((t) => [t, { schema }]));
}

function response(description: string, schema: object) {
  return { description, content: content(schema) };
}

const UNAUTHORIZED = { 401: { description: 'Unauthorized' } };

// ---- documents ----------------------------------------------------------------

interface Built {
  doc: Record<string, unknown>;
  hash: string;
}

const cache = new Map<string, Built>();
const CACHE_LIMIT = 64;

function kindSchemaFor(r: ResourceInfo, schemas: Record<string, NamedSchema>): string {
  if (r.builtin) {
    const id = builtinSchemaId(r.group, r.version, r.kind);
    if (id) {
      Object.assign(schemas, builtinComponents([id]));
      return id;
    }
  }
  const id = customSchemaId(r, r.kind);
  const metaId = metaSchemaId('ObjectMeta');
  if (metaId) Object.assign(schemas, builtinComponents([metaId]));
  const crd = (r.schema ? structuredClone(r.schema) : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }) as NamedSchema;
  const properties: Record<string, NamedSchema> = { ...(crd.properties as Record<string, NamedSchema> | undefined ?? {}) };
  properties.apiVersion = { type: 'string', description: API_VERSION_DESCRIPTION };
  properties.kind = { type: 'string', description: KIND_DESCRIPTION };
  properties.metadata = metaId
    ? { allOf: [ref(metaId)], description: "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata" }
    : { type: 'object' };
  schemas[id] = {
    ...crd,
    type: 'object',
    properties,
    'x-kubernetes-group-version-kind': [{ group: r.group, version: r.version, kind: r.kind }],
  };
  return id;
}

function listSchemaFor(r: ResourceInfo, kindId: string, schemas: Record<string, NamedSchema>): string {
  const id = r.builtin ? kindId.replace(/\.[^.]+$/, `.${r.listKind}`) : customSchemaId(r, r.listKind);
  const listMetaId = metaSchemaId('ListMeta');
  if (listMetaId) Object.assign(schemas, builtinComponents([listMetaId]));
  schemas[id] = {
    type: 'object',
    description: `${r.listKind} is a list of ${r.kind}`,
    required: ['items'],
    properties: {
      apiVersion: { type: 'string', description: API_VERSION_DESCRIPTION },
      items: { type: 'array', description: `List of ${r.resource}.`, items: ref(kindId) },
      kind: { type: 'string', description: KIND_DESCRIPTION },
      metadata: listMetaId ? { allOf: [ref(listMetaId)], description: "Standard list metadata." } : { type: 'object' },
    },
    'x-kubernetes-group-version-kind': [{ group: r.group, version: r.version, kind: r.listKind }],
  };
  return id;
}

function buildDocument(group: string, version: string, resources: ResourceInfo[]): Record<string, unknown> {
  const schemas: Record<string, NamedSchema> = {};
  const paths: Record<string, Record<string, unknown>> = {};
  const prefix = group ? `/apis/${group}/${version}` : `/api/${version}`;
  const gvName = group ? pascal(group.replace(/\.k8s\.io$/, '')) + pascal(version) : `Core${pascal(version)}`;
  const tag = group ? `${group.replace(/\.k8s\.io$/, '').replace(/\./g, '')}_${version}` : `core_${version}`;
  const statusId = metaSchemaId('Status');
  const deleteOptionsId = metaSchemaId('DeleteOptions');
  for (const id of [statusId, deleteOptionsId]) if (id) Object.assign(schemas, builtinComponents([id]));
  const statusRef = statusId ? ref(statusId) : { type: 'object' };
  schemas['io.k8s.apimachinery.pkg.apis.meta.v1.Patch'] = { type: 'object', description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.' };

  for (const r of resources) {
    const kindId = kindSchemaFor(r, schemas);
    const listId = listSchemaFor(r, kindId, schemas);
    const gvk = { group: r.group, version: r.version, kind: r.kind };
    const ns = r.namespaced ? 'Namespaced' : '';
    const has = (verb: string) => r.verbs.includes(verb);
    const op = (action: string, verb: string, summary: string, extra: Record<string, unknown>) => ({
      tags: [tag],
      description: summary,
      operationId: `${verb}${gvName}${ns}${r.kind}${extra.operationSuffix ?? ''}`,
      ...Object.fromEntries(Object.entries(extra).filter(([k]) => k !== 'operationSuffix')),
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
    });
    const writeParams = [P.dryRun, P.fieldManager, P.fieldValidation];
    const body = { content: content(ref(kindId), ['*/*']), required: true };
    const patchBody = {
      content: Object.fromEntries(
        ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', ...(r.builtin ? ['application/strategic-merge-patch+json'] : [])]
          .map((t) => [t, { schema: ref('io.k8s.apimachinery.pkg.apis.meta.v1.Patch') }]),
      ),
      required: true,
    };
    const objectResponses = { 200: response('OK', ref(kindId)), 201: response('Created', ref(kindId)), ...UNAUTHORIZED };

    const collection = r.namespaced ? `${prefix}/namespaces/{namespace}/${r.resource}` : `${prefix}/${r.resource}`;
    const item = `${collection}/{name}`;
    const scopeParams = r.namespaced ? [P.namespace, P.pretty] : [P.pretty];

    const coll: Record<string, unknown> = { parameters: scopeParams };
    if (has('list')) coll.get = op('list', 'list', `list or watch objects of kind ${r.kind}`, { parameters: P.list, responses: { 200: response('OK', ref(listId)), ...UNAUTHORIZED } });
    if (has('create')) coll.post = op('post', 'create', `create a ${r.kind}`, { parameters: writeParams, requestBody: body, responses: { ...objectResponses, 202: response('Accepted', ref(kindId)) } });
    if (has('deletecollection')) {
      coll.delete = op('deletecollection', 'deletecollection', `delete collection of ${r.kind}`, {
        parameters: [...P.list, P.dryRun, P.gracePeriodSeconds, P.orphanDependents, P.propagationPolicy],
        responses: { 200: response('OK', statusRef), ...UNAUTHORIZED },
      });
    }
    paths[collection] = coll;

    const one: Record<string, unknown> = { parameters: [P.name(r.kind), ...scopeParams] };
    if (has('get')) one.get = op('get', 'read', `read the specified ${r.kind}`, { responses: { 200: response('OK', ref(kindId)), ...UNAUTHORIZED } });
    if (has('update')) one.put = op('put', 'replace', `replace the specified ${r.kind}`, { parameters: writeParams, requestBody: body, responses: objectResponses });
    if (has('patch')) one.patch = op('patch', 'patch', `partially update the specified ${r.kind}`, { parameters: [...writeParams, P.force], requestBody: patchBody, responses: objectResponses });
    if (has('delete')) {
      one.delete = op('delete', 'delete', `delete a ${r.kind}`, {
        parameters: [P.dryRun, P.gracePeriodSeconds, P.orphanDependents, P.propagationPolicy],
        responses: { 200: response('OK', r.builtin ? statusRef : ref(kindId)), 202: response('Accepted', r.builtin ? statusRef : ref(kindId)), ...UNAUTHORIZED },
      });
    }
    paths[item] = one;

    if (r.statusSubresource) {
      paths[`${item}/status`] = {
        parameters: [P.name(r.kind), ...scopeParams],
        get: op('get', 'read', `read status of the specified ${r.kind}`, { operationSuffix: 'Status', responses: { 200: response('OK', ref(kindId)), ...UNAUTHORIZED } }),
        put: op('put', 'replace', `replace status of the specified ${r.kind}`, { operationSuffix: 'Status', parameters: writeParams, requestBody: body, responses: objectResponses }),
        patch: op('patch', 'patch', `partially update status of the specified ${r.kind}`, { operationSuffix: 'Status', parameters: [...writeParams, P.force], requestBody: patchBody, responses: objectResponses }),
      };
    }
    if (r.namespaced && has('list')) {
      paths[`${prefix}/${r.resource}`] = {
        parameters: [P.pretty],
        get: op('list', 'list', `list or watch objects of kind ${r.kind}`, { operationSuffix: 'ForAllNamespaces', parameters: P.list, responses: { 200: response('OK', ref(listId)), ...UNAUTHORIZED } }),
      };
    }
  }

  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: VERSION },
    paths,
    components: {
      schemas,
      securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } },
    },
  };
}

function servedIn(group: string, version: string, resources: ResourceInfo[]): ResourceInfo[] {
  return resources
    .filter((r) => r.group === group && r.version === version && !r.resource.includes('/'))
    .sort((a, b) => a.resource.localeCompare(b.resource));
}

/** The GV document and its hash (changes whenever the document does); undefined when nothing is served there. */
export function openApiV3Document(path: string, resources: ResourceInfo[]): Built | undefined {
  const gv = parseGvPath(path);
  if (!gv) return undefined;
  const mine = servedIn(gv.group, gv.version, resources);
  if (mine.length === 0) return undefined;
  const key = `${gv.group}/${gv.version}\u0000${JSON.stringify(mine)}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const doc = buildDocument(gv.group, gv.version, mine);
  const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').toUpperCase();
  if (cache.size >= CACHE_LIMIT) cache.clear();
  const built = { doc, hash };
  cache.set(key, built);
  return built;
}

/** `GET /openapi/v3/<path>`: the GV document, or undefined (404). */
export function openApiV3GroupVersion(path: string, resources: ResourceInfo[]): object | undefined {
  return openApiV3Document(path, resources)?.doc;
}

/** `GET /openapi/v3`: every served group-version, each with a URL whose hash moves when its document changes. */
export function openApiV3Root(resources: ResourceInfo[]): object {
  const gvs = new Map<string, ResourceInfo>();
  for (const r of resources) gvs.set(groupVersion(r), r);
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const r of [...gvs.values()].sort((a, b) => gvPath(a).localeCompare(gvPath(b)))) {
    const p = gvPath(r);
    const built = openApiV3Document(p, resources);
    if (built) paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${built.hash}` };
  }
  return { paths };
}
