// kube-sim as a library: startKubeSim() serves the emulated Kubernetes API on a
// free port and hands back a kubeconfig for it. Tests and the `sim` role use this.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import YAML from 'yaml';
import { silentLogger, type Logger } from '../common/logger.ts';
import { AdmissionDispatcher } from './admission.ts';
import { AuditWebhookBackend, type AuditWebhookOptions } from './audit.ts';
import { Api, systemContext } from './api.ts';
import { fromView, toView } from './convert.ts';
import { openApiV3GroupVersion, openApiV3Root } from './openapi.ts';
import { decodeProtobufObject } from './protobuf.ts';
import { storageOf } from './resources.ts';
import { Faults, startAdminServer, type AdminServer } from './faults.ts';
import { GarbageCollector } from './gc.ts';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch } from './patch.ts';
import { ResourceRegistry } from './resources.ts';
import { createApiHandler, type RequestListener, type ServerPlugins } from './server.ts';
import { Store } from './store.ts';
import { badRequest } from './errors.ts';
import { DEFAULT_WATCH_SETTINGS, WatchHub } from './watch.ts';

export type { RequestInfo, RequestListener } from './server.ts';

export interface KubeSimOptions {
  /** API port (default 0: any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  host?: string;
  /** Watch/pagination history window in events (default 10,000). */
  historyLimit?: number;
  log?: Logger;
  /** Start the fault-switch admin server on this port (0 = any free port); off when undefined. */
  adminPort?: number;
  /** BOOKMARK interval for watches that allow them (default 5 s). */
  bookmarkIntervalMs?: number;
  /** Default watch length when the client sets no timeoutSeconds: random in [n, 2n) seconds (default 1800). */
  watchTimeoutSeconds?: number;
  /** Unsent bytes after which a slow watch is closed (default 16 MiB). */
  maxWatchBufferBytes?: number;
  /** Events older than this are removed, as kube-apiserver's event TTL does (default 3600 s). */
  eventTtlSeconds?: number;
  /** Where to write the kubeconfig (default: a new temp file, removed by stop()). */
  kubeconfigPath?: string;
  /** Clock, for tests. */
  now?: () => Date;
  /** Audit webhook backend (batched audit.k8s.io/v1 EventList posts, see audit.ts); off when undefined. */
  auditWebhook?: Omit<AuditWebhookOptions, 'log'>;
}

export interface KubeSim {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly kubeconfig: KubeConfig;
  readonly kubeconfigPath: string;
  readonly kubeconfigYaml: string;
  readonly store: Store;
  readonly api: Api;
  readonly registry: ResourceRegistry;
  readonly faults: Faults;
  readonly watches: WatchHub;
  readonly gc: GarbageCollector;
  /** The admin (fault switch) server's URL when adminPort was given. */
  readonly adminUrl?: string;
  /** Called when each API request's response is finished (audit backends). Returns an unsubscribe. */
  onRequestComplete(listener: RequestListener): () => void;
  stop(): Promise<void>;
}

export const INITIAL_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export function kubeconfigYamlFor(url: string): string {
  return YAML.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    // client-node refuses plain http unless TLS verification is (vacuously) off.
    clusters: [{ name: 'kube-sim', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'kube-sim-admin', user: {} }],
    contexts: [{ name: 'kube-sim', context: { cluster: 'kube-sim', user: 'kube-sim-admin', namespace: 'default' } }],
    'current-context': 'kube-sim',
    preferences: {},
  });
}

export async function startKubeSim(opts: KubeSimOptions = {}): Promise<KubeSim> {
  const log = opts.log ?? silentLogger;
  const store = new Store({ historyLimit: opts.historyLimit });
  const registry = new ResourceRegistry();
  const api = new Api(store, registry, opts.now);
  const watches = new WatchHub(
    {
      bookmarkIntervalMs: opts.bookmarkIntervalMs ?? DEFAULT_WATCH_SETTINGS.bookmarkIntervalMs,
      minRequestTimeoutSeconds: opts.watchTimeoutSeconds ?? DEFAULT_WATCH_SETTINGS.minRequestTimeoutSeconds,
      maxBufferBytes: opts.maxWatchBufferBytes ?? DEFAULT_WATCH_SETTINGS.maxBufferBytes,
    },
    log,
  );
  const faults = new Faults(store, watches, log);
  const gc = new GarbageCollector(api, log, { eventTtlSeconds: opts.eventTtlSeconds ?? 3600 });
  const listeners = new Set<RequestListener>();
  const audit = opts.auditWebhook ? new AuditWebhookBackend({ ...opts.auditWebhook, log }) : undefined;
  if (audit) listeners.add(audit.record);
  const webhookBucket = storageOf({ group: 'admissionregistration.k8s.io', resource: 'validatingwebhookconfigurations' });
  api.plugins.admission = new AdmissionDispatcher({
    listConfigurations: () => [...store.range(webhookBucket)].map(([, o]) => o),
    getNamespace: (name) => store.get('namespaces', name),
    log,
    // Resources that serve the same stored objects (core and events.k8s.io Events, CRD versions).
    equivalents: (r) => registry.all().filter((o) => o !== r && storageOf(o) === storageOf(r)),
    convert: (obj, to) => {
      const from = registry.byKind(obj.apiVersion, obj.kind);
      return toView(to, from ? fromView(from, obj) : obj);
    },
  });
  const plugins: ServerPlugins = {
    openApiRoot: () => openApiV3Root(registry.all()),
    openApiGroupVersion: (gvPath) => openApiV3GroupVersion(gvPath, registry.all()),
    decodeProtobuf: (buf) => decodeProtobufObject(buf),
    patch: (type, target, patch) => {
      switch (type) {
        case 'application/merge-patch+json':
          return applyMergePatch(target, patch);
        case 'application/json-patch+json':
          return applyJsonPatch(target, patch);
        case 'application/strategic-merge-patch+json':
          return applyStrategicMergePatch(target, patch);
        default:
          throw badRequest(`unsupported patch type ${type}`);
      }
    },
  };

  for (const name of INITIAL_NAMESPACES) {
    await api.create(systemContext('system:apiserver'), registry.lookup('', 'v1', 'namespaces')!, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  gc.start();

  const server = http.createServer(createApiHandler({ api, store, registry, watches, faults, log, listeners, plugins }));
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0; // watches stay open for as long as they like
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host && opts.host !== '0.0.0.0' && opts.host !== '::' ? opts.host : '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let admin: AdminServer | undefined;
  if (opts.adminPort !== undefined) admin = await startAdminServer(faults, { port: opts.adminPort, host: '127.0.0.1' });

  const kubeconfigYaml = kubeconfigYamlFor(url);
  let tempDir: string | undefined;
  let kubeconfigPath = opts.kubeconfigPath;
  if (!kubeconfigPath) {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-sim-'));
    kubeconfigPath = path.join(tempDir, 'kubeconfig');
  }
  // Written whole, then renamed: whoever waits for the file never reads half of it.
  fs.writeFileSync(`${kubeconfigPath}.tmp-${process.pid}`, kubeconfigYaml, { mode: 0o600 });
  fs.renameSync(`${kubeconfigPath}.tmp-${process.pid}`, kubeconfigPath);
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromString(kubeconfigYaml);
  log.info({ url, admin: admin?.url, kubeconfig: kubeconfigPath }, 'kube-sim serving');

  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    kubeconfig,
    kubeconfigPath,
    kubeconfigYaml,
    store,
    api,
    registry,
    faults,
    watches,
    gc,
    adminUrl: admin?.url,
    onRequestComplete(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      stopped ??= (async () => {
        gc.stop();
        faults.close();
        watches.dropAll('end');
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await admin?.close();
        await audit?.close();
        if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
