// Views of stored objects. A bucket may be served by several resources (core and
// events.k8s.io Events; every served version of a CRD): objects are stored in one
// form and converted on the way in and out.
import { applyDefaults } from './schema.ts';
import { groupVersion, type KubeObject, type ResourceInfo } from './types.ts';

type Obj = Record<string, unknown>;

/** core/v1 field ↔ events.k8s.io/v1 field */
const EVENT_FIELDS: Array<[string, string]> = [
  ['involvedObject', 'regarding'],
  ['related', 'related'],
  ['message', 'note'],
  ['reason', 'reason'],
  ['type', 'type'],
  ['action', 'action'],
  ['eventTime', 'eventTime'],
  ['series', 'series'],
  ['reportingComponent', 'reportingController'],
  ['reportingInstance', 'reportingInstance'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
];

function isEventsV1(r: Pick<ResourceInfo, 'group' | 'resource'>): boolean {
  return r.group === 'events.k8s.io' && r.resource === 'events';
}

/** The stored object as `r` serves it (a new object when anything differs). */
export function toView(r: ResourceInfo, stored: KubeObject): KubeObject {
  const apiVersion = groupVersion(r);
  if (isEventsV1(r)) {
    const out: Obj = { apiVersion, kind: 'Event', metadata: stored.metadata };
    for (const [core, v1] of EVENT_FIELDS) if (stored[core] !== undefined) out[v1] = stored[core];
    if (out.eventTime === undefined) out.eventTime = null;
    return out as KubeObject;
  }
  let out = stored.apiVersion === apiVersion && stored.kind === r.kind ? stored : { ...stored, apiVersion, kind: r.kind };
  if (r.schema && r.schemaRevision !== undefined && Number(stored.metadata.resourceVersion) < r.schemaRevision) out = applyDefaults(out, r.schema);
  return out;
}

/** An incoming object (already checked against `r`'s apiVersion/kind) in stored form. */
export function fromView(r: ResourceInfo, obj: KubeObject): KubeObject {
  if (isEventsV1(r)) {
    const out: Obj = { apiVersion: 'v1', kind: 'Event', metadata: obj.metadata };
    for (const [core, v1] of EVENT_FIELDS) if (obj[v1] !== undefined) out[core] = obj[v1];
    return out as KubeObject;
  }
  return obj;
}

