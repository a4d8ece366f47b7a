#!/usr/bin/env node
// kreconcile <role> [flags]: one program, one image, every role.
import { fileURLToPath } from 'node:url';
import { ConfigError, describeOptions, loadConfig } from './common/config.ts';
import { createLogger } from './common/logger.ts';
import type { RoleModule } from './common/role.ts';
import { installShutdown } from './common/shutdown.ts';

const ROLES: Record<string, { summary: string; load: () => Promise<{ default: RoleModule<any> }> }> = {
  relay: { summary: 'watch the Kubernetes API and enqueue changed keys (leader-elected)', load: () => import('./relay/main.ts') },
  worker: { summary: 'reconcile queued keys: CronTab → CronJob, Secret password policy', load: () => import('./worker/main.ts') },
  webhook: { summary: 'validating admission webhook (HTTPS)', load: () => import('./webhook/main.ts') },
  sim: { summary: 'embedded Kubernetes API emulator (kube-sim)', load: () => import('./kube-sim/main.ts') },
  dev: { summary: 'everything at once on this machine: kube-sim, Redis, relay, workers, webhook', load: () => import('./dev/main.ts') },
};

function usage(): string {
  const roles = Object.entries(ROLES).map(([name, r]) => `  ${name.padEnd(9)} ${r.summary}`);
  return ['usage: kreconcile <role> [flags]', '', 'roles:', ...roles, '', 'kreconcile <role> --help lists the role\'s flags and environment variables.'].join('\n');
}

function roleUsage(name: string, mod: RoleModule<any>): string {
  return [`usage: kreconcile ${name} [flags]`, '', mod.description, '', `  ${'flag'.padEnd(26)} ${'environment'.padEnd(28)} meaning`, ...describeOptions(mod.options)].join('\n');
}

export async function main(argv: string[]): Promise<void> {
  const [roleName, ...rest] = argv;
  if (!roleName || roleName === '--help' || roleName === '-h' || roleName === 'help') {
    console.log(usage());
    process.exitCode = roleName ? 0 : 2;
    return;
  }
  const role = ROLES[roleName];
  if (!role) {
    console.error(`kreconcile: unknown role "${roleName}"\n\n${usage()}`);
    process.exitCode = 2;
    return;
  }
  const mod = (await role.load()).default;
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(roleUsage(roleName, mod));
    return;
  }
  let config;
  try {
    config = loadConfig(mod.options, process.env, rest);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`kreconcile ${roleName}: ${err.message}\n\n${roleUsage(roleName, mod)}`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
  const level = (config as { logLevel?: string }).logLevel;
  const log = createLogger({ level, name: roleName, pretty: process.stdout.isTTY && !process.env.LOG_JSON, batchMs: mod.logBatchMs });
  const shutdown = installShutdown(log);
  try {
    await mod.run(config, { log, shutdown });
  } catch (err) {
    log.fatal({ err }, `${roleName} failed to start`);
    await shutdown.trigger('start failed', 1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main(process.argv.slice(2));
}
