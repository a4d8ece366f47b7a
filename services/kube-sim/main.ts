// `kreconcile sim`: the Kubernetes API emulator as a process. Writes a kubeconfig
// pointing at it once it is serving.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { commonOptions, schemas } from '../common/config.ts';
import { defineRole } from '../common/role.ts';
import { startKubeSim } from './index.ts';

export default defineRole({
  description: 'Serves an emulated Kubernetes API (kube-sim) on plain HTTP and writes a kubeconfig for it.',
  options: {
    logLevel: commonOptions.logLevel,
    port: { env: 'SIM_PORT', flag: 'port', help: 'API port (default 6443; 0 = any free port)', schema: schemas.port(6443) },
    host: { env: 'SIM_HOST', flag: 'host', help: 'address to listen on (default 127.0.0.1)', schema: schemas.string('127.0.0.1') },
    kubeconfigOut: {
      env: 'SIM_KUBECONFIG_OUT',
      flag: 'kubeconfig-out',
      help: 'write a kubeconfig for the emulator here once it is serving (default .kreconcile/kubeconfig)',
      schema: schemas.string('.kreconcile/kubeconfig'),
    },
    adminPort: {
      env: 'SIM_ADMIN_PORT',
      flag: 'admin-port',
      help: 'fault-switch admin port on 127.0.0.1 (unset = off; 0 = any free port)',
      schema: z.coerce.number({ message: 'must be a port number' }).int().min(0).max(65535).optional(),
    },
    history: { env: 'SIM_HISTORY', flag: 'history', help: 'watch history window in events (default 10000)', schema: schemas.positiveInt(10_000) },
    bookmarkInterval: { env: 'SIM_BOOKMARK_INTERVAL', flag: 'bookmark-interval', help: 'BOOKMARK period for watches that allow them (default 5s)', schema: schemas.seconds(5) },
    auditWebhookUrl: { env: 'SIM_AUDIT_WEBHOOK_URL', flag: 'audit-webhook-url', help: 'POST audit EventList batches here (like --audit-webhook-config-file); unset = off', schema: schemas.optionalString() },
    auditWebhookCaFile: { env: 'SIM_AUDIT_WEBHOOK_CA_FILE', flag: 'audit-webhook-ca-file', help: 'PEM CA for an https audit webhook URL', schema: schemas.optionalString() },
    auditWebhookTokenFile: { env: 'SIM_AUDIT_WEBHOOK_TOKEN_FILE', flag: 'audit-webhook-token-file', help: 'bearer token (file) sent to the audit webhook', schema: schemas.optionalString() },
    auditWebhookBatchMaxWait: { env: 'SIM_AUDIT_WEBHOOK_BATCH_MAX_WAIT', flag: 'audit-webhook-batch-max-wait', help: 'longest an audit event waits for its batch (default 200ms)', schema: schemas.seconds(0.2) },
    eventTtl: { env: 'SIM_EVENT_TTL', flag: 'event-ttl', help: 'how long Events live after their last write (default 1h)', schema: schemas.seconds(3600) },
  },
  async run(config, { log, shutdown }) {
    const kubeconfigPath = path.resolve(config.kubeconfigOut);
    fs.mkdirSync(path.dirname(kubeconfigPath), { recursive: true });
    const sim = await startKubeSim({
      port: config.port,
      host: config.host,
      adminPort: config.adminPort,
      historyLimit: config.history,
      bookmarkIntervalMs: config.bookmarkInterval * 1000,
      eventTtlSeconds: config.eventTtl,
      auditWebhook: config.auditWebhookUrl
        ? {
            url: config.auditWebhookUrl,
            caPem: config.auditWebhookCaFile ? fs.readFileSync(config.auditWebhookCaFile, 'utf8') : undefined,
            token: config.auditWebhookTokenFile ? fs.readFileSync(config.auditWebhookTokenFile, 'utf8').trim() : undefined,
            batchMaxWaitMs: config.auditWebhookBatchMaxWait * 1000,
          }
        : undefined,
      kubeconfigPath,
      log,
    });
    shutdown.register('kube-sim', () => sim.stop());
    log.info({ url: sim.url, kubeconfig: kubeconfigPath, admin: sim.adminUrl }, 'kube-sim ready');
  },
});
