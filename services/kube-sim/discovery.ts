// Legacy discovery documents (contract §2) and /version. Aggregated-discovery Accepts
// get these plain JSON shapes too: kubectl then falls back to per-group-version GETs.
import type { ResourceRegistry } from './resources.ts';
import type { ResourceInfo } from './types.ts';

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4',
  gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T16:03:15Z',
  goVersion: 'go1.23.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

export function apiVersions(serverAddress: string): object {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(g: { name: string; versions: string[]; preferred: string }): object {
  return {
    name: g.name,
    versions: g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v })),
    preferredVersion: { groupVersion: `${g.name}/${g.preferred}`, version: g.preferred },
  };
}

export function apiGroupList(registry: ResourceRegistry): object {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: registry.groups().map(groupEntry) };
}

export function apiGroup(registry: ResourceRegistry, name: string): object | undefined {
  const g = registry.groups().find((x) => x.name === name);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g) } : undefined;
}

function resourceEntries(r: ResourceInfo): object[] {
  const main: Record<string, unknown> = { name: r.resource, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
  if (r.shortNames?.length) main.shortNames = r.shortNames;
  if (r.categories?.length) main.categories = r.categories;
  const out: object[] = [main];
  if (r.statusSubresource) out.push({ name: `${r.resource}/status`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs: ['get', 'patch', 'update'] });
  if (r.group === '' && r.resource === 'namespaces') out.push({ name: 'namespaces/finalize', singularName: '', namespaced: false, kind: 'Namespace', verbs: ['update'] });
  return out;
}

export function apiResourceList(registry: ResourceRegistry, gv: string): object | undefined {
  const resources = registry.resourcesIn(gv);
  if (!resources) return undefined;
  const sorted = [...resources].sort((a, b) => a.resource.localeCompare(b.resource));
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources: sorted.flatMap(resourceEntries) };
}

