// The webhook behind kube-sim's admission dispatch, driven by kubectl: the
// project's own ValidatingWebhookConfiguration (infra/k8s), pointed at a webhook
// served over HTTPS with a generated certificate.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { createCA } from '../../services/common/certs.ts';
import { silentLogger } from '../../services/common/logger.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { createListener } from '../../services/webhook/app.ts';
import { startHttpsServer, type HttpsServer } from '../../services/common/https-server.ts';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
let sim: KubeSim;
let webhook: HttpsServer;
let tmp: string;

/** kubectl against kube-sim: resolves with stdout and stderr (warnings), rejects with kubectl's stderr. */
async function kubectl(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync('kubectl', ['--kubeconfig', sim.kubeconfigPath, '--cache-dir', path.join(tmp, 'cache'), ...args], { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(e.stderr || e.message);
  }
}

function applyYaml(name: string, doc: unknown): Promise<{ stdout: string; stderr: string }> {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, YAML.stringify(doc));
  return kubectl('apply', '-f', file);
}

const cronTab = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name, namespace: 'default' }, spec });

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-webhook-sim-'));
  const ca = createCA('webhook-sim-ca', 1);
  const pem = ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  fs.writeFileSync(path.join(tmp, 'tls.crt'), pem.cert);
  fs.writeFileSync(path.join(tmp, 'tls.key'), pem.key);
  webhook = await startHttpsServer({ app: createListener({ log: silentLogger }), certFile: path.join(tmp, 'tls.crt'), keyFile: path.join(tmp, 'tls.key'), port: 0, host: '127.0.0.1', log: silentLogger });
  sim = await startKubeSim();

  await kubectl('apply', '-f', path.join(ROOT, 'infra/k8s/crontab-crd.yaml'));
  await kubectl('wait', '--for', 'condition=established', '--timeout=30s', 'crd/crontabs.stable.example.com');

  // The shipped configuration, with the in-cluster Service swapped for this webhook's URL and CA.
  const config = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra/k8s/webhook-configuration.yaml'), 'utf8'));
  for (const w of config.webhooks) w.clientConfig = { url: `https://127.0.0.1:${webhook.port}/validate`, caBundle: Buffer.from(ca.cert).toString('base64') };
  await applyYaml('vwc.yaml', config);
});

after(async () => {
  await sim?.stop();
  await webhook?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('Secrets through kubectl', () => {
  test('a short password is refused with the webhook\'s message', async () => {
    await assert.rejects(kubectl('create', 'secret', 'generic', 'weak', '--from-literal=password=short'), (err: Error) => {
      assert.match(err.message, /admission webhook "secrets\.kreconcile\.example\.com" denied the request: password in key "password" is shorter than 10 characters \(rule min-length\)/);
      assert.doesNotMatch(err.message, /\bshort\b/, 'the value is not echoed');
      return true;
    });
    await assert.rejects(kubectl('get', 'secret', 'weak'), /not found/i);
  });

  test('a well-known password is refused', async () => {
    await assert.rejects(kubectl('create', 'secret', 'generic', 'common', '--from-literal=password=qwertyuiop'), /well-known password \(rule well-known\)/);
  });

  test('a strong password is created', async () => {
    await kubectl('create', 'secret', 'generic', 'strong', '--from-literal=password=tangerine-violin-47-Orbit');
    const { stdout } = await kubectl('get', 'secret', 'strong', '-o', 'jsonpath={.metadata.name}');
    assert.equal(stdout, 'strong');
  });

  test('a password close to the minimum is created with a warning', async () => {
    const { stderr } = await kubectl('create', 'secret', 'generic', 'borderline', '--from-literal=password=k7#Qz!m2Rw');
    assert.match(stderr, /Warning: password in key "password" is barely at the minimum length/);
  });

  test('server-side dry run is judged the same way and stores nothing', async () => {
    await assert.rejects(kubectl('create', 'secret', 'generic', 'dry', '--from-literal=password=short', '--dry-run=server'), /rule min-length/);
    await kubectl('create', 'secret', 'generic', 'dry', '--from-literal=password=tangerine-violin-47-Orbit', '--dry-run=server');
    await assert.rejects(kubectl('get', 'secret', 'dry'), /not found/i);
  });

  test('a Secret labelled exempt is not sent to the webhook', async () => {
    await applyYaml('exempt.yaml', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'exempt', namespace: 'default', labels: { 'kreconcile.io/password-policy': 'exempt' } }, stringData: { password: 'short' } });
    const { stdout } = await kubectl('get', 'secret', 'exempt', '-o', 'jsonpath={.metadata.name}');
    assert.equal(stdout, 'exempt');
  });
});

describe('CronTabs through kubectl', () => {
  test('an invalid schedule is refused, naming the field', async () => {
    await assert.rejects(applyYaml('bad-ct.yaml', cronTab('bad', { cronSpec: '* * * *', image: 'busybox' })), /admission webhook "crontabs\.kreconcile\.example\.com" denied the request: spec\.cronSpec: must have 5 fields/);
  });

  test('an unknown time zone is refused, naming the field', async () => {
    await assert.rejects(applyYaml('tz-ct.yaml', cronTab('tz', { cronSpec: '0 3 * * *', image: 'busybox', timeZone: 'Mars/Olympus_Mons' })), /spec\.timeZone: /);
  });

  test('a valid CronTab is created', async () => {
    await applyYaml('good-ct.yaml', cronTab('good', { cronSpec: '*/5 * * * *', image: 'busybox', timeZone: 'Europe/Paris' }));
    const { stdout } = await kubectl('get', 'crontab', 'good', '-o', 'jsonpath={.spec.cronSpec}');
    assert.equal(stdout, '*/5 * * * *');
  });
});
