// Raw HTTP to the Kubernetes API, authenticated by the kubeconfig (kube-access.ts). The relay
// uses it instead of the generated clients for two reasons: list pages and watch
// lines are read as they arrive and reduced to keys at once (no typed object
// graph is ever built), and the Lease is written with MicroTime at exactly six
// fractional digits (the generated models serialise a Date with three).
import http from 'node:http';
import https from 'node:https';
import type { KubeAccess } from './kube-access.ts';

export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    readonly code: number,
    readonly reason: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeResponse<T = unknown> {
  status: number;
  body: T;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Of the body; default application/json (a PATCH names its patch type here). */
  contentType?: string;
  signal?: AbortSignal;
  /** Reuse a kept-alive connection (short requests); default a connection of its own (watches). */
  pooled?: boolean;
  /** Give up after this long (ms); default 30 s. */
  timeoutMs?: number;
}

export class KubeClient {
  private readonly server: URL;
  /** One keep-alive pool for every request (client-node's applyToHTTPSOptions would hand each request a fresh agent). */
  private readonly agent: http.Agent;

  constructor(readonly kubeconfig: KubeAccess) {
    const cluster = kubeconfig.getCurrentCluster();
    if (!cluster) throw new Error('no current cluster in the kubeconfig');
    this.server = new URL(cluster.server);
    this.agent = this.server.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  /** Drop pooled idle connections (watches in flight are ended by their signals). */
  close(): void {
    this.agent.destroy();
  }

  url(path: string, query?: RequestOptions['query']): URL {
    const base = this.server.pathname.replace(/\/$/, '');
    const u = new URL(base + path, this.server);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, String(v));
    return u;
  }

  /** Start a request; resolves with the response once headers arrive. */
  async open(method: string, path: string, opts: RequestOptions = {}): Promise<{ res: http.IncomingMessage; req: http.ClientRequest }> {
    const u = this.url(path, opts.query);
    const options: https.RequestOptions = { method, headers: { accept: 'application/json', 'user-agent': 'kreconcile-relay' } };
    await this.kubeconfig.applyToHTTPSOptions(options);
    // TLS material and headers come from the kubeconfig; the connection pool is ours. A watch
    // holds its connection for minutes, so it gets its own (agent: false) instead of a pooled one.
    options.agent = opts.pooled ? this.agent : false;
    const payload = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    if (payload) Object.assign(options.headers!, { 'content-type': opts.contentType ?? 'application/json', 'content-length': payload.length });
    const lib = u.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const signal = opts.signal;
      const onAbort = () => req.destroy(new Error('aborted'));
      const req = lib.request(u, options, (res) => {
        // A response read to its end is done: a later abort (the request's timeout) must not touch a pooled socket.
        res.once('end', () => signal?.removeEventListener('abort', onAbort));
        resolve({ res, req });
      });
      req.on('error', reject);
      if (signal) {
        if (signal.aborted) req.destroy(new Error('aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
      }
      if (payload) req.end(payload);
      else req.end();
    });
  }

  /** A JSON request. Non-2xx becomes KubeApiError carrying the Status code and reason. */
  async request<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<KubeResponse<T>> {
    const timeout = AbortSignal.timeout(opts.timeoutMs ?? 30_000);
    const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
    const { res } = await this.open(method, path, { pooled: true, ...opts, signal });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw statusError(status, body, `${method} ${path}`);
    return { status, body: body as T };
  }
}

export function statusError(status: number, body: unknown, what: string): KubeApiError {
  const b = (body && typeof body === 'object' ? body : {}) as { message?: unknown; reason?: unknown; code?: unknown };
  const code = typeof b.code === 'number' ? b.code : status;
  const message = typeof b.message === 'string' ? b.message : `HTTP ${status}`;
  return new KubeApiError(code, typeof b.reason === 'string' ? b.reason : undefined, `${what}: ${message}`);
}
