// Worker metrics, all named kreconcile_worker_*. Labels are low-cardinality on
// purpose: kinds, results, verbs and rules, never object names or values.
import { Counter, Histogram, type Registry } from 'prom-client';

export type ReconcileResult = 'unchanged' | 'changed' | 'requeue' | 'permanent' | 'error';

export interface WorkerMetrics {
  reconciles: Counter<'kind' | 'result'>;
  duration: Histogram<'kind' | 'result'>;
  apiWrites: Counter<'verb' | 'resource'>;
  queueWait: Histogram<'kind'>;
  retries: Counter<'kind' | 'reason'>;
  weakPasswords: Counter<'mode' | 'rule' | 'action'>;
}

/** Register the worker's metrics, or reuse them when another worker in this process already did. */
export function workerMetrics(registry: Registry): WorkerMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: L[], buckets: number[]) =>
    (registry.getSingleMetric(name) as Histogram<L> | undefined) ?? new Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });
  const seconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    reconciles: counter('kreconcile_worker_reconciles_total', 'Reconciles by kind and result (unchanged = converged, no write).', ['kind', 'result']),
    duration: histogram('kreconcile_worker_reconcile_duration_seconds', 'Time of one reconcile, reads and writes included.', ['kind', 'result'], seconds),
    apiWrites: counter('kreconcile_worker_api_writes_total', 'Write requests sent to the Kubernetes API, by verb and resource.', ['verb', 'resource']),
    queueWait: histogram('kreconcile_worker_queue_wait_seconds', 'Time a job waited in the queue before a worker took it (first attempt).', ['kind'], [...seconds, 30, 60]),
    retries: counter('kreconcile_worker_retries_total', 'Retries: conflict = re-read after a 409 within a job; error = job handed back to the queue for backoff.', ['kind', 'reason']),
    weakPasswords: counter('kreconcile_worker_weak_passwords_total', 'Weak Secrets acted on, by policy mode, broken rule and action (annotated|deleted).', ['mode', 'rule', 'action']),
  };
}
