// The plain-HTTP side port every role serves: /healthz (the process is alive),
// /readyz (every readiness check passes) and /metrics (Prometheus). It is kept
// apart from any API port so probes and scrapes never compete with real work.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export type ReadinessCheck = () => boolean | string;

export interface HealthServer {
  readonly port: number;
  /** Add a named check; /readyz fails while any check returns false or a reason. */
  addCheck(name: string, check: ReadinessCheck): void;
  close(): Promise<void>;
}

export async function startHealthServer(opts: { port: number; host?: string; registry?: Registry }): Promise<HealthServer> {
  const checks = new Map<string, ReadinessCheck>();
  const server = http.createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const failing: string[] = [];
      for (const [name, check] of checks) {
        let verdict: boolean | string;
        try {
          verdict = check();
        } catch (err) {
          verdict = (err as Error).message;
        }
        if (verdict !== true) failing.push(typeof verdict === 'string' ? `${name}: ${verdict}` : name);
      }
      if (failing.length) res.writeHead(503, { 'content-type': 'text/plain' }).end(`not ready: ${failing.join(', ')}\n`);
      else res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/metrics' && opts.registry) {
      try {
        const body = await opts.registry.metrics();
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
      } catch (err) {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`);
      }
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    addCheck: (name, check) => void checks.set(name, check),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
