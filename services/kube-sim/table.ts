// Server-side printing (`meta.k8s.io/v1` Table), what `kubectl get` asks for (contract §6).
// Columns mirror kube-apiserver's printers (pkg/printers/internalversion) for the kinds
// kube-sim serves, and the CRD table convertor for custom resources. The server prints
// "wide": priority-1 columns are always sent; kubectl hides them unless `-o wide`.
import type { KubeObject, PrinterColumn, ResourceInfo } from './types.ts';
import { evaluateJsonPath } from './jsonpath.ts';

export const TABLE_CONTENT_TYPE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export interface TableOptions {
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
  includeObject?: IncludeObject;
  now?: Date;
}

/** True when one of the Accept's media types asks for `as=Table;v=v1;g=meta.k8s.io`. */
export function wantsTable(accept?: string): boolean {
  if (!accept) return false;
  return accept.split(',').some((mediaRange) => {
    const [type, ...params] = mediaRange.split(';').map((s) => s.trim());
    if (type !== 'application/json' && type !== '*/*' && type !== 'application/*') return false;
    const p = new Map(params.map((kv) => {
      const i = kv.indexOf('=');
      return [kv.slice(0, i).trim().toLowerCase(), kv.slice(i + 1).trim()] as const;
    }));
    return p.get('as') === 'Table' && p.get('v') === 'v1' && p.get('g') === 'meta.k8s.io';
  });
}

/** kubectl's age format: k8s.io/apimachinery/pkg/util/duration.HumanDuration (~2-3 significant figures). */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s'; // up to 2 s of clock skew reads as "now"
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(seconds / 3600);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const y = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** Age of a timestamp as kubectl prints it; `<unknown>` when absent or unparsable. */
export function ageSince(timestamp: unknown, now: Date): string {
  if (typeof timestamp !== 'string' || !timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  if (Number.isNaN(t)) return '<unknown>';
  return humanDuration(now.getTime() - t);
}

// ---- columns -------------------------------------------------------------

const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DESCRIPTION =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

function col(name: string, type: string, description: string, priority = 0, format = ''): TableColumnDefinition {
  return { name, type, format, description, priority };
}
const NAME = col('Name', 'string', NAME_DESCRIPTION, 0, 'name');
const AGE = col('Age', 'string', AGE_DESCRIPTION);

interface Printer {
  columns: TableColumnDefinition[];
  cells(obj: KubeObject, now: Date): unknown[];
}

type Obj = Record<string, any>;
const meta = (o: KubeObject) => o.metadata ?? {};
const nameOf = (o: KubeObject) => meta(o).name ?? '';
const age = (o: KubeObject, now: Date) => ageSince(meta(o).creationTimestamp, now);
const countKeys = (v: unknown) => (v && typeof v === 'object' ? Object.keys(v).length : 0);

function boolPtr(v: unknown): string {
  if (typeof v !== 'boolean') return '<unset>';
  return v ? 'True' : 'False';
}

function hasCondition(conditions: unknown, type: string): boolean {
  return Array.isArray(conditions) && conditions.some((c: Obj) => c?.type === type && c?.status === 'True');
}

/** metav1.FormatLabelSelector: `a=b,c in (d,e)`, `<none>` for nil/empty. */
export function formatLabelSelector(sel: unknown): string {
  if (!sel || typeof sel !== 'object') return '<none>';
  const s = sel as Obj;
  const parts: string[] = Object.entries((s.matchLabels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  for (const e of (s.matchExpressions ?? []) as Obj[]) {
    const values = [...((e.values ?? []) as string[])].sort();
    switch (e.operator) {
      case 'In': parts.push(`${e.key} in (${values.join(',')})`); break;
      case 'NotIn': parts.push(`${e.key} notin (${values.join(',')})`); break;
      case 'Exists': parts.push(`${e.key}`); break;
      case 'DoesNotExist': parts.push(`!${e.key}`); break;
    }
  }
  const out = parts.join(',');
  return out === '' ? '<none>' : out;
}

function containerCells(containers: unknown): [string, string] {
  const list = Array.isArray(containers) ? (containers as Obj[]) : [];
  return [list.map((c) => c?.name ?? '').join(','), list.map((c) => c?.image ?? '').join(',')];
}

const CONTAINERS = col('Containers', 'string', 'Names of each container in the template.', 1);
const IMAGES = col('Images', 'string', 'Images referenced by each container in the template.', 1);
const SELECTOR = col('Selector', 'string', 'A label query over pods that should match the pod count.', 1);

const printers: Record<string, Printer> = {
  '/Secret': {
    columns: [NAME, col('Type', 'string', 'Used to facilitate programmatic handling of secret data.'), col('Data', 'string', 'Data contains the secret data.'), AGE],
    cells: (o, now) => [nameOf(o), (o as Obj).type ?? '', countKeys((o as Obj).data), age(o, now)],
  },
  '/ConfigMap': {
    columns: [NAME, col('Data', 'string', 'Data contains the configuration data.'), AGE],
    cells: (o, now) => [nameOf(o), countKeys((o as Obj).data) + countKeys((o as Obj).binaryData), age(o, now)],
  },
  '/Namespace': {
    columns: [NAME, col('Status', 'string', 'The status of the namespace'), AGE],
    cells: (o, now) => [nameOf(o), (o as Obj).status?.phase ?? '', age(o, now)],
  },
  'batch/CronJob': {
    columns: [
      NAME,
      col('Schedule', 'string', 'The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.'),
      col('Timezone', 'string', 'The time zone name for the given schedule.'),
      col('Suspend', 'boolean', 'This flag tells the controller to suspend subsequent executions.'),
      col('Active', 'integer', 'A list of pointers to currently running jobs.'),
      col('Last Schedule', 'string', 'Information when was the last time the job was successfully scheduled.'),
      AGE,
      CONTAINERS,
      IMAGES,
      SELECTOR,
    ],
    cells: (o, now) => {
      const spec = ((o as Obj).spec ?? {}) as Obj;
      const status = ((o as Obj).status ?? {}) as Obj;
      const [names, images] = containerCells(spec.jobTemplate?.spec?.template?.spec?.containers);
      return [
        nameOf(o),
        spec.schedule ?? '',
        spec.timeZone ? spec.timeZone : '<none>',
        boolPtr(spec.suspend),
        Array.isArray(status.active) ? status.active.length : 0,
        status.lastScheduleTime ? ageSince(status.lastScheduleTime, now) : '<none>',
        age(o, now),
        names,
        images,
        formatLabelSelector(spec.jobTemplate?.spec?.selector),
      ];
    },
  },
  'batch/Job': {
    columns: [
      NAME,
      col('Status', 'string', 'Status of the job.'),
      col('Completions', 'string', 'The completion status of the job as <succeeded>/<desired completions>'),
      col('Duration', 'string', 'Time required to complete the job.'),
      AGE,
      CONTAINERS,
      IMAGES,
      SELECTOR,
    ],
    cells: (o, now) => {
      const spec = ((o as Obj).spec ?? {}) as Obj;
      const status = ((o as Obj).status ?? {}) as Obj;
      const succeeded = typeof status.succeeded === 'number' ? status.succeeded : 0;
      let completions: string;
      if (typeof spec.completions === 'number') completions = `${succeeded}/${spec.completions}`;
      else if (typeof spec.parallelism === 'number' && spec.parallelism > 1) completions = `${succeeded}/1 of ${spec.parallelism}`;
      else completions = `${succeeded}/1`;
      let duration = '';
      if (status.startTime) {
        const start = Date.parse(status.startTime);
        const end = status.completionTime ? Date.parse(status.completionTime) : now.getTime();
        if (!Number.isNaN(start) && !Number.isNaN(end)) duration = humanDuration(end - start);
      }
      let state = 'Running';
      if (hasCondition(status.conditions, 'Complete')) state = 'Complete';
      else if (hasCondition(status.conditions, 'Failed')) state = 'Failed';
      else if (meta(o).deletionTimestamp) state = 'Terminating';
      else if (hasCondition(status.conditions, 'Suspended')) state = 'Suspended';
      else if (hasCondition(status.conditions, 'FailureTarget')) state = 'FailureTarget';
      const [names, images] = containerCells(spec.template?.spec?.containers);
      return [nameOf(o), state, completions, duration, age(o, now), names, images, formatLabelSelector(spec.selector)];
    },
  },
  'coordination.k8s.io/Lease': {
    columns: [NAME, col('Holder', 'string', 'The holder of the lease'), AGE],
    cells: (o, now) => [nameOf(o), (o as Obj).spec?.holderIdentity ?? '', age(o, now)],
  },
  'apiextensions.k8s.io/CustomResourceDefinition': {
    // The default table convertor: an RFC3339 timestamp, not an age.
    columns: [NAME, col('Created At', 'date', AGE_DESCRIPTION)],
    cells: (o) => [nameOf(o), meta(o).creationTimestamp ?? ''],
  },
  'admissionregistration.k8s.io/ValidatingWebhookConfiguration': {
    columns: [NAME, col('Webhooks', 'integer', 'Webhooks indicates the number of webhooks in this configuration.'), AGE],
    cells: (o, now) => [nameOf(o), Array.isArray((o as Obj).webhooks) ? (o as Obj).webhooks.length : 0, age(o, now)],
  },
};

const EVENT_COLUMNS = [
  col('Last Seen', 'string', 'The time at which the most recent occurrence of this event was recorded.'),
  col('Type', 'string', 'Type of this event (Normal, Warning), new types could be added in the future'),
  col('Reason', 'string', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
  col('Object', 'string', 'The object that this event is about.'),
  col('Subobject', 'string', 'If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.', 1),
  col('Source', 'string', 'The component reporting this event.', 1),
  col('Message', 'string', 'A human-readable description of the status of this operation.'),
  col('First Seen', 'string', 'The time at which the event was first recorded.', 1),
  col('Count', 'string', 'The number of times this event has occurred.', 1),
  { ...NAME, priority: 1 },
];

/** Core v1 and events.k8s.io/v1 Events print the same; read either shape. */
function eventCells(o: KubeObject, now: Date): unknown[] {
  const e = o as Obj;
  const isNew = typeof o.apiVersion === 'string' && o.apiVersion.startsWith('events.k8s.io/');
  const involved = ((isNew ? e.regarding : e.involvedObject) ?? {}) as Obj;
  const firstTs = isNew ? e.deprecatedFirstTimestamp : e.firstTimestamp;
  const lastTs = isNew ? e.deprecatedLastTimestamp : e.lastTimestamp;
  const source = ((isNew ? e.deprecatedSource : e.source) ?? {}) as Obj;
  const reportingController = isNew ? e.reportingController : e.reportingComponent;
  let count = (isNew ? e.deprecatedCount : e.count) ?? 0;
  const first = firstTs ? ageSince(firstTs, now) : ageSince(e.eventTime, now);
  let last = lastTs ? ageSince(lastTs, now) : first;
  if (e.series && typeof e.series === 'object') {
    last = ageSince(e.series.lastObservedTime, now);
    count = e.series.count ?? count;
  } else if (!count) {
    count = 1; // singleton events carry no count in the newer API
  }
  const kind = String(involved.kind ?? '').toLowerCase();
  const target = involved.name ? `${kind}/${involved.name}` : kind;
  let src = source.component ?? '';
  if (!src) src = reportingController ?? '';
  const host = source.host || (isNew ? '' : e.reportingInstance) || '';
  if (host) src = src ? `${src}, ${host}` : host;
  return [
    last,
    e.type ?? '',
    e.reason ?? '',
    target,
    involved.fieldPath ?? '',
    src,
    String((isNew ? e.note : e.message) ?? '').trim(),
    first,
    count,
    nameOf(o),
  ];
}

function cellForPrinterColumn(column: PrinterColumn, obj: KubeObject, now: Date): unknown {
  const results = evaluateJsonPath(obj, column.jsonPath);
  if (results.length === 0 || results[0] === undefined) return null;
  const value = results[0];
  switch (column.type) {
    case 'string':
      if (value === null) return null;
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? ageSince(value, now) : null;
    default:
      return null;
  }
}

/** A custom resource's printer: Name then the CRD's columns; with none declared, Age (as the CRD convertor serves). */
function customResourcePrinter(r: ResourceInfo): Printer {
  const declared = r.printerColumns ?? [];
  const printerColumns: PrinterColumn[] = declared.length > 0
    ? declared
    : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp', description: AGE_DESCRIPTION }];
  return {
    columns: [
      NAME,
      ...printerColumns.map((c) => col(c.name, c.type, c.description ?? '', c.priority ?? 0, c.format ?? '')),
    ],
    cells: (o, now) => [nameOf(o), ...printerColumns.map((c) => cellForPrinterColumn(c, o, now))],
  };
}

function printerFor(r: ResourceInfo): Printer {
  if (!r.builtin) return customResourcePrinter(r);
  if (r.kind === 'Event' && (r.group === '' || r.group === 'events.k8s.io')) {
    return { columns: EVENT_COLUMNS, cells: eventCells };
  }
  return printers[`${r.group}/${r.kind}`] ?? {
    columns: [NAME, AGE],
    cells: (o, now) => [nameOf(o), age(o, now)],
  };
}

/** The column definitions kube-sim prints for a resource. */
export function tableColumns(r: ResourceInfo): TableColumnDefinition[] {
  return printerFor(r).columns;
}

function rowObject(obj: KubeObject, includeObject: IncludeObject): unknown {
  if (includeObject === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

function row(printer: Printer, obj: KubeObject, includeObject: IncludeObject, now: Date): TableRow {
  const r: TableRow = { cells: printer.cells(obj, now) };
  if (includeObject !== 'None') r.object = rowObject(obj, includeObject);
  return r;
}

/** A list (or a single GET) as a Table; `includeObject` defaults to Metadata as kube-apiserver does. */
export function toTable(objects: KubeObject[], r: ResourceInfo, opts: TableOptions): Table {
  const printer = printerFor(r);
  const now = opts.now ?? new Date();
  const includeObject = opts.includeObject ?? 'Metadata';
  const metadata: Table['metadata'] = { resourceVersion: opts.resourceVersion };
  if (opts.continue) metadata.continue = opts.continue;
  if (opts.remainingItemCount !== undefined) metadata.remainingItemCount = opts.remainingItemCount;
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata,
    columnDefinitions: printer.columns,
    rows: objects.map((o) => row(printer, o, includeObject, now)),
  };
}

/**
 * The object of one watch event as a one-row Table. kubectl `get -w` takes its header from the
 * first Table it prints and reuses it, so later events may leave the column definitions out
 * (`withColumns: false`), as kube-apiserver does after the first event of a watch.
 */
export function toTableRowEvent(
  obj: KubeObject,
  r: ResourceInfo,
  opts: { includeObject?: IncludeObject; now?: Date; withColumns?: boolean } = {},
): Table {
  const table = toTable([obj], r, {
    resourceVersion: obj.metadata?.resourceVersion ?? '',
    includeObject: opts.includeObject,
    now: opts.now,
  });
  if (opts.withColumns === false) table.columnDefinitions = [];
  return table;
}
