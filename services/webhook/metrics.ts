// The webhook's Prometheus metrics. Label values come from a closed set: the
// request is untrusted, and a kind or operation copied from it would let anyone
// create unbounded series.
import { Counter, Histogram, type Registry } from 'prom-client';

const KINDS = new Set(['Secret', 'CronTab']);
const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

/** allowed / denied: a review answered; bad_request: 4xx; error: 500. */
export type ReviewResult = 'allowed' | 'denied' | 'bad_request' | 'error';

export interface WebhookMetrics {
  observe(kind: string | undefined, operation: string | undefined, result: ReviewResult, seconds: number): void;
}

export function createWebhookMetrics(registry: Registry): WebhookMetrics {
  const reviews = new Counter({
    name: 'kreconcile_webhook_reviews_total',
    help: 'Admission reviews answered, by kind, operation and result (allowed, denied, bad_request, error).',
    labelNames: ['kind', 'operation', 'result'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'kreconcile_webhook_review_duration_seconds',
    help: 'Time from the request arriving to the answer being written, body parsing included.',
    labelNames: ['kind'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
    registers: [registry],
  });
  return {
    observe(kind, operation, result, seconds) {
      const k = kind && KINDS.has(kind) ? kind : kind ? 'other' : 'unknown';
      const op = operation && OPERATIONS.has(operation) ? operation : 'unknown';
      reviews.inc({ kind: k, operation: op, result });
      duration.observe({ kind: k }, seconds);
    },
  };
}
