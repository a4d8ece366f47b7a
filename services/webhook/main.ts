// `kreconcile webhook`: the validating admission webhook over HTTPS, with
// /healthz, /readyz and /metrics on a separate plain-HTTP port. It needs no
// Kubernetes API access and keeps no state.
import { z } from 'zod';
import { commonOptions, schemas, type OptionTable } from '../common/config.ts';
import { startHealthServer } from '../common/health.ts';
import { createRegistry } from '../common/metrics.ts';
import { passwordPolicyFrom, passwordPolicyOptions } from '../common/password-policy.ts';
import { defineRole } from '../common/role.ts';
import { createListener } from './app.ts';
import { createWebhookMetrics } from './metrics.ts';
import { startHttpsServer } from '../common/https-server.ts';

const requiredFile = (what: string) => z.string({ message: `required: path to the PEM ${what}` }).min(1, `required: path to the PEM ${what}`);

export const webhookOptions = {
  port: { env: 'WEBHOOK_PORT', flag: 'port', help: 'HTTPS port for POST /validate (default 8443)', schema: schemas.port(8443) },
  host: { env: 'WEBHOOK_HOST', flag: 'host', help: 'address to listen on (default 0.0.0.0)', schema: schemas.string('0.0.0.0') },
  tlsCert: { env: 'TLS_CERT_FILE', flag: 'tls-cert', help: 'PEM certificate file (required; reloaded when it changes)', schema: requiredFile('certificate') },
  tlsKey: { env: 'TLS_KEY_FILE', flag: 'tls-key', help: 'PEM private key file (required; reloaded when it changes)', schema: requiredFile('private key') },
  ...passwordPolicyOptions,
  ...commonOptions,
} satisfies OptionTable;

export default defineRole({
  description: 'Validating admission webhook: POST /validate answers AdmissionReviews for Secrets (password policy) and CronTabs (schedule, time zone, replicas).',
  options: webhookOptions,
  // One line per review: at thousands of reviews a second, a write per line was ~10 % of the CPU.
  logBatchMs: 100,
  async run(config, { log, shutdown }) {
    const registry = createRegistry('webhook');
    const metrics = createWebhookMetrics(registry);
    const health = await startHealthServer({ port: config.healthPort, registry });
    shutdown.register('health server', () => health.close());

    const policy = passwordPolicyFrom(config);
    const app = createListener({ log, policy, metrics });
    const server = await startHttpsServer({ app, certFile: config.tlsCert, keyFile: config.tlsKey, port: config.port, host: config.host, log });
    shutdown.register('webhook server', () => server.close());
    health.addCheck('https', () => server.server.listening || 'HTTPS server not listening');
    log.info({ port: server.port, healthPort: health.port, minPasswordLength: policy.minLength, passwordKeys: policy.keys }, 'webhook ready');
  },
});
