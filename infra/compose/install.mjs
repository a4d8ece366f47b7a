// One-shot installer for docker-compose.yml (service `installer`), run from the
// kreconcile image: `node infra/compose/install.mjs`. It
//  1. waits for k3s's kubeconfig and rewrites its server address to one the other
//     containers can reach (k3s writes https://127.0.0.1:6443, meant for the host);
//  2. waits until the API server answers;
//  3. makes a throwaway CA and the webhook's serving certificate (kept if present);
//  4. server-side applies the namespace, the CronTab CRD and the
//     ValidatingWebhookConfiguration from infra/k8s, the latter pointed at the
//     webhook container's URL with the CA as its caBundle;
//  5. waits for the CRD to be Established, so the relay and workers find it.
// Everything is read from the environment (below); it is idempotent, so
// `docker compose up` can run it every time.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import YAML from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const env = process.env;
const settings = {
  /** Written by k3s (K3S_KUBECONFIG_OUTPUT). */
  sourceKubeconfig: env.SOURCE_KUBECONFIG ?? '/output/kubeconfig.yaml',
  /** The kubeconfig the other services mount. */
  kubeconfigOut: env.KUBECONFIG_OUT ?? '/kube/kubeconfig',
  /** Server URL for containers; unset = keep the one in the source kubeconfig. */
  server: env.KUBE_SERVER || undefined,
  certDir: env.CERT_DIR ?? '/certs',
  /** Host name the API server uses to call the webhook (must be in the certificate). */
  webhookHost: env.WEBHOOK_HOST ?? 'webhook',
  webhookUrl: env.WEBHOOK_URL ?? 'https://webhook:8443/validate',
  manifestsDir: env.MANIFESTS_DIR ?? path.join(root, 'infra', 'k8s'),
  /** uid:gid that must own the written files (the image's user); applied only when running as root. */
  owner: env.FILE_OWNER ?? '1000:1000',
  timeoutMs: Number(env.INSTALL_TIMEOUT_SECONDS ?? 180) * 1000,
};
const FIELD_MANAGER = 'kreconcile-installer';

const log = (msg) => console.log(`[installer] ${msg}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Retry `fn` until it returns a value other than undefined, or the deadline passes. */
async function until(what, fn, deadline) {
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await sleep(1000);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message ?? last}` : ''}`);
}

/** Write a file readable only by its owner, owned by the image's user (the services run as it). */
function writePrivate(file, content) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  if (process.getuid?.() === 0) {
    const [uid, gid] = settings.owner.split(':').map(Number);
    fs.chownSync(file, uid, gid);
  }
}

async function loadCertificates() {
  const certs = ['ca.crt', 'tls.crt', 'tls.key'].map((f) => path.join(settings.certDir, f));
  if (certs.every((f) => fs.existsSync(f))) {
    log(`keeping the certificates in ${settings.certDir}`);
    return fs.readFileSync(certs[0], 'utf8');
  }
  // The compiled helper in the image; its TypeScript source when run from a checkout (tests, via tsx).
  const compiled = path.join(root, 'dist', 'services', 'common', 'certs.js');
  const source = path.join(root, 'services', 'common', 'certs.ts');
  const { createCA } = await import(pathToFileURL(fs.existsSync(compiled) ? compiled : source).href);
  const ca = createCA('kreconcile-compose-ca');
  const leaf = ca.issue({ commonName: settings.webhookHost, dnsNames: [settings.webhookHost, 'localhost'], ipAddresses: ['127.0.0.1'] });
  writePrivate(certs[0], ca.cert);
  writePrivate(certs[1], leaf.cert);
  writePrivate(certs[2], leaf.key);
  log(`wrote a new CA and a serving certificate for "${settings.webhookHost}" into ${settings.certDir}`);
  return ca.cert;
}

function readManifest(file) {
  return YAML.parseAllDocuments(fs.readFileSync(path.join(settings.manifestsDir, file), 'utf8'))
    .map((d) => d.toJS())
    .filter(Boolean);
}

/** The cluster's webhook configuration, calling the webhook container by URL instead of a Service. */
export function composeWebhookConfiguration(vwc, url, caPem) {
  const caBundle = Buffer.from(caPem).toString('base64');
  const copy = structuredClone(vwc);
  if (copy.metadata?.annotations) delete copy.metadata.annotations['cert-manager.io/inject-ca-from'];
  for (const webhook of copy.webhooks) webhook.clientConfig = { url, caBundle };
  return copy;
}

async function main() {
  const deadline = Date.now() + settings.timeoutMs;
  log(`waiting for ${settings.sourceKubeconfig}`);
  await until('the k3s kubeconfig', () => (fs.existsSync(settings.sourceKubeconfig) && fs.statSync(settings.sourceKubeconfig).size > 0 ? true : undefined), deadline);

  const kc = new KubeConfig();
  kc.loadFromFile(settings.sourceKubeconfig);
  if (settings.server) {
    // KubeConfig's clusters are read-only views; rebuild them with the new server.
    kc.loadFromOptions({
      clusters: kc.getClusters().map((c) => ({ ...c, server: settings.server })),
      users: kc.getUsers(),
      contexts: kc.getContexts(),
      currentContext: kc.getCurrentContext(),
    });
  }
  writePrivate(settings.kubeconfigOut, kc.exportConfig());
  log(`wrote ${settings.kubeconfigOut} (server ${kc.getCurrentCluster()?.server})`);

  const api = KubernetesObjectApi.makeApiClient(kc);
  await until(
    'the API server',
    async () => {
      await api.list('v1', 'Namespace', undefined, undefined, undefined, undefined, undefined, undefined, 1);
      return true;
    },
    deadline,
  );

  const caPem = await loadCertificates();
  const apply = async (obj) => {
    await until(`${obj.kind} ${obj.metadata.name} applied`, async () => {
      await api.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      return true;
    }, deadline);
    log(`applied ${obj.kind} ${obj.metadata.name}`);
  };

  for (const obj of readManifest('namespace.yaml')) await apply(obj);
  const [crd] = readManifest('crontab-crd.yaml');
  await apply(crd);
  for (const vwc of readManifest('webhook-configuration.yaml')) await apply(composeWebhookConfiguration(vwc, settings.webhookUrl, caPem));

  await until(
    `CRD ${crd.metadata.name} Established`,
    async () => {
      const live = await api.read({ apiVersion: crd.apiVersion, kind: crd.kind, metadata: { name: crd.metadata.name } });
      return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    },
    deadline,
  );
  log('done');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(`[installer] failed: ${err.message ?? err}`);
    process.exit(1);
  });
}
