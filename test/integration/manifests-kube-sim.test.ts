// The cluster-scoped manifests an API server checks hardest: the CronTab CRD, the
// ValidatingWebhookConfiguration (both as built by kustomize: with cert-manager's
// annotation, and with a caBundle from the no-cert-manager overlay) and the
// namespace, applied to kube-sim the way a user would, with
// `kubectl apply --dry-run=server` (kubectl's default --validate=strict makes the
// server reject unknown fields). Nothing is persisted by a dry run.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import YAML from 'yaml';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';

const execFileAsync = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
type Obj = Record<string, any>;

let sim: KubeSim;
let tmp: string;
let built: Obj[];
let builtWithCaBundle: Obj[];

function kustomize(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return YAML.parseAllDocuments(out).map((d) => d.toJS());
}

function writeObjects(name: string, objs: Obj[]): string {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, objs.map((o) => YAML.stringify(o)).join('---\n'));
  return file;
}

/** kubectl against kube-sim; resolves with stdout, rejects with kubectl's stderr. */
async function kubectl(...args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('kubectl', ['--kubeconfig', sim.kubeconfigPath, ...args], { env: { ...process.env, KUBECACHEDIR: path.join(tmp, 'kube-cache') } });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(e.stderr || e.message);
  }
}

const dryRunApply = (file: string) => kubectl('apply', '--dry-run=server', '-f', file);

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-manifests-sim-'));
  sim = await startKubeSim();
  built = kustomize(path.join(ROOT, 'infra', 'k8s'));
  const copy = path.join(tmp, 'infra');
  fs.cpSync(path.join(ROOT, 'infra'), copy, { recursive: true, filter: (src) => !/\.(crt|key)$/.test(src) });
  const overlay = path.join(copy, 'overlays', 'no-cert-manager');
  execFileSync('sh', [path.join(overlay, 'gen-certs.sh')], { env: { ...process.env, OUT: overlay }, stdio: 'pipe' });
  builtWithCaBundle = kustomize(overlay);
});
after(async () => {
  await sim?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const only = (objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind);

describe('kubectl apply --dry-run=server against kube-sim', () => {
  test('the CronTab CRD (infra/k8s/crontab-crd.yaml) is accepted', async () => {
    const out = await dryRunApply(path.join(ROOT, 'infra', 'k8s', 'crontab-crd.yaml'));
    assert.match(out, /customresourcedefinition\.apiextensions\.k8s\.io\/crontabs\.stable\.example\.com (created|configured) \(server dry run\)/);
  });

  test('the ValidatingWebhookConfiguration with the cert-manager annotation is accepted', async () => {
    const [vwc] = only(built, 'ValidatingWebhookConfiguration');
    assert.ok(vwc.metadata.annotations['cert-manager.io/inject-ca-from']);
    const out = await dryRunApply(writeObjects('vwc.yaml', [vwc]));
    assert.match(out, /validatingwebhookconfiguration\.admissionregistration\.k8s\.io\/kreconcile (created|configured) \(server dry run\)/);
  });

  test('the ValidatingWebhookConfiguration with the caBundle of the no-cert-manager overlay is accepted', async () => {
    const [vwc] = only(builtWithCaBundle, 'ValidatingWebhookConfiguration');
    assert.ok(vwc.webhooks.every((w: Obj) => w.clientConfig.caBundle));
    const out = await dryRunApply(writeObjects('vwc-cabundle.yaml', [vwc]));
    assert.match(out, /kreconcile (created|configured) \(server dry run\)/);
  });

  test('the namespace is accepted', async () => {
    const out = await dryRunApply(writeObjects('ns.yaml', only(built, 'Namespace')));
    assert.match(out, /namespace\/kreconcile (created|configured) \(server dry run\)/);
  });

  test('a dry run stores nothing', async () => {
    await assert.rejects(kubectl('get', 'crd', 'crontabs.stable.example.com'), /NotFound|not found/);
    await assert.rejects(kubectl('get', 'validatingwebhookconfiguration', 'kreconcile'), /NotFound|not found/);
  });

  describe('and the server does refuse what is wrong (so the checks above can fail)', () => {
    test('a webhook timeout over 30 s', async () => {
      const [vwc] = structuredClone(only(built, 'ValidatingWebhookConfiguration'));
      vwc.webhooks[0].timeoutSeconds = 50;
      await assert.rejects(dryRunApply(writeObjects('vwc-timeout.yaml', [vwc])), /timeoutSeconds/);
    });

    test('a misspelt field (kubectl asks for strict field validation)', async () => {
      const [vwc] = structuredClone(only(built, 'ValidatingWebhookConfiguration'));
      vwc.webhooks[0].failurPolicy = vwc.webhooks[0].failurePolicy;
      await assert.rejects(dryRunApply(writeObjects('vwc-typo.yaml', [vwc])), /unknown field.*failurPolicy/);
    });
  });
});
