// The relay's Prometheus metrics. Labels are bounded: resource, event type, reason.
import { Counter, Gauge, type Registry } from 'prom-client';

export interface RelayMetrics {
  eventsReceived: Counter<'resource' | 'type'>;
  badEvents: Counter<'source' | 'reason'>;
  jobsEnqueued: Counter<'reason'>;
  dedupHits: Counter;
  watchRestarts: Counter<'resource' | 'cause'>;
  relists: Counter<'resource'>;
  gone: Counter<'resource'>;
  leader: Gauge;
  pendingKeys: Gauge;
  knownObjects: Gauge<'resource'>;
  redisUp: Gauge;
  auditEvents: Counter<'result'>;
  auditBatches: Counter<'code'>;
  resyncs: Counter;
  sameGenerationSkips: Counter<'resource'>;
  ownWriteSkips: Counter<'resource'>;
}

export function createRelayMetrics(registry: Registry): RelayMetrics {
  const registers = [registry];
  return {
    eventsReceived: new Counter({ name: 'kreconcile_relay_events_received_total', help: 'Watch events received, by resource and type (BOOKMARK included)', labelNames: ['resource', 'type'], registers }),
    badEvents: new Counter({ name: 'kreconcile_relay_bad_events_total', help: 'Events skipped as unusable (malformed, unknown kind, unmapped), by source (watch|audit) and reason', labelNames: ['source', 'reason'], registers }),
    jobsEnqueued: new Counter({ name: 'kreconcile_relay_jobs_enqueued_total', help: 'Keys added to the queue (deduplicated adds included), by reason', labelNames: ['reason'], registers }),
    dedupHits: new Counter({ name: 'kreconcile_relay_dedup_hits_total', help: 'Adds that coalesced into a job already waiting or stored as the next pass of an active one', registers }),
    watchRestarts: new Counter({ name: 'kreconcile_relay_watch_restarts_total', help: 'Watches (re)started, by resource and cause (start|timeout|closed|silence|error|gone)', labelNames: ['resource', 'cause'], registers }),
    relists: new Counter({ name: 'kreconcile_relay_relists_total', help: 'Full paginated lists, by resource', labelNames: ['resource'], registers }),
    gone: new Counter({ name: 'kreconcile_relay_gone_total', help: '410 Gone answers (HTTP or watch ERROR event), by resource', labelNames: ['resource'], registers }),
    leader: new Gauge({ name: 'kreconcile_relay_leader', help: '1 while this replica holds the Lease and relays, else 0', registers }),
    pendingKeys: new Gauge({ name: 'kreconcile_relay_pending_keys', help: 'Keys held in memory, coalesced, waiting to be added to Redis', registers }),
    knownObjects: new Gauge({ name: 'kreconcile_relay_known_objects', help: 'Objects the relay knows (id + resourceVersion only), by resource', labelNames: ['resource'], registers }),
    redisUp: new Gauge({ name: 'kreconcile_relay_redis_up', help: '1 while the last write to Redis succeeded', registers }),
    auditEvents: new Counter({ name: 'kreconcile_relay_audit_events_total', help: 'Audit events received on POST /audit, by result (enqueued|ignored|unmapped|own_write)', labelNames: ['result'], registers }),
    auditBatches: new Counter({ name: 'kreconcile_relay_audit_batches_total', help: 'Audit EventList posts, by HTTP answer code', labelNames: ['code'], registers }),
    sameGenerationSkips: new Counter({ name: 'kreconcile_relay_same_generation_skips_total', help: 'MODIFIED events not enqueued because metadata.generation (and deletion) did not change: status/metadata-only writes', labelNames: ['resource'], registers }),
    ownWriteSkips: new Counter({ name: 'kreconcile_relay_own_write_skips_total', help: "CronJob events not enqueued because the CronJob is exactly as a worker wrote it (the worker's own create or update)", labelNames: ['resource'], registers }),
    resyncs: new Counter({ name: 'kreconcile_relay_resyncs_total', help: 'Periodic resyncs (every known key enqueued)', registers }),
  };
}
