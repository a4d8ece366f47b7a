// The relay role's options: one table drives flags, environment, validation and usage.
import { z } from 'zod';
import { commonOptions, kubeOptions, redisOptions, schemas, type OptionTable } from '../common/config.ts';

export const relayOptions = {
  ...commonOptions,
  ...kubeOptions,
  ...redisOptions,
  leaderElection: { env: 'LEADER_ELECTION', flag: 'leader-election', help: 'elect one leader through a Lease; false = relay at once (single replica, dev) (default true)', schema: schemas.bool(true) },
  leaseName: { env: 'LEASE_NAME', flag: 'lease-name', help: 'coordination.k8s.io/v1 Lease the replicas compete for (default kreconcile-relay)', schema: schemas.string('kreconcile-relay') },
  leaseNamespace: { env: 'LEASE_NAMESPACE', flag: 'lease-namespace', help: "the Lease's namespace (default default)", schema: schemas.string('default') },
  leaseDuration: { env: 'LEASE_DURATION', flag: 'lease-duration', help: 'how long a lease lasts without renewal; a standby takes over after it (default 15s)', schema: schemas.seconds(15) },
  leaseRenew: { env: 'LEASE_RENEW', flag: 'lease-renew', help: 'how often the leader renews and a standby retries; must be below LEASE_DURATION/2 (default 5s)', schema: schemas.seconds(5) },
  identity: { env: 'POD_NAME', flag: 'identity', help: "this replica's holderIdentity in the Lease (default hostname + random suffix)", schema: schemas.optionalString() },
  resyncInterval: { env: 'RESYNC_INTERVAL', flag: 'resync-interval', help: 'enqueue every known key this often; 0 = never (default 10m)', schema: schemas.seconds(600) },
  watchTimeout: { env: 'WATCH_TIMEOUT', flag: 'watch-timeout', help: 'timeoutSeconds asked of each watch (jittered up to +50%); the watch is then resumed (default 5m)', schema: schemas.seconds(300) },
  watchSilenceTimeout: { env: 'WATCH_SILENCE_TIMEOUT', flag: 'watch-silence-timeout', help: 'restart a watch that sent nothing (not even a bookmark) for this long (default 2m)', schema: schemas.seconds(120) },
  listPageSize: { env: 'LIST_PAGE_SIZE', flag: 'list-page-size', help: 'items per list page (limit) when (re)listing (default 500)', schema: schemas.positiveInt(500) },
  auditPort: { env: 'AUDIT_PORT', flag: 'audit-port', help: 'HTTPS port for POST /audit (the API server audit webhook); served only with a certificate (default 8444)', schema: schemas.port(8444) },
  auditTlsCertFile: { env: 'AUDIT_TLS_CERT_FILE', flag: 'audit-tls-cert', help: 'PEM certificate for the audit endpoint; unset = audit endpoint off', schema: schemas.optionalString() },
  auditTlsKeyFile: { env: 'AUDIT_TLS_KEY_FILE', flag: 'audit-tls-key', help: 'PEM key for the audit endpoint', schema: schemas.optionalString() },
  auditTokenFile: { env: 'AUDIT_TOKEN_FILE', flag: 'audit-token-file', help: 'file holding the bearer token the API server must send to /audit; unset = no token check', schema: schemas.optionalString() },
  auditMaxBodyBytes: { env: 'AUDIT_MAX_BODY_BYTES', flag: 'audit-max-body', help: 'largest audit batch accepted; larger is 413 (default 8388608)', schema: schemas.positiveInt(8 * 1024 * 1024) },
} satisfies OptionTable;

export type RelayOptionValues = { readonly [K in keyof typeof relayOptions]: z.output<(typeof relayOptions)[K]['schema']> };
