// A thin typed client for the few Kubernetes API calls the workers make.
//
// Why not the generated client-node APIs: they turn timestamps into Date objects
// (so a read object no longer compares equal to what we would write), and build a
// new agent per call. Here objects stay plain JSON, one keep-alive agent serves
// every request, and client-node's KubeConfig still does all the authentication.
//
// Every write goes through `write()`, which counts it by verb: the metrics and the
// idempotence tests ("a converged object costs zero writes") rely on that count.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

export interface Resource {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export const CRONTABS: Resource = { group: 'stable.example.com', version: 'v1', plural: 'crontabs', namespaced: true };
export const CRONJOBS: Resource = { group: 'batch', version: 'v1', plural: 'cronjobs', namespaced: true };
export const SECRETS: Resource = { group: '', version: 'v1', plural: 'secrets', namespaced: true };
export const NAMESPACES: Resource = { group: '', version: 'v1', plural: 'namespaces', namespaced: false };
export const EVENTS: Resource = { group: 'events.k8s.io', version: 'v1', plural: 'events', namespaced: true };

export type WriteVerb = 'create' | 'update' | 'patch' | 'delete';

/** A non-2xx answer from the API server, carrying its Status reason. Messages never include request bodies. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.code === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.code === 409;

export interface Preconditions {
  uid?: string;
  resourceVersion?: string;
}

export interface KubeClientOptions {
  kubeconfig: KubeConfig;
  /** Called once per successful or failed write request; drives the API-writes metric. */
  onWrite?: (verb: WriteVerb, resource: Resource) => void;
  /** Per-request timeout; a hung API server becomes a retryable error, not a stuck job. */
  timeoutMs?: number;
  /** Written as fieldManager on every write. */
  fieldManager?: string;
  /** How long authentication headers are reused before asking the KubeConfig again (tokens rotate). */
  authRefreshMs?: number;
  maxSockets?: number;
  /** Sent as User-Agent (how the API's audit log and managedFields tell clients apart). */
  userAgent?: string;
}

/**
 * client-node refuses an http:// server unless the kubeconfig says skipTLSVerify.
 * Over plain HTTP there is no TLS to verify, so say it for that one cluster
 * (kube-sim serves plain HTTP on loopback); https clusters are left as they are.
 */
function plainHttpTolerant(kc: KubeConfig, server: URL): KubeConfig {
  const current = kc.getCurrentCluster();
  if (server.protocol !== 'http:' || !current || current.skipTLSVerify) return kc;
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === current.name ? { ...c, skipTLSVerify: true } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
  return copy;
}

interface AuthSnapshot {
  headers: Record<string, string>;
  at: number;
}

export class KubeClient {
  readonly server: URL;
  private readonly basePath: string;
  private readonly agent: http.Agent;
  private readonly transport: typeof http | typeof https;
  private auth?: AuthSnapshot;
  private authPending?: Promise<AuthSnapshot>;
  private tlsOptions: https.RequestOptions = {};
  private writesByVerb: Record<WriteVerb, number> = { create: 0, update: 0, patch: 0, delete: 0 };

  private constructor(private readonly opts: KubeClientOptions & { timeoutMs: number; fieldManager: string; authRefreshMs: number }) {
    const cluster = opts.kubeconfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
    // A server URL may carry a path prefix (an API server behind a proxy); requests go below it.
    this.basePath = this.server.pathname.replace(/\/+$/, '');
    this.transport = this.server.protocol === 'https:' ? https : http;
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 64 };
    this.agent = this.server.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  static async create(opts: KubeClientOptions): Promise<KubeClient> {
    const client = new KubeClient({ timeoutMs: 10_000, fieldManager: 'kreconcile-worker', authRefreshMs: 30_000, ...opts });
    await client.authHeaders();
    return client;
  }

  /** Writes made so far, by verb (tests compare these before and after a pass). */
  writes(): Readonly<Record<WriteVerb, number>> {
    return { ...this.writesByVerb };
  }

  writeCount(): number {
    return Object.values(this.writesByVerb).reduce((a, b) => a + b, 0);
  }

  close(): void {
    this.agent.destroy();
  }

  path(res: Resource, namespace: string | undefined, name?: string, subresource?: string): string {
    const base = res.group ? `/apis/${res.group}/${res.version}` : `/api/${res.version}`;
    const ns = res.namespaced ? `/namespaces/${encodeURIComponent(namespace ?? '')}` : '';
    const item = name === undefined ? '' : `/${encodeURIComponent(name)}`;
    return `${base}${ns}/${res.plural}${item}${subresource ? `/${subresource}` : ''}`;
  }

  /** GET one object; a 404 is `undefined`, since "gone" is a state, not a failure. */
  async get<T>(res: Resource, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return (await this.request('GET', this.path(res, namespace, name))) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** LIST a collection (all namespaces when namespace is undefined); query holds labelSelector, fieldSelector, limit… */
  async list<T>(res: Resource, namespace: string | undefined, query: Record<string, string> = {}): Promise<{ items: T[]; metadata?: { resourceVersion?: string; continue?: string } }> {
    const base = res.namespaced && namespace === undefined ? this.path({ ...res, namespaced: false }, undefined) : this.path(res, namespace);
    const qs = new URLSearchParams(query).toString();
    return (await this.request('GET', qs ? `${base}?${qs}` : base)) as { items: T[] };
  }

  async create<T>(res: Resource, namespace: string | undefined, obj: unknown): Promise<T> {
    return (await this.write('create', res, 'POST', this.path(res, namespace), obj)) as T;
  }

  /** PUT: the object must carry the resourceVersion it was read at (a stale one is a 409). */
  async update<T>(res: Resource, namespace: string | undefined, name: string, obj: unknown, subresource?: string): Promise<T> {
    return (await this.write('update', res, 'PUT', this.path(res, namespace, name, subresource), obj)) as T;
  }

  /** RFC 7386 merge patch; put `metadata.resourceVersion` in it to make it conditional. */
  async mergePatch<T>(res: Resource, namespace: string | undefined, name: string, patch: unknown, subresource?: string): Promise<T> {
    return (await this.write('patch', res, 'PATCH', this.path(res, namespace, name, subresource), patch, 'application/merge-patch+json')) as T;
  }

  /** DELETE with optional preconditions; a mismatch is a 409, so a changed object is never deleted. */
  async delete(res: Resource, namespace: string | undefined, name: string, preconditions?: Preconditions): Promise<void> {
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background', ...(preconditions ? { preconditions } : {}) };
    await this.write('delete', res, 'DELETE', this.path(res, namespace, name), body);
  }

  private async write(verb: WriteVerb, res: Resource, method: string, path: string, body: unknown, contentType = 'application/json'): Promise<unknown> {
    this.writesByVerb[verb]++;
    this.opts.onWrite?.(verb, res);
    const query = method === 'DELETE' ? '' : `?fieldManager=${encodeURIComponent(this.opts.fieldManager)}`;
    return this.request(method, path + query, body, contentType);
  }

  private async authHeaders(): Promise<Record<string, string>> {
    const now = Date.now();
    if (this.auth && now - this.auth.at < this.opts.authRefreshMs) return this.auth.headers;
    this.authPending ??= (async () => {
      const o: https.RequestOptions = {};
      await plainHttpTolerant(this.opts.kubeconfig, this.server).applyToHTTPSOptions(o);
      // applyToHTTPSOptions builds an agent per call; we keep only the TLS material and headers.
      this.tlsOptions = { ca: o.ca, cert: o.cert, key: o.key, rejectUnauthorized: o.rejectUnauthorized, servername: o.servername };
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(o.headers ?? {})) if (v !== undefined) headers[k] = String(v);
      if (o.auth) headers.Authorization = `Basic ${Buffer.from(o.auth).toString('base64')}`;
      return { headers, at: Date.now() };
    })().finally(() => (this.authPending = undefined));
    this.auth = await this.authPending;
    return this.auth.headers;
  }

  private async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    // Cached credentials are used without an await: every reconcile makes several requests.
    const fresh = this.auth && Date.now() - this.auth.at < this.opts.authRefreshMs;
    const auth = fresh ? this.auth!.headers : await this.authHeaders();
    const headers: Record<string, string> = { ...auth, Accept: 'application/json', 'User-Agent': this.opts.userAgent ?? 'kreconcile-worker' };
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) {
      headers['Content-Type'] = contentType;
      headers['Content-Length'] = String(payload.length);
    }
    const pathname = path.split('?')[0];
    return new Promise((resolve, reject) => {
      const req = this.transport.request(
        {
          protocol: this.server.protocol,
          hostname: this.server.hostname.replace(/^\[|\]$/g, ''),
          port: this.server.port || undefined,
          path: this.basePath + path,
          method,
          headers,
          agent: this.agent,
          timeout: this.opts.timeoutMs,
          ...this.tlsOptions,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              parsed = undefined;
            }
            if (status >= 200 && status < 300) {
              resolve(parsed);
              return;
            }
            const st = (parsed ?? {}) as { reason?: string; message?: string };
            // The Status message names the object and the rule, never a Secret's data.
            // Bounded: a 422's message can quote the invalid value, and this message is logged and kept with a failed job.
            const detail = typeof st.message === 'string' ? st.message.slice(0, 1000) : text.slice(0, 200);
            reject(new KubeApiError(status, st.reason ?? 'Unknown', `${method} ${pathname}: ${status} ${st.reason ?? ''} ${detail}`.trim()));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${pathname}: no answer within ${this.opts.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }
}
