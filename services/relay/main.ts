// `kreconcile relay`: watch Secrets, CronTabs and managed CronJobs and turn every
// change into a deduplicated job. Run two replicas: one leads (Lease), one stands by.
import { createRegistry } from '../common/metrics.ts';
import { ConfigError } from '../common/config.ts';
import { defineRole } from '../common/role.ts';
import { startRelay } from './index.ts';
import { loadKubeAccess } from './kube-access.ts';
import { relayOptions } from './options.ts';

export { relayOptions };

export default defineRole({
  description:
    'Watch Secrets, CronTabs and kreconcile-managed CronJobs (list + watch with checkpoints in Redis) and enqueue each changed key; ' +
    'leader-elected through a Lease; optional HTTPS POST /audit endpoint for the API server audit webhook.',
  options: relayOptions,
  async run(config, { log, shutdown }) {
    const problems: string[] = [];
    if (config.leaseRenew * 2 > config.leaseDuration) problems.push('LEASE_RENEW must be at most half of LEASE_DURATION');
    if (!!config.auditTlsCertFile !== !!config.auditTlsKeyFile) problems.push('AUDIT_TLS_CERT_FILE and AUDIT_TLS_KEY_FILE go together');
    if (config.auditTokenFile && !config.auditTlsCertFile) problems.push('AUDIT_TOKEN_FILE needs the audit endpoint (AUDIT_TLS_CERT_FILE, AUDIT_TLS_KEY_FILE)');
    if (problems.length) throw new ConfigError(problems);

    const registry = createRegistry('relay');
    const relay = await startRelay({
      kubeconfig: await loadKubeAccess(config.kubeconfig),
      redisUrl: config.redisUrl,
      queueName: config.queueName,
      queuePrefix: config.queuePrefix,
      log,
      registry,
      identity: config.identity,
      leaderElection: config.leaderElection
        ? { name: config.leaseName, namespace: config.leaseNamespace, leaseDurationMs: config.leaseDuration * 1000, renewIntervalMs: config.leaseRenew * 1000 }
        : false,
      resyncIntervalMs: config.resyncInterval * 1000,
      watchTimeoutSeconds: config.watchTimeout,
      watchSilenceTimeoutMs: config.watchSilenceTimeout * 1000,
      listPageSize: config.listPageSize,
      audit: config.auditTlsCertFile && config.auditTlsKeyFile
        ? { port: config.auditPort, certFile: config.auditTlsCertFile, keyFile: config.auditTlsKeyFile, tokenFile: config.auditTokenFile, maxBodyBytes: config.auditMaxBodyBytes }
        : undefined,
      healthPort: config.healthPort,
    });
    shutdown.register('relay', () => relay.stop());
    if (!config.auditTlsCertFile) log.info('audit endpoint off (no AUDIT_TLS_CERT_FILE)');
    log.info({ identity: relay.identity, healthPort: relay.healthPort, auditPort: relay.auditPort }, 'relay role running');
  },
});
