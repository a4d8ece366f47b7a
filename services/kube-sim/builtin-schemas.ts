// OpenAPI schemas of the built-in kinds, read from the `kubernetes-models` package rather than
// written by hand. The package ships, per Kubernetes type, a TypeScript declaration (properties,
// optionality, enums, the API's own field descriptions) and a compiled validator. We read the
// declarations with the TypeScript compiler API and ask the validators which numbers are integers
// (the declarations only say `number`). Everything is built lazily once and cached: the first
// call costs a few hundred milliseconds (loading the compiler), later calls nothing.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type * as TS from 'typescript';
import type { JSONSchemaProps } from './types.ts';

const require = createRequire(import.meta.url);

/** A schema whose object-typed properties may point at other named schemas. */
export interface NamedSchema extends JSONSchemaProps {
  $ref?: string;
  allOf?: NamedSchema[];
}

const REF_PREFIX = '#/components/schemas/';

let ts: typeof TS | undefined;
function compiler(): typeof TS {
  ts ??= require('typescript') as typeof TS;
  return ts;
}

const packageRoots = new Map<string, string>();
function packageRoot(name: string): string {
  let root = packageRoots.get(name);
  if (!root) {
    root = dirname(require.resolve(`${name}/package.json`));
    packageRoots.set(name, root);
  }
  return root;
}

/** kubernetes-models keeps core/v1 at `v1/`, other groups at `<group>/<version>/`. */
function declarationFile(group: string, version: string, kind: string): string {
  const root = packageRoot('kubernetes-models');
  return group === '' ? join(root, version, `${kind}.d.ts`) : join(root, group, version, `${kind}.d.ts`);
}

/** Component id from where the declaration lives (kube-apiserver's naming). */
function componentId(file: string, typeName: string): string {
  const models = packageRoot('kubernetes-models');
  const machinery = packageRoot('@kubernetes-models/apimachinery');
  if (file.startsWith(machinery + '/')) {
    // apis/meta/v1/ObjectMeta.d.ts → io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta
    const rel = file.slice(machinery.length + 1).split('/').slice(0, -1);
    return ['io.k8s.apimachinery.pkg', ...rel, typeName].join('.');
  }
  const rel = file.slice(models.length + 1).split('/').slice(0, -1);
  if (rel.length === 1) return `io.k8s.api.core.${rel[0]}.${typeName}`;
  const [group, version] = rel as [string, string];
  if (group === 'apiextensions.k8s.io') return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${version}.${typeName}`;
  return `io.k8s.api.${group.split('.')[0]}.${version}.${typeName}`;
}

interface ParsedFile {
  file: string;
  source: TS.SourceFile;
  /** Local name → file it is imported from (without extension). */
  imports: Map<string, string>;
  /** Declared interfaces and type aliases by local name. */
  decls: Map<string, TS.InterfaceDeclaration | TS.TypeAliasDeclaration>;
  /** Exported alias of the main declaration (IIoK8sApiBatchV1CronJob), names its validator. */
  validatorName?: string;
}

const parsedFiles = new Map<string, ParsedFile>();

function parseFile(file: string): ParsedFile {
  const cached = parsedFiles.get(file);
  if (cached) return cached;
  const t = compiler();
  const source = t.createSourceFile(file, readFileSync(file, 'utf8'), t.ScriptTarget.Latest, true);
  const imports = new Map<string, string>();
  const decls = new Map<string, TS.InterfaceDeclaration | TS.TypeAliasDeclaration>();
  let validatorName: string | undefined;
  for (const st of source.statements) {
    if (t.isImportDeclaration(st) && t.isStringLiteral(st.moduleSpecifier)) {
      const spec = st.moduleSpecifier.text;
      const target = spec.startsWith('.') ? resolve(dirname(file), spec) : resolvePackagePath(spec);
      const named = st.importClause?.namedBindings;
      if (target && named && t.isNamedImports(named)) for (const el of named.elements) imports.set(el.name.text, target);
    } else if (t.isInterfaceDeclaration(st) || t.isTypeAliasDeclaration(st)) {
      decls.set(st.name.text, st);
    } else if (t.isExportDeclaration(st) && st.exportClause && t.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) {
        if (el.name.text.startsWith('IIo') && !validatorName) validatorName = el.name.text.slice(1);
      }
    }
  }
  const parsed = { file, source, imports, decls, validatorName };
  parsedFiles.set(file, parsed);
  return parsed;
}

function resolvePackagePath(spec: string): string | undefined {
  const m = /^(@[^/]+\/[^/]+|[^@/][^/]*)\/(.+)$/.exec(spec);
  if (!m) return undefined;
  try {
    return join(packageRoot(m[1]!), m[2]!);
  } catch {
    return undefined;
  }
}

/** The JSDoc text of a node, lines joined as the API's descriptions are. */
function description(node: TS.Node, source: TS.SourceFile): string | undefined {
  const t = compiler();
  const ranges = t.getLeadingCommentRanges(source.text, node.getFullStart()) ?? [];
  const doc = ranges.map((r) => source.text.slice(r.pos, r.end)).filter((c) => c.startsWith('/**')).pop();
  if (!doc) return undefined;
  const text = doc
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\* ?/, ''))
    .join('\n')
    .trim();
  return text || undefined;
}

// Validators: which `number` fields are integers.
const validators = new Map<string, ((data: unknown) => boolean) & { errors?: { instancePath: string; keyword: string; params: Record<string, unknown> }[] | null }>();

function validatorFor(parsed: ParsedFile): typeof validators extends Map<string, infer V> ? V | undefined : never {
  const name = parsed.validatorName;
  if (!name) return undefined;
  if (validators.has(name)) return validators.get(name);
  const machinery = packageRoot('@kubernetes-models/apimachinery');
  const root = parsed.file.startsWith(machinery + '/') ? machinery : packageRoot('kubernetes-models');
  const path = join(root, '_schemas', `${name}.js`);
  let fn;
  try {
    fn = existsSync(path) ? (require(path) as { validate: any }).validate : undefined;
  } catch {
    fn = undefined;
  }
  validators.set(name, fn);
  return fn;
}

/** Ask the package's validator whether `prop` rejects a fraction for being no integer. */
function isIntegerField(parsed: ParsedFile, prop: string, wrap: (n: number) => unknown): boolean {
  const validate = validatorFor(parsed);
  if (!validate) return false;
  validate({ [prop]: wrap(0.5) });
  return (validate.errors ?? []).some((e) => e.instancePath.startsWith(`/${prop}`) && e.keyword === 'type' && e.params.type === 'integer');
}

/** All named schemas reachable from the built-in kinds, by component id. */
const components = new Map<string, NamedSchema>();
const idsByFileAndName = new Map<string, string>();
/** Ids whose schema is still being built: a reference to one is a cycle, never a scalar alias. */
const building = new Set<string>();

/** Build (once) the named schema declared as `name` in `file`; returns its component id. */
function namedSchema(file: string, name: string): string | undefined {
  const key = `${file}#${name}`;
  const known = idsByFileAndName.get(key);
  if (known) return known;
  const dts = file.endsWith('.d.ts') ? file : `${file}.d.ts`;
  if (!existsSync(dts)) return undefined;
  const parsed = parseFile(dts);
  const decl = parsed.decls.get(name) ?? [...parsed.decls.values()][0];
  if (!decl) return undefined;
  // `IObjectMeta` → `ObjectMeta`
  const typeName = decl.name.text.replace(/^I(?=[A-Z])/, '');
  const id = componentId(dts, typeName);
  idsByFileAndName.set(key, id);
  if (components.has(id)) return id;
  const placeholder: NamedSchema = {};
  components.set(id, placeholder); // cycles (JSONSchemaProps) find the id while it is being built
  building.add(id);
  try {
    Object.assign(placeholder, declSchema(parsed, decl));
  } finally {
    building.delete(id);
  }
  return id;
}

function declSchema(parsed: ParsedFile, decl: TS.InterfaceDeclaration | TS.TypeAliasDeclaration): NamedSchema {
  const t = compiler();
  const desc = description(decl, parsed.source);
  let schema: NamedSchema;
  if (t.isInterfaceDeclaration(decl)) {
    const properties: Record<string, NamedSchema> = {};
    const required: string[] = [];
    const isKind = decl.heritageClauses?.some((h) => h.getText(parsed.source).includes('TypeMeta')) ?? false;
    for (const m of decl.members) {
      if (!t.isPropertySignature(m) || !m.type) continue;
      const prop = t.isStringLiteral(m.name) || t.isIdentifier(m.name) ? m.name.text : undefined;
      if (!prop) continue;
      const s = typeSchema(parsed, m.type, prop, (n) => n);
      const d = description(m, parsed.source);
      properties[prop] = d ? withDescription(s, d) : s;
      if (!m.questionToken && !(isKind && (prop === 'apiVersion' || prop === 'kind'))) required.push(prop);
    }
    schema = Object.keys(properties).length > 0
      ? { type: 'object', properties }
      : { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }; // FieldsV1, RawExtension, JSON: free-form
    if (required.length) schema.required = required.sort();
  } else {
    schema = typeSchema(parsed, decl.type, undefined, (n) => n);
  }
  if (desc) schema.description = desc;
  return schema;
}

/** A reference carries its description beside it, the way kube-apiserver's v3 documents do. */
function withDescription(s: NamedSchema, d: string): NamedSchema {
  if (s.$ref) return { allOf: [{ $ref: s.$ref }], description: d };
  return { ...s, description: d };
}

function typeSchema(parsed: ParsedFile, node: TS.TypeNode, prop: string | undefined, wrap: (n: number) => unknown): NamedSchema {
  const t = compiler();
  switch (node.kind) {
    case t.SyntaxKind.StringKeyword: return { type: 'string' };
    case t.SyntaxKind.BooleanKeyword: return { type: 'boolean' };
    case t.SyntaxKind.NumberKeyword:
      return { type: prop && isIntegerField(parsed, prop, wrap) ? 'integer' : 'number' };
    case t.SyntaxKind.AnyKeyword:
    case t.SyntaxKind.UnknownKeyword:
    case t.SyntaxKind.ObjectKeyword:
      return { 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (t.isLiteralTypeNode(node)) {
    if (t.isStringLiteral(node.literal)) return { type: 'string' };
    if (node.literal.kind === t.SyntaxKind.TrueKeyword || node.literal.kind === t.SyntaxKind.FalseKeyword) return { type: 'boolean' };
    return {};
  }
  if (t.isParenthesizedTypeNode(node)) return typeSchema(parsed, node.type, prop, wrap);
  if (t.isArrayTypeNode(node)) return { type: 'array', items: typeSchema(parsed, node.elementType, prop, (n) => wrap([n] as unknown as number)) };
  if (t.isUnionTypeNode(node)) {
    const members = node.types.filter((m) => !(t.isLiteralTypeNode(m) && m.literal.kind === t.SyntaxKind.NullKeyword));
    if (members.length > 0 && members.every((m) => t.isLiteralTypeNode(m) && t.isStringLiteral(m.literal))) {
      return { type: 'string', enum: members.map((m) => ((m as TS.LiteralTypeNode).literal as TS.StringLiteral).text) };
    }
    const kinds = new Set(members.map((m) => m.kind));
    if (kinds.has(t.SyntaxKind.NumberKeyword) && kinds.has(t.SyntaxKind.StringKeyword)) return { 'x-kubernetes-int-or-string': true };
    if (members.length === 1) return typeSchema(parsed, members[0]!, prop, wrap);
    return { 'x-kubernetes-preserve-unknown-fields': true }; // JSONSchemaPropsOrBool and the like
  }
  if (t.isTypeLiteralNode(node)) {
    const index = node.members.find(t.isIndexSignatureDeclaration);
    if (index?.type) return { type: 'object', additionalProperties: typeSchema(parsed, index.type, prop, (n) => wrap({ k: n } as unknown as number)) };
    return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  }
  if (t.isTypeReferenceNode(node)) {
    const name = node.typeName.getText(parsed.source);
    if (name === 'Array' && node.typeArguments?.[0]) {
      return { type: 'array', items: typeSchema(parsed, node.typeArguments[0], prop, (n) => wrap([n] as unknown as number)) };
    }
    if (name === 'Record' && node.typeArguments?.[1]) {
      return { type: 'object', additionalProperties: typeSchema(parsed, node.typeArguments[1], prop, (n) => wrap({ k: n } as unknown as number)) };
    }
    const from = parsed.imports.get(name);
    const id = from ? namedSchema(from, name) : parsed.decls.has(name) ? namedSchema(parsed.file, name) : undefined;
    if (id) {
      const target = components.get(id);
      // Scalar aliases (Time, MicroTime, Quantity, IntOrString) are inlined as the real documents do.
      if (target && !building.has(id) && !target.properties && target.type !== 'object' && !target['x-kubernetes-preserve-unknown-fields']) {
        const { description: _d, ...inline } = target;
        if (/(^|\.)(Time|MicroTime)$/.test(id)) return { ...inline, format: 'date-time' };
        return inline;
      }
      return { $ref: REF_PREFIX + id };
    }
    return { 'x-kubernetes-preserve-unknown-fields': true };
  }
  return { 'x-kubernetes-preserve-unknown-fields': true };
}

export const API_VERSION_DESCRIPTION =
  'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources';
export const KIND_DESCRIPTION =
  'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds';

const kindIds = new Map<string, string | undefined>();

/** Component id of a built-in kind's schema, or undefined when the package has no such kind. */
export function builtinSchemaId(group: string, version: string, kind: string): string | undefined {
  const key = `${group}/${version}/${kind}`;
  if (kindIds.has(key)) return kindIds.get(key);
  let id: string | undefined;
  try {
    const file = declarationFile(group, version, kind);
    id = existsSync(file) ? namedSchema(file, `I${kind}`) : undefined;
  } catch {
    // kubernetes-models and typescript are development dependencies: an image installed with
    // --omit=dev has neither, and then serves built-ins without schemas (no Strict checks).
    id = undefined;
  }
  if (id) {
    const s = components.get(id)!;
    s['x-kubernetes-group-version-kind'] = [{ group, version, kind }];
    // TypeMeta lives in another package without descriptions; these are the API's own words.
    if (s.properties?.apiVersion) s.properties.apiVersion = { type: 'string', description: API_VERSION_DESCRIPTION };
    if (s.properties?.kind) s.properties.kind = { type: 'string', description: KIND_DESCRIPTION };
  }
  kindIds.set(key, id);
  return id;
}

/** The named schema with this id and every schema it references, transitively (for an OpenAPI document). */
export function builtinComponents(rootIds: string[]): Record<string, NamedSchema> {
  const out: Record<string, NamedSchema> = {};
  const visit = (id: string) => {
    if (out[id]) return;
    const s = components.get(id);
    if (!s) return;
    out[id] = s;
    walkRefs(s, visit);
  };
  for (const id of rootIds) visit(id);
  return out;
}

/** Component id of a meta.k8s.io/v1 type (ObjectMeta, ListMeta, Status, DeleteOptions…), for documents that reference it. */
export function metaSchemaId(typeName: string): string | undefined {
  try {
    const file = join(packageRoot('@kubernetes-models/apimachinery'), 'apis', 'meta', 'v1', typeName);
    return namedSchema(file, `I${typeName}`);
  } catch {
    return undefined; // see builtinSchemaId
  }
}

function walkRefs(s: unknown, visit: (id: string) => void): void {
  if (!s || typeof s !== 'object') return;
  if (Array.isArray(s)) {
    for (const x of s) walkRefs(x, visit);
    return;
  }
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith(REF_PREFIX)) visit(v.slice(REF_PREFIX.length));
    else walkRefs(v, visit);
  }
}

const MAX_DEPTH = 24;
const resolvedCache = new Map<string, JSONSchemaProps | undefined>();

/**
 * The schema of a built-in kind with every `$ref` resolved inline, for checking objects
 * (unknown fields under fieldValidation=Strict). A type that refers back to itself
 * (JSONSchemaProps inside a CRD) is cut at the second visit, and anything deeper than
 * MAX_DEPTH levels, into a free-form object: below a cut every field is accepted.
 */
export function builtinSchema(group: string, version: string, kind: string): JSONSchemaProps | undefined {
  const key = `${group}/${version}/${kind}`;
  if (resolvedCache.has(key)) return resolvedCache.get(key);
  const id = builtinSchemaId(group, version, kind);
  const resolved = id ? resolveRefs({ $ref: REF_PREFIX + id }, [], 0) : undefined;
  resolvedCache.set(key, resolved);
  return resolved;
}

function resolveRefs(s: NamedSchema, path: string[], depth: number): JSONSchemaProps {
  if (depth > MAX_DEPTH) return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  if (s.$ref || s.allOf) {
    const ref = s.$ref ?? s.allOf?.[0]?.$ref;
    const id = ref?.slice(REF_PREFIX.length);
    const target = id ? components.get(id) : undefined;
    if (!id || !target) return { 'x-kubernetes-preserve-unknown-fields': true };
    const { $ref: _r, allOf: _a, ...own } = s;
    if (path.includes(id)) return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, ...(own.description ? { description: own.description } : {}) };
    const inner = resolveRefs(target, [...path, id], depth);
    return own.description ? { ...inner, description: own.description } : inner;
  }
  const out: JSONSchemaProps = { ...s };
  if (s.properties) {
    out.properties = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, resolveRefs(v as NamedSchema, path, depth + 1)]));
  }
  if (s.items) out.items = resolveRefs(s.items as NamedSchema, path, depth + 1);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') {
    out.additionalProperties = resolveRefs(s.additionalProperties as NamedSchema, path, depth + 1);
  }
  return out;
}
