// One Prometheus registry per process, with Node's default process metrics.
// Components take the registry as a dependency so tests can read their own.
import { collectDefaultMetrics, Registry } from 'prom-client';

export function createRegistry(role: string, opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'kreconcile_' });
  return registry;
}
