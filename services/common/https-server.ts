// An HTTPS server whose certificate and key are files (a mounted
// Secret that cert-manager rotates); when they change, new connections get the
// new pair through setSecureContext while open connections carry on untouched.
import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { RequestListener } from 'node:http';
import type { Logger } from './logger.ts';

export interface HttpsServerOptions {
  app: RequestListener;
  certFile: string;
  keyFile: string;
  port: number;
  host?: string;
  log: Logger;
  /**
   * Safety net beside the directory watch (which can miss changes on some
   * filesystems and volume types): re-read the files this often. Default 10 s.
   */
  pollIntervalMs?: number;
}

export interface CertificateInfo {
  fingerprint256: string;
  subject: string;
  validTo: string;
}

export interface HttpsServer {
  readonly port: number;
  readonly server: https.Server;
  /** 'reload' (CertificateInfo) after a new pair is served; 'reload-error' (Error) when a pair was unusable. */
  readonly events: EventEmitter;
  /** The certificate now served. */
  certificate(): CertificateInfo;
  /** Re-read the files now; resolves true if a new pair is being served. */
  reload(): Promise<boolean>;
  /** Stop accepting, let requests in flight finish (bounded), close. */
  close(graceMs?: number): Promise<void>;
}

function describe(certPem: string): CertificateInfo {
  const x = new X509Certificate(certPem);
  return { fingerprint256: x.fingerprint256, subject: x.subject, validTo: x.validTo };
}

export async function startHttpsServer(opts: HttpsServerOptions): Promise<HttpsServer> {
  const { log } = opts;
  const events = new EventEmitter();
  let current = { cert: await fs.promises.readFile(opts.certFile, 'utf8'), key: await fs.promises.readFile(opts.keyFile, 'utf8') };
  let info = describe(current.cert);

  const server = https.createServer({ cert: current.cert, key: current.key, minVersion: 'TLSv1.2' }, opts.app);
  // The API server reuses connections and gives a webhook at most 30 s.
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 15_000;
  server.requestTimeout = 30_000;
  server.on('tlsClientError', (err) => log.debug({ err: { message: err.message } }, 'TLS handshake failed'));

  // Reloads run one at a time: a burst of file events collapses into a chain of cheap no-ops.
  let chain: Promise<boolean> = Promise.resolve(false);
  const reload = (): Promise<boolean> => (chain = chain.then(reloadOnce, reloadOnce));
  async function reloadOnce(): Promise<boolean> {
    let next: { cert: string; key: string };
    try {
      next = { cert: await fs.promises.readFile(opts.certFile, 'utf8'), key: await fs.promises.readFile(opts.keyFile, 'utf8') };
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'cannot read certificate files; still serving the previous pair');
      events.emit('reload-error', err);
      return false;
    }
    if (next.cert === current.cert && next.key === current.key) return false;
    try {
      // Validates the pair (cert and key written one after the other can briefly disagree).
      tls.createSecureContext({ cert: next.cert, key: next.key });
      info = describe(next.cert);
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'certificate files unusable (mid-rotation?); still serving the previous pair');
      events.emit('reload-error', err);
      return false;
    }
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    current = next;
    log.info(info, 'serving a new TLS certificate');
    events.emit('reload', info);
    return true;
  }

  // Watch the directories, not the files: a mounted Secret changes by swapping a
  // symlink, and editors and cert-manager replace files by rename.
  let debounce: NodeJS.Timeout | undefined;
  const scheduleReload = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void reload(), 50);
  };
  const watchers = [...new Set([path.dirname(path.resolve(opts.certFile)), path.dirname(path.resolve(opts.keyFile))])].map((dir) => {
    const w = fs.watch(dir, { persistent: false }, scheduleReload);
    w.on('error', (err) => log.warn({ err: { message: err.message }, dir }, 'certificate directory watch failed; relying on polling'));
    return w;
  });
  const poll = setInterval(() => void reload(), opts.pollIntervalMs ?? 10_000);
  poll.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err: { message: err.message } }, 'HTTPS server error'));
  log.info({ port: (server.address() as AddressInfo).port, ...info }, 'webhook HTTPS listening');

  return {
    port: (server.address() as AddressInfo).port,
    server,
    events,
    certificate: () => info,
    reload,
    close(graceMs = 5_000) {
      clearInterval(poll);
      clearTimeout(debounce);
      for (const w of watchers) w.close();
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), graceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
