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
      kubeconfigPath,
      log,
    });
    shutdown.register('kube-sim', () => sim.stop());
    log.info({ url: sim.url, kubeconfig: kubeconfigPath, admin: sim.adminUrl }, 'kube-sim ready');
  },
});
