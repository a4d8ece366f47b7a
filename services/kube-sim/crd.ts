// CustomResourceDefinitions: validation, the status the apiextensions controllers
// would write (NamesAccepted, Established, set at once), and the resources a CRD serves.
import { causes } from './errors.ts';
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

export function normalizeCrd(obj: Obj, now: Date, old?: Obj): void {
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
  obj.status = {
    conditions: [
      keep('NamesAccepted') ?? { type: 'NamesAccepted', status: 'True', lastTransitionTime: t, reason: 'NoConflicts', message: 'no conflicts found' },
      keep('Established') ?? { type: 'Established', status: 'True', lastTransitionTime: t, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
      ...prevConditions.filter((c) => c.type === 'Terminating'),
    ],
    acceptedNames: spec.names,
    storedVersions: [...stored],
  };
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
    if (typeof v?.served !== 'boolean') out.push(causes.required(`spec.versions[${i}].served`));
  });
  return out;
}

export function crdServes(crd: KubeObject): boolean {
  const conditions: Obj[] = (crd as Obj).status?.conditions ?? [];
  return conditions.some((c) => c.type === 'Established' && c.status === 'True');
}

/** One ResourceInfo per served version; the storage version is the preferred one. */
export function crdResources(crd: KubeObject): { resources: ResourceInfo[]; preferredVersion?: string } {
  const spec = (crd as Obj).spec ?? {};
  const names = acceptedNames(spec);
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
