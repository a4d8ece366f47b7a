// Kubernetes Events (events.k8s.io/v1) for what the workers do and what goes wrong.
//
// Never put a Secret's value in a note: notes name the key and the rule only.
// Events are best effort: a failed Event write is logged and never fails a reconcile,
// and Events are only written when a reconcile acts, so a converged object emits none.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import type { Logger } from '../common/logger.ts';
import { EVENTS, type KubeClient } from './kube.ts';

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  uid?: string;
  resourceVersion?: string;
}

export type EventType = 'Normal' | 'Warning';

export interface EventSpec {
  regarding: ObjectRef;
  type: EventType;
  /** UpperCamelCase, machine-readable: CronJobCreated, WeakPassword, InvalidSpec. */
  reason: string;
  /** What the controller did or failed to do: Create, Update, Delete, Annotate, Reconcile. */
  action: string;
  /** For a person. Never a Secret value. */
  note: string;
}

export interface EventRecorder {
  record(spec: EventSpec): Promise<void>;
}

export const REPORTING_CONTROLLER = 'kreconcile.io/worker';
/** The API server refuses notes longer than this. */
const MAX_NOTE = 1024;

/** MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The Event object for one occurrence; pure apart from the random name suffix passed in. */
export function buildEvent(spec: EventSpec, opts: { now: Date; instance: string; suffix: string }): Record<string, unknown> {
  const { regarding } = spec;
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${regarding.name}.${opts.suffix}`, namespace: regarding.namespace },
    eventTime: microTime(opts.now),
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: opts.instance,
    action: spec.action,
    reason: spec.reason,
    type: spec.type,
    note: spec.note.length > MAX_NOTE ? `${spec.note.slice(0, MAX_NOTE - 1)}…` : spec.note,
    regarding: Object.fromEntries(Object.entries(regarding).filter(([, v]) => v !== undefined)),
  };
}

export function eventRecorder(kube: KubeClient, log: Logger, opts: { now?: () => Date; instance?: string } = {}): EventRecorder {
  const now = opts.now ?? (() => new Date());
  const instance = opts.instance ?? `${os.hostname()}-${process.pid}`;
  return {
    async record(spec) {
      const event = buildEvent(spec, { now: now(), instance, suffix: randomBytes(8).toString('hex') });
      try {
        await kube.create(EVENTS, spec.regarding.namespace, event);
      } catch (err) {
        log.warn({ err: (err as Error).message, reason: spec.reason, regarding: `${spec.regarding.kind}/${spec.regarding.namespace}/${spec.regarding.name}` }, 'could not write Event');
      }
    },
  };
}
