// What kube-apiserver's per-kind REST strategies do for the built-ins we serve:
// defaults, derived fields and validation, with the real messages.
import { CronExpressionParser } from 'cron-parser';
import { normalizeCrd, validateCrd } from './crd.ts';
import { badRequest, causes } from './errors.ts';
import { validateObjectMeta } from './validation.ts';
import type { KubeObject, ResourceInfo, StatusCause } from './types.ts';

type Obj = Record<string, any>;

export interface StrategyContext {
  info: ResourceInfo;
  now: Date;
  /** The stored object on update; undefined on create. */
  old?: KubeObject;
  /** '' for the main resource, else 'status' or 'finalize'. */
  subresource?: string;
  /** The other stored objects of the same resource (a CRD's names are checked against its group's). */
  peers?: () => Iterable<KubeObject>;
}

export interface KindStrategy {
  /** Checks that kube-apiserver makes while decoding: failures are 400, not 422. */
  decode?(obj: KubeObject, info: ResourceInfo): void;
  /** Defaults and derived fields; runs on create and update (old in ctx on update). */
  normalize?(obj: KubeObject, ctx: StrategyContext): void;
  /** Kind-specific validation beyond object metadata. */
  validate?(obj: KubeObject, ctx: StrategyContext): StatusCause[];
  /** Name format: most kinds use DNS-1123 subdomains, namespaces labels. */
  nameRule?: 'subdomain' | 'label' | 'segment';
  /** Whether DELETE answers with the object (true) or a Status (false). */
  returnsDeletedObject?: boolean;
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const CONFIG_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const MAX_SECRET_BYTES = 1024 * 1024;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function checkBase64Map(kind: string, field: string, obj: Obj): void {
  const data = obj[field];
  if (data === undefined || data === null) return;
  if (typeof data !== 'object' || Array.isArray(data))
    throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${Array.isArray(data) ? 'array' : typeof data} into Go struct field ${kind}.${field} of type map[string][]uint8`);
  for (const v of Object.values(data)) {
    if (v === null) continue;
    if (typeof v !== 'string') throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${typeof v} into Go struct field ${kind}.${field} of type []uint8`);
    if (!BASE64.test(v)) {
      const at = firstBadBase64Byte(v);
      throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: illegal base64 data at input byte ${at}`);
    }
  }
}

function firstBadBase64Byte(v: string): number {
  for (let i = 0; i < v.length; i++) if (!/[A-Za-z0-9+/=]/.test(v[i])) return i;
  return Math.max(0, v.length - (v.length % 4 || 4));
}

function checkStringMap(kind: string, field: string, obj: Obj): void {
  const data = obj[field];
  if (data === undefined || data === null) return;
  if (typeof data !== 'object' || Array.isArray(data))
    throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${Array.isArray(data) ? 'array' : typeof data} into Go struct field ${kind}.${field} of type map[string]string`);
  for (const v of Object.values(data))
    if (typeof v !== 'string' && v !== null) throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: json: cannot unmarshal ${typeof v} into Go struct field ${kind}.${field} of type string`);
}

const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';
const TO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}/;

/**
 * A metav1.MicroTime field as kube-apiserver decodes it: Go parses it with the layout
 * RFC3339Micro, which takes exactly six fractional digits, so "…05.103Z" (what
 * JavaScript's toISOString writes) or "…05Z" is a 400, before validation. The message
 * names the first element Go fails on, as time.Parse does.
 */
function checkMicroTime(info: ResourceInfo, path: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const cannot = (detail: string) => badRequest(`${info.kind} in version "${info.version}" cannot be handled as a ${info.kind}: ${detail}`);
  if (typeof value !== 'string') throw cannot(`json: cannot unmarshal ${Array.isArray(value) ? 'array' : typeof value} into Go struct field ${path} of type string`);
  const parsing = (rest: string, element: string) => cannot(`parsing time ${JSON.stringify(value)} as "${RFC3339_MICRO}": cannot parse ${JSON.stringify(rest)} as ${JSON.stringify(element)}`);
  const head = TO_SECONDS.exec(value);
  if (!head) throw parsing(value, '2006');
  const afterSeconds = value.slice(head[0].length);
  const fraction = /^\.\d{6}/.exec(afterSeconds);
  if (!fraction) throw parsing(afterSeconds, '.000000');
  const zone = afterSeconds.slice(fraction[0].length);
  if (!/^(Z|[+-]\d{2}:\d{2})$/.test(zone)) throw parsing(zone, 'Z07:00');
  // The layout fits; Go then checks each element's range, in this order.
  const [month, day, hour, minute, second] = [5, 8, 11, 14, 17].map((at) => Number(value.slice(at, at + 2)));
  const year = Number(value.slice(0, 4));
  const daysInMonth = new Date(Date.UTC(year, month!, 0)).getUTCDate();
  const outOfRange =
    month! < 1 || month! > 12 ? 'month' : day! < 1 || day! > daysInMonth ? 'day' : hour! > 23 ? 'hour' : minute! > 59 ? 'minute' : second! > 59 ? 'second'
    : zone !== 'Z' && Number(zone.slice(1, 3)) > 24 ? 'time zone offset hour' : zone !== 'Z' && Number(zone.slice(4, 6)) > 60 ? 'time zone offset minute' : undefined;
  if (outOfRange) throw cannot(`parsing time ${JSON.stringify(value)}: ${outOfRange} out of range`);
}

function keyCauses(field: string, data: unknown): StatusCause[] {
  if (!data || typeof data !== 'object') return [];
  return Object.keys(data)
    .filter((k) => !CONFIG_KEY.test(k))
    .map((k) => causes.invalid(`${field}[${k}]`, k, CONFIG_KEY_MSG));
}

function immutableCauses(obj: Obj, old: Obj | undefined, fields: string[]): StatusCause[] {
  const out: StatusCause[] = [];
  if (!old || old.immutable !== true) return out;
  if (obj.immutable !== true) out.push(causes.forbidden('immutable', 'field is immutable when `immutable` is set'));
  for (const f of fields)
    if (JSON.stringify(obj[f] ?? {}) !== JSON.stringify(old[f] ?? {})) out.push(causes.forbidden(f, 'field is immutable when `immutable` is set'));
  return out;
}

const secret: KindStrategy = {
  decode(obj) {
    checkBase64Map('Secret', 'data', obj);
    checkStringMap('Secret', 'stringData', obj);
  },
  normalize(obj: Obj) {
    // stringData is a write-only convenience: merged into data, never stored.
    if (obj.stringData && typeof obj.stringData === 'object') {
      obj.data = { ...(obj.data ?? {}) };
      for (const [k, v] of Object.entries(obj.stringData)) obj.data[k] = Buffer.from(String(v ?? ''), 'utf8').toString('base64');
    }
    delete obj.stringData;
    if (obj.data) for (const k of Object.keys(obj.data)) if (obj.data[k] === null) obj.data[k] = '';
    if (!obj.type) obj.type = 'Opaque';
  },
  validate(obj: Obj, { old }) {
    const out = keyCauses('data', obj.data);
    const size = Object.entries(obj.data ?? {}).reduce((n, [k, v]) => n + k.length + Buffer.from(String(v), 'base64').length, 0);
    if (size > MAX_SECRET_BYTES) out.push(causes.tooLong('data', MAX_SECRET_BYTES));
    if (old && (old as Obj).type !== obj.type) out.push(causes.invalid('type', obj.type, 'field is immutable'));
    out.push(...immutableCauses(obj, old, ['data']));
    const data = obj.data ?? {};
    const has = (k: string) => typeof data[k] === 'string' && data[k].length > 0;
    if (obj.type === 'kubernetes.io/basic-auth' && !has('username') && !has('password')) out.push(causes.required('data[username]'));
    if (obj.type === 'kubernetes.io/tls') {
      if (!(('tls.crt') in data)) out.push(causes.required('data[tls.crt]'));
      if (!(('tls.key') in data)) out.push(causes.required('data[tls.key]'));
    }
    if (obj.type === 'kubernetes.io/dockerconfigjson' && !has('.dockerconfigjson')) out.push(causes.required('data[.dockerconfigjson]'));
    return out;
  },
};

const configMap: KindStrategy = {
  decode(obj) {
    checkStringMap('ConfigMap', 'data', obj);
    checkBase64Map('ConfigMap', 'binaryData', obj);
  },
  validate(obj: Obj, { old }) {
    const out = [...keyCauses('data', obj.data), ...keyCauses('binaryData', obj.binaryData)];
    for (const k of Object.keys(obj.data ?? {})) if (obj.binaryData && k in obj.binaryData) out.push(causes.invalid(`data[${k}]`, k, 'duplicate of key present in binaryData'));
    const size =
      Object.entries(obj.data ?? {}).reduce((n, [k, v]) => n + k.length + Buffer.byteLength(String(v)), 0) +
      Object.entries(obj.binaryData ?? {}).reduce((n, [k, v]) => n + k.length + Buffer.from(String(v), 'base64').length, 0);
    if (size > MAX_SECRET_BYTES) out.push(causes.tooLong('', MAX_SECRET_BYTES));
    out.push(...immutableCauses(obj, old, ['data', 'binaryData']));
    return out;
  },
};

const namespace: KindStrategy = {
  nameRule: 'label',
  returnsDeletedObject: true,
  normalize(obj: Obj, { old, subresource }) {
    obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name };
    if (!old) {
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
    } else if (subresource !== 'finalize') {
      // spec.finalizers only change through /finalize; status through /status.
      obj.spec = old.spec;
    }
  },
};

const SYSTEM_NAMESPACES = new Set(['default', 'kube-system', 'kube-public']);
export function undeletableNamespace(name: string): boolean {
  return SYSTEM_NAMESPACES.has(name);
}

function podTemplateDefaults(template: Obj | undefined): void {
  if (!template || typeof template !== 'object') return;
  const spec = (template.spec ??= {});
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ??= 'default-scheduler';
  for (const c of Array.isArray(spec.containers) ? spec.containers : []) {
    if (!c || typeof c !== 'object') continue;
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
      const tag = c.image.includes('@') ? 'digest' : (c.image.split('/').pop()!.split(':')[1] ?? 'latest');
      c.imagePullPolicy = tag === 'latest' ? 'Always' : 'IfNotPresent';
    }
    c.resources ??= {};
  }
  template.metadata ??= {};
}

function podTemplateCauses(prefix: string, template: Obj | undefined, jobLike: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const spec = template?.spec;
  const containers = spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) out.push(causes.required(`${prefix}.spec.containers`));
  else
    containers.forEach((c: Obj, i: number) => {
      if (!c?.name) out.push(causes.required(`${prefix}.spec.containers[${i}].name`));
      if (!c?.image) out.push(causes.required(`${prefix}.spec.containers[${i}].image`));
    });
  if (jobLike && spec && !['OnFailure', 'Never'].includes(spec.restartPolicy))
    out.push(causes.notSupported(`${prefix}.spec.restartPolicy`, spec.restartPolicy, ['OnFailure', 'Never']));
  return out;
}

function jobSpecDefaults(spec: Obj): void {
  spec.parallelism ??= 1;
  spec.completions ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  podTemplateDefaults(spec.template);
}

const cronJob: KindStrategy = {
  normalize(obj: Obj, { old }) {
    const spec = (obj.spec ??= {});
    spec.concurrencyPolicy ??= 'Allow';
    spec.suspend ??= false;
    spec.successfulJobsHistoryLimit ??= 3;
    spec.failedJobsHistoryLimit ??= 1;
    if (spec.jobTemplate && typeof spec.jobTemplate === 'object') {
      spec.jobTemplate.metadata ??= {};
      const jobSpec = (spec.jobTemplate.spec ??= {});
      jobSpec.backoffLimit ??= 6;
      jobSpec.completionMode ??= 'NonIndexed';
      jobSpec.suspend ??= false;
      podTemplateDefaults(jobSpec.template);
    }
    if (!old) obj.status = {};
  },
  validate(obj: Obj) {
    const out: StatusCause[] = [];
    const spec = obj.spec ?? {};
    if (!spec.schedule) out.push(causes.required('spec.schedule'));
    else if (typeof spec.schedule === 'string') {
      const problem = scheduleProblem(spec.schedule);
      if (problem !== undefined) out.push(causes.invalid('spec.schedule', spec.schedule, problem));
    }
    if (!['Allow', 'Forbid', 'Replace'].includes(spec.concurrencyPolicy))
      out.push(causes.notSupported('spec.concurrencyPolicy', spec.concurrencyPolicy, ['Allow', 'Forbid', 'Replace']));
    if (!spec.jobTemplate) out.push(causes.required('spec.jobTemplate'));
    else out.push(...podTemplateCauses('spec.jobTemplate.spec.template', spec.jobTemplate.spec?.template, true));
    if (spec.timeZone !== undefined && spec.timeZone !== null) {
      try {
        new Intl.DateTimeFormat('en-US', { timeZone: spec.timeZone });
      } catch {
        out.push(causes.invalid('spec.timeZone', spec.timeZone, 'unknown time zone ' + spec.timeZone));
      }
    }
    return out;
  },
};

// cron-parser builds luxon dates on every parse, the largest part of a CronJob write;
// the verdict depends on the string alone, and schedules repeat.
const scheduleProblems = new Map<string, string | undefined>();

function scheduleProblem(schedule: string): string | undefined {
  if (scheduleProblems.has(schedule)) return scheduleProblems.get(schedule);
  let problem: string | undefined;
  try {
    CronExpressionParser.parse(schedule.replace(/^TZ=\S+\s+|^CRON_TZ=\S+\s+/, ''));
  } catch (err) {
    problem = (err as Error).message;
  }
  if (scheduleProblems.size >= 1000) scheduleProblems.delete(scheduleProblems.keys().next().value!);
  scheduleProblems.set(schedule, problem);
  return problem;
}

const job: KindStrategy = {
  normalize(obj: Obj, { old }) {
    jobSpecDefaults((obj.spec ??= {}));
    if (!old) obj.status = {};
  },
  validate(obj: Obj) {
    return podTemplateCauses('spec.template', obj.spec?.template, true);
  },
};

const lease: KindStrategy = {
  decode(obj: Obj, info) {
    for (const f of ['acquireTime', 'renewTime']) checkMicroTime(info, `LeaseSpec.spec.${f}`, obj.spec?.[f]);
  },
  validate(obj: Obj) {
    const out: StatusCause[] = [];
    const spec = obj.spec ?? {};
    if (spec.leaseDurationSeconds !== undefined && spec.leaseDurationSeconds !== null && !(spec.leaseDurationSeconds > 0))
      out.push(causes.invalid('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0'));
    if (spec.leaseTransitions !== undefined && spec.leaseTransitions !== null && spec.leaseTransitions < 0)
      out.push(causes.invalid('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0'));
    return out;
  },
};

const event: KindStrategy = {
  decode(obj: Obj, info) {
    checkMicroTime(info, 'Event.eventTime', obj.eventTime);
    checkMicroTime(info, 'EventSeries.series.lastObservedTime', obj.series?.lastObservedTime);
  },
  normalize(obj: Obj) {
    obj.involvedObject ??= {};
  },
  validate(obj: Obj, { info }) {
    const out: StatusCause[] = [];
    const ns = obj.metadata.namespace;
    const involved = obj.involvedObject ?? {};
    if (involved.namespace && involved.namespace !== ns) out.push(causes.invalid('involvedObject.namespace', involved.namespace, 'does not match event.namespace'));
    if (info.group === 'events.k8s.io') {
      // The events.k8s.io API requires what the core API leaves optional.
      if (!obj.eventTime) out.push(causes.required('eventTime'));
      if (!obj.reportingComponent) out.push(causes.required('reportingController'));
      if (!obj.reportingInstance) out.push(causes.required('reportingInstance'));
      if (!obj.action) out.push(causes.required('action'));
      if (!obj.reason) out.push(causes.required('reason'));
    }
    if (typeof obj.message === 'string' && info.group === 'events.k8s.io' && obj.message.length > 1024) out.push(causes.tooLong('note', 1024));
    if (obj.type && !['Normal', 'Warning'].includes(obj.type) && info.group === 'events.k8s.io')
      out.push(causes.notSupported('type', obj.type, ['Normal', 'Warning']));
    return out;
  },
};

const webhookConfiguration: KindStrategy = {
  normalize(obj: Obj) {
    for (const w of Array.isArray(obj.webhooks) ? obj.webhooks : []) {
      if (!w || typeof w !== 'object') continue;
      w.failurePolicy ??= 'Fail';
      w.matchPolicy ??= 'Equivalent';
      w.namespaceSelector ??= {};
      w.objectSelector ??= {};
      w.timeoutSeconds ??= 10;
      for (const r of Array.isArray(w.rules) ? w.rules : []) if (r && typeof r === 'object') r.scope ??= '*';
      if (w.clientConfig?.service) w.clientConfig.service.port ??= 443;
    }
  },
  validate(obj: Obj) {
    const out: StatusCause[] = [];
    const names = new Set<string>();
    (Array.isArray(obj.webhooks) ? obj.webhooks : []).forEach((w: Obj, i: number) => {
      const f = `webhooks[${i}]`;
      if (!w?.name) out.push(causes.required(`${f}.name`));
      else {
        if (w.name.split('.').length < 3) out.push(causes.invalid(`${f}.name`, w.name, 'should be a domain with at least three segments separated by dots'));
        if (names.has(w.name)) out.push(causes.duplicate(`${f}.name`, w.name));
        names.add(w.name);
      }
      if (!w?.sideEffects) out.push(causes.required(`${f}.sideEffects`));
      else if (!['None', 'NoneOnDryRun'].includes(w.sideEffects)) out.push(causes.notSupported(`${f}.sideEffects`, w.sideEffects, ['None', 'NoneOnDryRun']));
      if (!Array.isArray(w?.admissionReviewVersions) || w.admissionReviewVersions.length === 0) out.push(causes.required(`${f}.admissionReviewVersions`));
      else if (!w.admissionReviewVersions.some((v: string) => v === 'v1' || v === 'v1beta1'))
        out.push(causes.invalid(`${f}.admissionReviewVersions`, w.admissionReviewVersions, 'must include at least one of v1, v1beta1'));
      const cc = w?.clientConfig ?? {};
      if (!cc.url && !cc.service) out.push(causes.required(`${f}.clientConfig`, 'exactly one of url or service is required'));
      if (cc.url && cc.service) out.push(causes.required(`${f}.clientConfig`, 'exactly one of url or service is required'));
      if (!['Ignore', 'Fail'].includes(w?.failurePolicy)) out.push(causes.notSupported(`${f}.failurePolicy`, w?.failurePolicy, ['Fail', 'Ignore']));
      if (typeof w?.timeoutSeconds === 'number' && (w.timeoutSeconds < 1 || w.timeoutSeconds > 30))
        out.push(causes.invalid(`${f}.timeoutSeconds`, w.timeoutSeconds, 'the timeout value must be between 1 and 30 seconds'));
    });
    return out;
  },
};

const STRATEGIES: Record<string, KindStrategy> = {
  '/Secret': secret,
  '/ConfigMap': configMap,
  '/Namespace': namespace,
  '/Event': event,
  'events.k8s.io/Event': event,
  'batch/CronJob': cronJob,
  'batch/Job': job,
  'coordination.k8s.io/Lease': lease,
  'admissionregistration.k8s.io/ValidatingWebhookConfiguration': webhookConfiguration,
  'apiextensions.k8s.io/CustomResourceDefinition': {
    normalize: (obj, ctx) => normalizeCrd(obj, ctx.now, ctx.old, ctx.peers?.() ?? []),
    validate: (obj) => validateCrd(obj),
  },
};

const NONE: KindStrategy = {};

export function strategyFor(info: ResourceInfo): KindStrategy {
  if (!info.builtin) return { returnsDeletedObject: true };
  return STRATEGIES[`${info.group}/${info.kind}`] ?? NONE;
}

export function metaCauses(obj: KubeObject, info: ResourceInfo): StatusCause[] {
  return validateObjectMeta(obj, strategyFor(info).nameRule ?? 'subdomain');
}
