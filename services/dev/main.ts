// `kreconcile dev` (npm start): the whole system on one machine, no cluster
// needed. kube-sim serves the API in this process; Redis, the webhook, the
// relay and the workers run as child processes, exactly as they would deploy.
// Ctrl-C stops them all.
import fs from 'node:fs';
import path from 'node:path';
import { KubernetesObjectApi, type KubernetesObject } from '@kubernetes/client-node';
import YAML from 'yaml';
import { z } from 'zod';
import { createCA } from '../common/certs.ts';
import { loadKubeConfig } from '../common/kube.ts';
import { commonOptions, schemas, type OptionTable } from '../common/config.ts';
import type { Logger } from '../common/logger.ts';
import { defineRole } from '../common/role.ts';
import { startKubeSim } from '../kube-sim/index.ts';
import { spawnRole, type RoleProcess } from './processes.ts';
import { findRedisServerBinary, freePort, redisAnswers, startRedisServer } from './redis.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export const devOptions = {
  kubeconfigOut: { env: 'DEV_KUBECONFIG_OUT', flag: 'kubeconfig-out', help: 'where to write the kubeconfig for kubectl (default .kreconcile/kubeconfig)', schema: schemas.string('.kreconcile/kubeconfig') },
  apiPort: { env: 'DEV_API_PORT', flag: 'api-port', help: 'kube-sim API port (default 0 = any free port)', schema: schemas.port(0) },
  workers: { env: 'DEV_WORKERS', flag: 'workers', help: 'worker processes to run (default 2)', schema: schemas.positiveInt(2) },
  redisUrl: { env: 'REDIS_URL', flag: 'redis-url', help: 'use this Redis if it answers; else start redis-server from the PATH on a free port', schema: z.string().url('must be a URL').optional() },
  secretPolicyMode: { env: 'SECRET_POLICY_MODE', flag: 'secret-policy-mode', help: 'audit (default) or enforce', schema: z.enum(['audit', 'enforce']).default('audit') },
  logLevel: commonOptions.logLevel,
} satisfies OptionTable;

/** The webhook configuration from infra/, pointed at the local webhook with the generated CA. */
export function devWebhookConfiguration(webhookUrl: string, caPem: string): KubernetesObject {
  const vwc = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra', 'k8s', 'webhook-configuration.yaml'), 'utf8'));
  for (const hook of vwc.webhooks) {
    hook.clientConfig = { url: webhookUrl, caBundle: Buffer.from(caPem).toString('base64') };
  }
  return vwc;
}

async function applyManifests(kubeconfigPath: string, objects: KubernetesObject[]): Promise<void> {
  const client = KubernetesObjectApi.makeApiClient(loadKubeConfig(kubeconfigPath));
  for (const obj of objects) {
    await client.create(obj);
  }
}

async function waitForReady(proc: RoleProcess, message: RegExp, log: Logger): Promise<void> {
  await proc.waitForLine((l) => typeof l.msg === 'string' && message.test(l.msg), 60_000).catch((err) => {
    log.error({ err: (err as Error).message }, `${proc.role} did not become ready`);
    throw err;
  });
}

export default defineRole({
  description: 'Run everything locally: kube-sim (the embedded Kubernetes API), Redis, the webhook, the relay and DEV_WORKERS workers. Ctrl-C stops them all.',
  options: devOptions,
  async run(config, { log, shutdown }) {
    const stateDir = path.dirname(path.resolve(config.kubeconfigOut));
    fs.mkdirSync(stateDir, { recursive: true });

    // Redis: the one given if it answers, else our own.
    let redisUrl = config.redisUrl;
    if (redisUrl && !(await redisAnswers(redisUrl))) {
      log.warn({ redisUrl }, 'REDIS_URL does not answer; starting a private redis-server instead');
      redisUrl = undefined;
    }
    if (!redisUrl) {
      if (!findRedisServerBinary()) {
        throw new Error('no Redis: set REDIS_URL to a reachable Redis, or install redis-server (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis)');
      }
      // Its own process group: a Ctrl-C must not stop Redis before the workers have drained.
      const redis = await startRedisServer({ ownProcessGroup: true });
      shutdown.register('redis-server', () => redis.stop());
      redisUrl = redis.url;
      log.info({ redisUrl }, 'started a private redis-server (no persistence)');
    }

    const sim = await startKubeSim({ port: config.apiPort, kubeconfigPath: path.resolve(config.kubeconfigOut), log: log.child({ component: 'kube-sim' }) });
    shutdown.register('kube-sim', () => sim.stop());

    // Webhook TLS: a fresh CA per run, the certificate valid for 127.0.0.1 and localhost.
    const ca = createCA('kreconcile-dev-ca', 30);
    const leaf = ca.issue({ commonName: 'kreconcile-webhook', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 30 });
    const tlsDir = path.join(stateDir, 'webhook-tls');
    fs.mkdirSync(tlsDir, { recursive: true });
    fs.writeFileSync(path.join(tlsDir, 'ca.crt'), ca.cert);
    fs.writeFileSync(path.join(tlsDir, 'tls.crt'), leaf.cert);
    fs.writeFileSync(path.join(tlsDir, 'tls.key'), leaf.key, { mode: 0o600 });

    const children: RoleProcess[] = [];
    shutdown.register('child processes', async () => {
      await Promise.all(children.map((c) => c.stop(15_000)));
    });
    const forward = (role: string) => (line: string, parsed?: Record<string, unknown>) => {
      if (!parsed) return void process.stdout.write(`[${role}] ${line}\n`);
      // Re-log through our logger so a terminal gets one readable stream.
      const { level, msg, time: _t, pid: _p, hostname: _h, name: _n, ...rest } = parsed as Record<string, unknown>;
      const lvl = (typeof level === 'string' && level in log ? level : 'info') as 'info';
      log[lvl]({ role, ...rest }, String(msg ?? ''));
    };
    const baseEnv = { KUBECONFIG: sim.kubeconfigPath, REDIS_URL: redisUrl, HEALTH_PORT: '0', LOG_LEVEL: config.logLevel };

    const webhookPort = await freePort();
    const webhook = spawnRole('webhook', {
      env: { ...baseEnv, WEBHOOK_PORT: String(webhookPort), WEBHOOK_HOST: '127.0.0.1', TLS_CERT_FILE: path.join(tlsDir, 'tls.crt'), TLS_KEY_FILE: path.join(tlsDir, 'tls.key') },
      onLine: forward('webhook'),
    });
    children.push(webhook);
    await waitForReady(webhook, /webhook ready/, log);

    const crd = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra', 'k8s', 'crontab-crd.yaml'), 'utf8'));
    await applyManifests(sim.kubeconfigPath, [crd, devWebhookConfiguration(`https://127.0.0.1:${webhookPort}/validate`, ca.cert)]);

    const relay = spawnRole('relay', { env: { ...baseEnv, POD_NAME: 'dev-relay' }, onLine: forward('relay') });
    children.push(relay);
    const workers: RoleProcess[] = [];
    for (let i = 0; i < config.workers; i++) {
      workers.push(spawnRole('worker', { env: { ...baseEnv, SECRET_POLICY_MODE: config.secretPolicyMode }, onLine: forward(`worker-${i + 1}`) }));
    }
    children.push(...workers);
    // "Ready" means a change made now is handled: the relay is watching and every worker consumes.
    await Promise.all([waitForReady(relay, /relay synced/, log), ...workers.map((w) => waitForReady(w, /worker started/, log))]);
    for (const c of children) {
      void c.exited.then((code) => {
        // A Ctrl-C reaches the children too (one process group): then they stop on their own.
        if (shutdown.stopping) return void log.info({ role: c.role, code }, 'child process stopped');
        log.error({ role: c.role, code }, 'a child process exited; stopping everything');
        void shutdown.trigger(`${c.role} exited`, 1);
      });
    }

    const relative = path.relative(process.cwd(), path.resolve(config.kubeconfigOut));
    const kubeconfig = relative.startsWith('..') ? path.resolve(config.kubeconfigOut) : relative;
    const lines = [
      '',
      `kreconcile is running against kube-sim at ${sim.url} (Redis ${redisUrl}, ${config.workers} workers).`,
      `  export KUBECONFIG=${kubeconfig}`,
      '  kubectl apply -f examples/crontab.yaml && kubectl get ct,cronjobs',
      '  kubectl create secret generic db --from-literal=password=short      # refused by the webhook',
      'Ctrl-C stops everything.',
      '',
    ];
    process.stderr.write(lines.join('\n') + '\n');
    log.info({ url: sim.url, kubeconfig, redisUrl, workers: config.workers }, 'dev environment ready');
  },
});
