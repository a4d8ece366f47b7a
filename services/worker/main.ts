// `kreconcile worker`: consume the reconcile queue. Stateless; run as many as you like.
import { z } from 'zod';
import { commonOptions, kubeOptions, redisOptions, schemas, type OptionTable } from '../common/config.ts';
import { startHealthServer } from '../common/health.ts';
import { createRegistry } from '../common/metrics.ts';
import { passwordPolicyFrom, passwordPolicyOptions } from '../common/password-policy.ts';
import { defineRole } from '../common/role.ts';
import { startWorker } from './worker.ts';

export const workerOptions = {
  ...commonOptions,
  ...kubeOptions,
  ...redisOptions,
  concurrency: { env: 'WORKER_CONCURRENCY', flag: 'concurrency', help: 'jobs processed at once by this worker (default 16)', schema: schemas.positiveInt(16) },
  lockDuration: {
    env: 'WORKER_LOCK_DURATION',
    flag: 'lock-duration',
    help: "job lock lifetime; a killed worker's jobs are taken again after about this long (default 30s)",
    schema: schemas.seconds(30),
  },
  shutdownDeadline: {
    env: 'WORKER_SHUTDOWN_DEADLINE',
    flag: 'shutdown-deadline',
    help: 'on SIGTERM, how long active jobs may take to finish before they are left to other workers (default 20s)',
    schema: schemas.seconds(20),
  },
  secretPolicyMode: {
    env: 'SECRET_POLICY_MODE',
    flag: 'secret-policy-mode',
    help: 'weak Secrets: audit (annotate + Event, default) or enforce (delete, with preconditions)',
    schema: z.enum(['audit', 'enforce'], { message: 'must be audit or enforce' }).default('audit'),
  },
  ...passwordPolicyOptions,
} satisfies OptionTable;

export default defineRole({
  description: 'Reconcile queued keys: CronTab → CronJob (create/update/delete, status, Events) and the Secret password policy (audit or enforce).',
  options: workerOptions,
  async run(config, { log, shutdown }) {
    const registry = createRegistry('worker');
    // Health first, so it is closed last: the worker drains while /healthz still answers.
    const health = await startHealthServer({ port: config.healthPort, registry });
    shutdown.register('health', () => health.close());
    const running = await startWorker({
      kubeconfig: config.kubeconfig,
      redisUrl: config.redisUrl,
      queuePrefix: config.queuePrefix,
      queueName: config.queueName,
      concurrency: config.concurrency,
      lockDurationMs: config.lockDuration * 1000,
      shutdownDeadlineMs: config.shutdownDeadline * 1000,
      secretPolicy: { mode: config.secretPolicyMode, ...passwordPolicyFrom(config) },
      log,
      registry,
    });
    shutdown.register('worker', () => running.close());
    health.addCheck('queue', () => running.isReady() || 'worker not running');
    log.info(
      { queue: config.queueName, prefix: config.queuePrefix, concurrency: config.concurrency, secretPolicyMode: config.secretPolicyMode, healthPort: health.port },
      'worker started',
    );
  },
});
