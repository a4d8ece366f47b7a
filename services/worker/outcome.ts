// The closed set of things a reconcile can end in. Reconcilers return one of these
// (or throw for transient trouble); only worker.ts turns them into queue decisions.
import type { EventRecorder } from './events.ts';
import type { KubeClient } from './kube.ts';
import type { Logger } from '../common/logger.ts';

export type Outcome =
  /** The object is converged. `changes` lists what this pass wrote; empty means it was already converged. */
  | { type: 'done'; changes: string[] }
  /** Look again after a delay (e.g. waiting for a CronJob of that name to finish deleting). */
  | { type: 'requeue'; afterMs: number; reason: string; changes: string[] }
  /** Retrying cannot help until the object itself changes (invalid spec): never retried. */
  | { type: 'permanent'; reason: string; changes: string[] };

export const done = (changes: string[] = []): Outcome => ({ type: 'done', changes });
export const requeue = (afterMs: number, reason: string, changes: string[] = []): Outcome => ({ type: 'requeue', afterMs, reason, changes });
export const permanent = (reason: string, changes: string[] = []): Outcome => ({ type: 'permanent', reason, changes });

/** What a reconciler may use. It never sees the queue or the job. */
export interface ReconcileContext {
  kube: KubeClient;
  events: EventRecorder;
  log: Logger;
  now: () => Date;
}
