// The resources kube-sim serves: the built-ins, plus whatever Established CRDs add.
// One registry answers routing, discovery and "which resource has this kind".
import { fieldSelectorsFor } from './selectors.ts';
import { groupVersion, type ResourceInfo } from './types.ts';

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const NO_COLLECTION_DELETE = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];

function builtin(r: Omit<ResourceInfo, 'builtin' | 'listKind' | 'verbs' | 'statusSubresource' | 'fieldSelectors'> & Partial<ResourceInfo>): ResourceInfo {
  return {
    listKind: `${r.kind}List`,
    verbs: ALL_VERBS,
    statusSubresource: false,
    fieldSelectors: fieldSelectorsFor(r.group, r.kind),
    ...r,
    builtin: true,
  };
}

/** The built-in resources, in the order discovery lists them. */
export function builtinResources(): ResourceInfo[] {
  return [
    builtin({ group: '', version: 'v1', resource: 'configmaps', singular: 'configmap', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] }),
    builtin({ group: '', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'] }),
    builtin({ group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', namespaced: false, shortNames: ['ns'], verbs: NO_COLLECTION_DELETE, statusSubresource: true }),
    builtin({ group: '', version: 'v1', resource: 'secrets', singular: 'secret', kind: 'Secret', namespaced: true }),
    builtin({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', singular: 'validatingwebhookconfiguration', kind: 'ValidatingWebhookConfiguration', namespaced: false, categories: ['api-extensions'] }),
    builtin({ group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', singular: 'customresourcedefinition', kind: 'CustomResourceDefinition', namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'], statusSubresource: true }),
    builtin({ group: 'batch', version: 'v1', resource: 'cronjobs', singular: 'cronjob', kind: 'CronJob', namespaced: true, shortNames: ['cj'], categories: ['all'], statusSubresource: true }),
    builtin({ group: 'batch', version: 'v1', resource: 'jobs', singular: 'job', kind: 'Job', namespaced: true, categories: ['all'], statusSubresource: true }),
    builtin({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', singular: 'lease', kind: 'Lease', namespaced: true }),
    // The same stored objects as core v1 events, seen through the newer API (see storageOf).
    builtin({ group: 'events.k8s.io', version: 'v1', resource: 'events', singular: 'event', kind: 'Event', namespaced: true, shortNames: ['ev'] }),
  ];
}

/**
 * Where a resource's objects live. Two views of one kind share a bucket: core and
 * events.k8s.io Events, and every served version of a CRD.
 */
export function storageOf(r: Pick<ResourceInfo, 'group' | 'resource'>): string {
  if (r.group === 'events.k8s.io' && r.resource === 'events') return 'events';
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

/** Kinds that carry metadata.generation, and what moves it. */
export function generationPolicy(r: ResourceInfo): 'none' | 'spec' | 'nonMetadata' | 'nonMetadataNonStatus' {
  if (!r.builtin) return r.statusSubresource ? 'nonMetadataNonStatus' : 'nonMetadata';
  switch (`${r.group}/${r.kind}`) {
    case 'batch/CronJob':
    case 'batch/Job':
    case 'apiextensions.k8s.io/CustomResourceDefinition':
      return 'spec';
    case 'admissionregistration.k8s.io/ValidatingWebhookConfiguration':
      return 'nonMetadata';
    default:
      return 'none';
  }
}

export class ResourceRegistry {
  /** groupVersion → plural → info */
  private readonly byGroupVersion = new Map<string, Map<string, ResourceInfo>>();
  /** Preferred version per group (first registered wins unless a CRD says otherwise). */
  private readonly preferred = new Map<string, string>();
  private changeListeners: Array<() => void> = [];

  constructor(initial: ResourceInfo[] = builtinResources()) {
    for (const r of initial) this.register(r);
  }

  register(r: ResourceInfo, preferredVersion?: string): void {
    const gv = groupVersion(r);
    let m = this.byGroupVersion.get(gv);
    if (!m) this.byGroupVersion.set(gv, (m = new Map()));
    m.set(r.resource, r);
    if (preferredVersion) this.preferred.set(r.group, preferredVersion);
    else if (!this.preferred.has(r.group)) this.preferred.set(r.group, r.version);
    this.changed();
  }

  /** Removes every version of group/plural (a deleted or changed CRD). */
  unregister(group: string, plural: string): void {
    for (const [gv, m] of this.byGroupVersion) {
      const r = m.get(plural);
      if (r && r.group === group && !r.builtin) {
        m.delete(plural);
        if (m.size === 0) this.byGroupVersion.delete(gv);
      }
    }
    if (![...this.byGroupVersion.values()].some((m) => [...m.values()].some((r) => r.group === group))) this.preferred.delete(group);
    this.changed();
  }

  lookup(group: string, version: string, plural: string): ResourceInfo | undefined {
    return this.byGroupVersion.get(group ? `${group}/${version}` : version)?.get(plural);
  }

  /** The resource serving `kind` in `apiVersion` (ownerReferences, admission). */
  byKind(apiVersion: string, kind: string): ResourceInfo | undefined {
    const m = this.byGroupVersion.get(apiVersion);
    if (!m) return undefined;
    for (const r of m.values()) if (r.kind === kind) return r;
    return undefined;
  }

  /** Any served version of group+kind, preferring the preferred version. */
  byGroupKind(group: string, kind: string): ResourceInfo | undefined {
    const pref = this.preferred.get(group);
    const candidates = this.all().filter((r) => r.group === group && r.kind === kind);
    return candidates.find((r) => r.version === pref) ?? candidates[0];
  }

  resourcesIn(gv: string): ResourceInfo[] | undefined {
    const m = this.byGroupVersion.get(gv);
    return m ? [...m.values()] : undefined;
  }

  all(): ResourceInfo[] {
    return [...this.byGroupVersion.values()].flatMap((m) => [...m.values()]);
  }

  /** Groups (excluding core) with their versions, preferred first. */
  groups(): Array<{ name: string; versions: string[]; preferred: string }> {
    const versions = new Map<string, string[]>();
    for (const gv of this.byGroupVersion.keys()) {
      const slash = gv.indexOf('/');
      if (slash < 0) continue;
      const g = gv.slice(0, slash);
      const v = gv.slice(slash + 1);
      const list = versions.get(g) ?? [];
      list.push(v);
      versions.set(g, list);
    }
    return [...versions.entries()].map(([name, vs]) => {
      const preferred = this.preferred.get(name) ?? vs[0];
      return { name, versions: [preferred, ...vs.filter((v) => v !== preferred)], preferred };
    });
  }

  /** Called after every register/unregister (OpenAPI caches, discovery hashes). */
  onChange(listener: () => void): void {
    this.changeListeners.push(listener);
  }

  private changed(): void {
    for (const l of this.changeListeners) l();
  }
}
