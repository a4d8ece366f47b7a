// CustomResourceDefinitions: validation, the status the apiextensions controllers
// would write (NamesAccepted, Established, set at once), and the resources a CRD serves.
import { causes } from './errors.ts';
import { compileRule } from './schema.ts';
import { ALL_VERBS } from './resources.ts';
import { dns1123LabelProblems, rfc3339 } from './validation.ts';
import type { JSONSchemaProps, KubeObject, PrinterColumn, ResourceInfo, StatusCause } from './types.ts';

type Obj = Record<string, any>;

export const CRD_CLEANUP_FINALIZER = 'customresourcecleanup.apiextensions.k8s.io';

function acceptedNames(spec: Obj): Obj {
  const names = { ...(spec.names ?? {}) };
  names.singular ||= String(names.kind ?? '').toLowerCase();
  names.listKind ||= `${names.kind}List`;
  return names;
}

/**
 * The apiextensions naming controller: a name (plural, singular, short names) or kind
 * (kind, listKind) another CRD of the group has accepted cannot be accepted again,
 * unless this CRD already holds it. Conflicting names are left out of acceptedNames,
 * NamesAccepted turns False naming the last conflict, and a CRD never established stays
 * so: its resources are not served. The reasons and messages are the controller's.
 */
function acceptNames(requested: Obj, accepted: Obj, peers: Iterable<KubeObject>, group: unknown): { names: Obj; conflict?: { reason: string; message: string } } {
  const usedNames = new Set<string>();
  const usedKinds = new Set<string>();
  for (const peer of peers) {
    const p = peer as Obj;
    if (p.spec?.group !== group) continue;
    const a = p.status?.acceptedNames ?? {};
    for (const n of [a.plural, a.singular, ...(Array.isArray(a.shortNames) ? a.shortNames : [])]) if (typeof n === 'string' && n) usedNames.add(n);
    for (const k of [a.kind, a.listKind]) if (typeof k === 'string' && k) usedKinds.add(k);
  }
  const names: Obj = { ...accepted };
  let conflict: { reason: string; message: string } | undefined;
  const fresh = (want: unknown, had: unknown, used: Set<string>) => want === had || typeof want !== 'string' || !used.has(want);
  const check = (field: string, reason: string, used: Set<string>) => {
    if (fresh(requested[field], accepted[field], used)) names[field] = requested[field];
    else conflict = { reason, message: `${JSON.stringify(requested[field])} is already in use` };
  };
  check('plural', 'PluralConflict', usedNames);
  check('singular', 'SingularConflict', usedNames);
  const shortNames: unknown[] = Array.isArray(requested.shortNames) ? requested.shortNames : [];
  const taken = shortNames.find((n) => !(Array.isArray(accepted.shortNames) && accepted.shortNames.includes(n)) && typeof n === 'string' && usedNames.has(n));
  if (taken === undefined) names.shortNames = requested.shortNames;
  else conflict = { reason: 'ShortNamesConflict', message: `${JSON.stringify(taken)} is already in use` };
  check('kind', 'KindConflict', usedKinds);
  check('listKind', 'ListKindConflict', usedKinds);
  // Categories are never in conflict: what is asked for is what is accepted, every time.
  names.categories = requested.categories;
  for (const k of Object.keys(names)) if (names[k] === undefined) delete names[k];
  return { names, conflict };
}

export function normalizeCrd(obj: Obj, now: Date, old: Obj | undefined, peers: Iterable<KubeObject>): void {
  const spec = (obj.spec ??= {});
  spec.names = acceptedNames(spec);
  spec.conversion ??= { strategy: 'None' };
  for (const v of Array.isArray(spec.versions) ? spec.versions : []) {
    if (!v || typeof v !== 'object') continue;
    for (const c of Array.isArray(v.additionalPrinterColumns) ? v.additionalPrinterColumns : []) if (c && typeof c === 'object') c.priority ??= 0;
  }
  if (!old) {
    const fins: string[] = obj.metadata.finalizers ?? [];
    if (!fins.includes(CRD_CLEANUP_FINALIZER)) obj.metadata.finalizers = [...fins, CRD_CLEANUP_FINALIZER];
  }
  // The apiextensions controllers accept names and establish within milliseconds; we do it on write.
  const t = rfc3339(now);
  const prevConditions: Obj[] = old?.status?.conditions ?? [];
  const keep = (type: string) => prevConditions.find((c) => c.type === type && c.status === 'True');
  const storage = (spec.versions ?? []).find((v: Obj) => v?.storage)?.name;
  const stored = new Set<string>([...(old?.status?.storedVersions ?? []), ...(storage ? [storage] : [])]);
  const { names, conflict } = acceptNames(spec.names, old?.status?.acceptedNames ?? {}, peers, spec.group);
  // A condition that says the same as before keeps its lastTransitionTime (a re-check that finds nothing new writes nothing).
  const same = (c: Obj) => prevConditions.find((p) => p.type === c.type && p.status === c.status && p.reason === c.reason && p.message === c.message) ?? c;
  const namesAccepted = conflict
    ? same({ type: 'NamesAccepted', status: 'False', lastTransitionTime: t, ...conflict })
    : (keep('NamesAccepted') ?? { type: 'NamesAccepted', status: 'True', lastTransitionTime: t, reason: 'NoConflicts', message: 'no conflicts found' });
  const established =
    keep('Established') ??
    (conflict
      ? same({ type: 'Established', status: 'False', lastTransitionTime: t, reason: 'NotAccepted', message: 'not all names are accepted' })
      : { type: 'Established', status: 'True', lastTransitionTime: t, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' });
  obj.status = {
    conditions: [namesAccepted, established, ...prevConditions.filter((c) => c.type === 'Terminating')],
    acceptedNames: names,
    storedVersions: [...stored],
  };
}

/** True while a CRD waits for names another CRD holds (re-checked when that one goes). */
export function crdNamesPending(crd: KubeObject): boolean {
  return ((crd as Obj).status?.conditions ?? []).some((c: Obj) => c.type === 'NamesAccepted' && c.status !== 'True');
}

export function markCrdTerminating(obj: Obj, now: Date): void {
  const conditions: Obj[] = (obj.status?.conditions ?? []).filter((c: Obj) => c.type !== 'Terminating');
  conditions.push({ type: 'Terminating', status: 'True', lastTransitionTime: rfc3339(now), reason: 'InstanceDeletionInProgress', message: 'CustomResource deletion is in progress' });
  obj.status = { ...(obj.status ?? {}), conditions };
}

export function validateCrd(obj: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  const spec = obj.spec ?? {};
  const names = spec.names ?? {};
  if (!spec.group) out.push(causes.required('spec.group'));
  else if (!String(spec.group).includes('.')) out.push(causes.invalid('spec.group', spec.group, 'should be a domain with at least one dot'));
  if (!names.plural) out.push(causes.required('spec.names.plural'));
  else for (const p of dns1123LabelProblems(names.plural)) out.push(causes.invalid('spec.names.plural', names.plural, p));
  if (!names.kind) out.push(causes.required('spec.names.kind'));
  if (names.plural && spec.group && obj.metadata.name !== `${names.plural}.${spec.group}`)
    out.push(causes.invalid('metadata.name', obj.metadata.name, `must be spec.names.plural+"."+spec.group`));
  if (!['Namespaced', 'Cluster'].includes(spec.scope)) out.push(causes.notSupported('spec.scope', spec.scope, ['Cluster', 'Namespaced']));
  const versions: Obj[] = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) out.push(causes.required('spec.versions', 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v?.storage === true).length !== 1)
    out.push(causes.invalid('spec.versions', versions.map((v) => v?.name), 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    if (!v?.name) out.push(causes.required(`spec.versions[${i}].name`));
    if (!v?.schema?.openAPIV3Schema) out.push(causes.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    else out.push(...ruleCompileCauses(v.schema.openAPIV3Schema, `spec.versions[${i}].schema.openAPIV3Schema`));
    if (typeof v?.served !== 'boolean') out.push(causes.required(`spec.versions[${i}].served`));
  });
  return out;
}

/** CEL rules are compiled when the CRD is written, as apiextensions does: one that does not parse refuses the CRD. */
function ruleCompileCauses(schema: Obj, path: string): StatusCause[] {
  if (!schema || typeof schema !== 'object') return [];
  const out: StatusCause[] = [];
  const rules: Obj[] = Array.isArray(schema['x-kubernetes-validations']) ? schema['x-kubernetes-validations'] : [];
  rules.forEach((r, i) => {
    const at = `${path}.x-kubernetes-validations[${i}]`;
    if (typeof r?.rule !== 'string' || !r.rule.trim()) return void out.push(causes.required(`${at}.rule`));
    for (const f of ['message', 'messageExpression', 'fieldPath', 'reason'])
      if (r[f] !== undefined && r[f] !== null && typeof r[f] !== 'string') out.push(causes.invalid(`${at}.${f}`, r[f], 'must be a string'));
    const compiled = compileRule(r.rule);
    if (compiled instanceof Error) out.push(causes.invalid(`${at}.rule`, r.rule, `compilation failed: ${compiled.message.split('\n')[0]}`));
  });
  for (const [name, sub] of Object.entries((schema.properties ?? {}) as Record<string, Obj>)) out.push(...ruleCompileCauses(sub, `${path}.properties[${name}]`));
  if (schema.items && typeof schema.items === 'object') out.push(...ruleCompileCauses(schema.items, `${path}.items`));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') out.push(...ruleCompileCauses(schema.additionalProperties, `${path}.additionalProperties`));
  return out;
}

export function crdServes(crd: KubeObject): boolean {
  const conditions: Obj[] = (crd as Obj).status?.conditions ?? [];
  return conditions.some((c) => c.type === 'Established' && c.status === 'True');
}

/** One ResourceInfo per served version; the storage version is the preferred one. */
export function crdResources(crd: KubeObject): { resources: ResourceInfo[]; preferredVersion?: string } {
  const spec = (crd as Obj).spec ?? {};
  // What is served is what was accepted: an update asking for a name in use keeps the old one.
  const accepted = (crd as Obj).status?.acceptedNames;
  const names = accepted?.plural && accepted?.kind ? accepted : acceptedNames(spec);
  const versions: Obj[] = (spec.versions ?? []).filter((v: Obj) => v?.served);
  const resources = versions.map(
    (v): ResourceInfo => ({
      group: spec.group,
      version: v.name,
      resource: names.plural,
      singular: names.singular,
      kind: names.kind,
      listKind: names.listKind,
      namespaced: spec.scope !== 'Cluster',
      shortNames: names.shortNames,
      categories: names.categories,
      verbs: ALL_VERBS,
      statusSubresource: !!v.subresources?.status,
      builtin: false,
      printerColumns: (v.additionalPrinterColumns as PrinterColumn[] | undefined) ?? undefined,
      schema: v.schema?.openAPIV3Schema as JSONSchemaProps | undefined,
      fieldSelectors: (v.selectableFields ?? []).map((f: Obj) => String(f.jsonPath ?? '').replace(/^\./, '')),
    }),
  );
  return { resources, preferredVersion: versions.find((v) => v.storage)?.name ?? versions[0]?.name };
}
