// docker-compose.yml's one-shot installer (infra/compose/install.mjs), run as compose
// runs it but against kube-sim in place of k3s (Docker is not available here): it
// must write a kubeconfig for the other containers, make the webhook's certificates,
// install the namespace, the CRD and the webhook configuration, and do it again
// harmlessly. Then the real webhook role, started with those certificates at the
// configured URL, must be what the API server calls: a weak Secret and a bad
// CronTab are refused with the webhook's reasons, good ones are admitted.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { freePort } from '../../services/dev/redis.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

let sim: KubeSim;
let tmp: string;
let webhook: ChildProcess | undefined;
let webhookPort: number;
const paths = { source: '', out: '', certs: '' };

function installerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    SOURCE_KUBECONFIG: paths.source,
    KUBECONFIG_OUT: paths.out,
    // As compose rewrites 127.0.0.1 to the k3s service name, rewrite it to another name for the same server.
    KUBE_SERVER: sim.url.replace('127.0.0.1', 'localhost'),
    CERT_DIR: paths.certs,
    WEBHOOK_HOST: 'localhost',
    WEBHOOK_URL: `https://localhost:${webhookPort}/validate`,
    MANIFESTS_DIR: path.join(ROOT, 'infra', 'k8s'),
    INSTALL_TIMEOUT_SECONDS: '30',
  };
}

const runInstaller = () => execFileAsync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'infra', 'compose', 'install.mjs')], { cwd: ROOT, env: installerEnv() });

/** kubectl with the kubeconfig the installer wrote; resolves with stdout, rejects with stderr. */
async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', paths.out, ...args], { env: { ...process.env, KUBECACHEDIR: path.join(tmp, 'kube-cache') } });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(e.stderr || e.message);
  }
}

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-installer-'));
  sim = await startKubeSim();
  webhookPort = await freePort();
  paths.source = path.join(tmp, 'output', 'kubeconfig.yaml');
  paths.out = path.join(tmp, 'kube', 'kubeconfig');
  paths.certs = path.join(tmp, 'certs');
  fs.mkdirSync(path.dirname(paths.source));
  fs.copyFileSync(sim.kubeconfigPath, paths.source);
});

after(async () => {
  if (webhook && webhook.exitCode === null) {
    webhook.kill('SIGTERM');
    await once(webhook, 'exit');
  }
  await sim?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the compose installer against kube-sim', () => {
  test('installs the namespace, the CRD (Established) and the webhook configuration pointing at the webhook URL', async () => {
    const { stdout } = await runInstaller();
    assert.match(stdout, /\[installer\] done/);

    const kubeconfig = YAML.parse(fs.readFileSync(paths.out, 'utf8'));
    assert.equal(kubeconfig.clusters[0].cluster.server, installerEnv().KUBE_SERVER, 'server rewritten for the other containers');
    assert.equal(fs.statSync(paths.out).mode & 0o777, 0o600);
    for (const f of ['ca.crt', 'tls.crt', 'tls.key']) assert.equal(fs.statSync(path.join(paths.certs, f)).mode & 0o777, 0o600, f);

    const crd = JSON.parse(await kubectl('get', 'crd', 'crontabs.stable.example.com', '-o', 'json'));
    assert.ok(crd.status.conditions.some((c: { type: string; status: string }) => c.type === 'Established' && c.status === 'True'));
    assert.match(await kubectl('get', 'namespace', 'kreconcile', '-o', 'name'), /namespace\/kreconcile/);

    const vwc = JSON.parse(await kubectl('get', 'validatingwebhookconfiguration', 'kreconcile', '-o', 'json'));
    const ca = fs.readFileSync(path.join(paths.certs, 'ca.crt'), 'utf8');
    assert.equal(vwc.webhooks.length, 2);
    for (const w of vwc.webhooks) {
      assert.equal(w.clientConfig.url, installerEnv().WEBHOOK_URL);
      assert.equal(w.clientConfig.service, undefined);
      assert.equal(Buffer.from(w.clientConfig.caBundle, 'base64').toString(), ca);
    }
    assert.equal(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
  });

  test('running it again changes nothing and keeps the certificates', async () => {
    const before = fs.readFileSync(path.join(paths.certs, 'tls.crt'), 'utf8');
    const rvBefore = JSON.parse(await kubectl('get', 'validatingwebhookconfiguration', 'kreconcile', '-o', 'json')).metadata.resourceVersion;
    const { stdout } = await runInstaller();
    assert.match(stdout, /keeping the certificates/);
    assert.equal(fs.readFileSync(path.join(paths.certs, 'tls.crt'), 'utf8'), before);
    const rvAfter = JSON.parse(await kubectl('get', 'validatingwebhookconfiguration', 'kreconcile', '-o', 'json')).metadata.resourceVersion;
    assert.equal(rvAfter, rvBefore, 'an unchanged apply writes nothing');
  });

  test('with the webhook role serving those certificates, the API server enforces the policy through it', async () => {
    webhook = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'services', 'cli.ts'), 'webhook'], {
      cwd: ROOT,
      env: {
        ...process.env,
        LOG_JSON: '1',
        HEALTH_PORT: '0',
        WEBHOOK_PORT: String(webhookPort),
        WEBHOOK_HOST: '127.0.0.1',
        TLS_CERT_FILE: path.join(paths.certs, 'tls.crt'),
        TLS_KEY_FILE: path.join(paths.certs, 'tls.key'),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = readline.createInterface({ input: webhook.stdout! });
    for await (const line of lines) if (line.includes('webhook ready')) break;

    // kubectl create secret posts protobuf, as users do; the value must not come back in the refusal.
    const denied = await kubectl('create', 'secret', 'generic', 'weak', '--from-literal=password=hunter2').then(
      () => assert.fail('a weak Secret was admitted'),
      (err: Error) => err.message,
    );
    assert.match(denied, /admission webhook "secrets\.kreconcile\.example\.com" denied the request/);
    assert.match(denied, /min-length/);
    assert.doesNotMatch(denied, /hunter2/);

    await assert.rejects(kubectl('apply', '-f', path.join(ROOT, 'examples', 'secret-weak.yaml')), /denied the request/);
    await assert.rejects(kubectl('apply', '-f', path.join(ROOT, 'examples', 'crontab-invalid.yaml')), /admission webhook "crontabs\.kreconcile\.example\.com" denied the request/);
    assert.match(await kubectl('apply', '-f', path.join(ROOT, 'examples', 'secret-strong.yaml')), /secret\/db-strong created/);
    assert.match(await kubectl('apply', '-f', path.join(ROOT, 'examples', 'crontab.yaml')), /crontab\.stable\.example\.com\/hello created/);
  });

  test('with the webhook down: password Secrets are refused (Fail), everything else still goes through', async () => {
    webhook!.kill('SIGTERM');
    await once(webhook!, 'exit');

    await assert.rejects(kubectl('create', 'secret', 'generic', 'unchecked', '--from-literal=password=Tq7-mV9p-xR2w-Zk4e'), /failed calling webhook "secrets\.kreconcile\.example\.com"/);
    // Not password-bearing (matchConditions): a TLS Secret never waits on the webhook.
    const certs = ['--cert', path.join(paths.certs, 'tls.crt'), '--key', path.join(paths.certs, 'tls.key')];
    assert.match(await kubectl('create', 'secret', 'tls', 'serving', ...certs), /secret\/serving created/);
    // The opt-out label (objectSelector), as the worker honours it.
    const exempt = path.join(tmp, 'exempt.yaml');
    fs.writeFileSync(exempt, YAML.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'legacy', namespace: 'default', labels: { 'kreconcile.io/password-policy': 'exempt' } }, stringData: { password: 'x' } }));
    assert.match(await kubectl('apply', '-f', exempt), /secret\/legacy created/);
    // CronTabs: failurePolicy Ignore, the worker re-checks the schedule later.
    assert.match(await kubectl('apply', '-f', path.join(ROOT, 'examples', 'crontab-invalid.yaml')), /broken-schedule created/);
  });
});
