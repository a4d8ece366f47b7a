// How the relay reaches the API server: a kubeconfig, or the pod's service account.
//
// Why not @kubernetes/client-node's KubeConfig here: importing it loads the whole
// generated client (≈ 80 MB of RSS), more than half of the relay's memory budget,
// for what is, in the common cases, a server URL, a CA and a token or client
// certificate. So this file reads those common cases itself (token, tokenFile,
// client certificate, basic auth, exec credential plugins, in-cluster), and hands
// anything else (auth-provider, proxies, impersonation, multi-file KUBECONFIG) to
// client-node's KubeConfig, loaded only then. Tests and the library entry may pass
// a KubeConfig directly: it satisfies the same interface.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

/** What the relay needs from a kubeconfig. @kubernetes/client-node's KubeConfig has this shape. */
export interface KubeAccess {
  getCurrentCluster(): { server: string } | null;
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A file re-read when it changes (rotated service-account tokens, mounted certificates). */
function watchedFile(file: string): () => string {
  let cached = { mtimeMs: -1, size: -1, text: '' };
  return () => {
    const st = fs.statSync(file);
    if (st.mtimeMs !== cached.mtimeMs || st.size !== cached.size) cached = { mtimeMs: st.mtimeMs, size: st.size, text: fs.readFileSync(file, 'utf8') };
    return cached.text;
  };
}

interface Credentials {
  ca?: string;
  cert?: string;
  key?: string;
  token?: () => Promise<string | undefined> | string | undefined;
  basic?: string;
  insecure?: boolean;
  servername?: string;
}

class LightKubeAccess implements KubeAccess {
  constructor(
    private readonly server: string,
    private readonly creds: Credentials,
  ) {}

  getCurrentCluster() {
    return { server: this.server };
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const c = this.creds;
    if (c.ca) opts.ca = c.ca;
    if (c.cert) opts.cert = c.cert;
    if (c.key) opts.key = c.key;
    if (c.insecure) opts.rejectUnauthorized = false;
    if (c.servername) opts.servername = c.servername;
    const headers = (opts.headers ??= {}) as Record<string, string>;
    const token = await c.token?.();
    if (token) headers.authorization = `Bearer ${token.trim()}`;
    else if (c.basic) headers.authorization = `Basic ${Buffer.from(c.basic).toString('base64')}`;
  }
}

class Unsupported extends Error {}

function dataOrFile(data: unknown, file: unknown, base: string, what: string): string | undefined {
  if (typeof data === 'string' && data) return Buffer.from(data, 'base64').toString('utf8');
  if (typeof file === 'string' && file) return fs.readFileSync(path.resolve(base, file), 'utf8');
  if (data !== undefined || file !== undefined) throw new Error(`kubeconfig: unreadable ${what}`);
  return undefined;
}

/** client.authentication.k8s.io ExecCredential plugins (EKS, GKE, OIDC helpers): run, cache until expiry. */
function execToken(exec: Record<string, unknown>, base: string): () => Promise<string | undefined> {
  const command = exec.command;
  if (typeof command !== 'string') throw new Error('kubeconfig: exec without a command');
  const args = Array.isArray(exec.args) ? exec.args.map(String) : [];
  const env = { ...process.env };
  if (Array.isArray(exec.env)) for (const e of exec.env as { name: string; value: string }[]) env[e.name] = e.value;
  const cmd = command.includes('/') ? path.resolve(base, command) : command;
  let cached: { token: string; expires: number } | undefined;
  return async () => {
    if (cached && cached.expires > Date.now() + 10_000) return cached.token;
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(cmd, args, { env, timeout: 30_000, maxBuffer: 1 << 20 }, (err, out) => (err ? reject(new Error(`kubeconfig exec plugin ${command} failed: ${err.message}`)) : resolve(out))),
    );
    const status = (JSON.parse(stdout) as { status?: { token?: string; expirationTimestamp?: string; clientCertificateData?: string } }).status;
    if (!status?.token) throw new Unsupported('exec plugin returned no token');
    const expires = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : Date.now() + 5 * 60_000;
    cached = { token: status.token, expires };
    return status.token;
  };
}

function fromKubeconfigFile(file: string): KubeAccess {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
  const base = path.dirname(path.resolve(file));
  const ctxName = doc['current-context'];
  const ctx = (doc.contexts ?? []).find((c: any) => c.name === ctxName)?.context;
  if (!ctx) throw new Error(`kubeconfig ${file}: no current context`);
  const cluster = (doc.clusters ?? []).find((c: any) => c.name === ctx.cluster)?.cluster;
  if (!cluster?.server) throw new Error(`kubeconfig ${file}: context ${ctxName} names no cluster with a server`);
  const user = ctx.user ? ((doc.users ?? []).find((u: any) => u.name === ctx.user)?.user ?? {}) : {};
  const known = new Set(['token', 'tokenFile', 'client-certificate', 'client-certificate-data', 'client-key', 'client-key-data', 'username', 'password', 'exec']);
  if (Object.keys(user).some((k) => !known.has(k)) || cluster['proxy-url']) throw new Unsupported('needs the full client');
  const creds: Credentials = {
    ca: dataOrFile(cluster['certificate-authority-data'], cluster['certificate-authority'], base, 'certificate-authority'),
    cert: dataOrFile(user['client-certificate-data'], user['client-certificate'], base, 'client-certificate'),
    key: dataOrFile(user['client-key-data'], user['client-key'], base, 'client-key'),
    insecure: cluster['insecure-skip-tls-verify'] === true,
    servername: typeof cluster['tls-server-name'] === 'string' ? cluster['tls-server-name'] : undefined,
    basic: typeof user.username === 'string' ? `${user.username}:${user.password ?? ''}` : undefined,
  };
  if (typeof user.token === 'string' && user.token) creds.token = () => user.token;
  else if (typeof user.tokenFile === 'string') creds.token = watchedFile(path.resolve(base, user.tokenFile));
  else if (user.exec) creds.token = execToken(user.exec, base);
  return new LightKubeAccess(cluster.server, creds);
}

function inCluster(): KubeAccess {
  const host = process.env.KUBERNETES_SERVICE_HOST!;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  return new LightKubeAccess(`https://${host.includes(':') ? `[${host}]` : host}:${port}`, { ca: fs.readFileSync(path.join(SA_DIR, 'ca.crt'), 'utf8'), token: watchedFile(path.join(SA_DIR, 'token')) });
}

async function fullClient(kubeconfigPath?: string): Promise<KubeAccess> {
  const { loadKubeConfig } = await import('../common/kube.ts');
  return loadKubeConfig(kubeconfigPath);
}

/**
 * Same precedence as common/kube.ts: the given kubeconfig file, else the pod's
 * service account, else ~/.kube/config.
 */
export async function loadKubeAccess(kubeconfigPath?: string): Promise<KubeAccess> {
  try {
    if (kubeconfigPath) {
      if (kubeconfigPath.includes(path.delimiter)) return await fullClient(kubeconfigPath);
      if (!fs.existsSync(kubeconfigPath)) throw new Error(`kubeconfig file not found: ${kubeconfigPath}`);
      return fromKubeconfigFile(kubeconfigPath);
    }
    if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync(path.join(SA_DIR, 'token'))) return inCluster();
    const home = path.join(os.homedir(), '.kube', 'config');
    if (fs.existsSync(home)) return fromKubeconfigFile(home);
    return await fullClient();
  } catch (err) {
    if (err instanceof Unsupported) return fullClient(kubeconfigPath);
    throw err;
  }
}
