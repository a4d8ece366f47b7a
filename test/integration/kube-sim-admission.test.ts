// Validating admission through kube-sim: a small AdmissionReview server over TLS,
// registered with a ValidatingWebhookConfiguration whose caBundle is our test CA.
import assert from 'node:assert/strict';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { createCA } from '../../services/common/certs.ts';
import { startKubeSim, type KubeSim } from '../../services/kube-sim/index.ts';
import { makeKubectl, type Kubectl } from './kube-sim-helpers.ts';

interface Review {
  uid: string;
  operation: string;
  dryRun: boolean;
  namespace: string;
  name: string;
  object: any;
  kind: { kind: string };
}

let sim: KubeSim;
let kubectl: Kubectl;
let server: https.Server;
let hookUrl: string;
let caBundle: string;
const reviews: Review[] = [];
let raceDelayed = false;
let core: k8s.CoreV1Api;
let admissionApi: k8s.AdmissionregistrationV1Api;

function decodePassword(obj: any): string | undefined {
  const b64 = obj?.data?.password;
  return typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : undefined;
}

before(async () => {
  const ca = createCA('kube-sim-admission-test');
  const pem = ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  caBundle = Buffer.from(ca.cert).toString('base64');
  server = https.createServer({ cert: pem.cert, key: pem.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const r = review.request as Review;
      reviews.push(r);
      const answer = (response: Record<string, unknown>) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: r.uid, ...response } }));
      if (req.url!.startsWith('/slow')) {
        setTimeout(() => answer({ allowed: true }), 2500);
        return;
      }
      if (req.url!.startsWith('/race') && r.object?.data?.a && !raceDelayed) {
        raceDelayed = true;
        setTimeout(() => answer({ allowed: true }), 500);
        return;
      }
      if (req.url!.startsWith('/garbage')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('not json');
        return;
      }
      const password = decodePassword(r.object);
      if (r.kind.kind === 'Secret' && password !== undefined && password.length < 10) {
        return answer({ allowed: false, status: { code: 403, reason: 'Forbidden', message: 'password too short' }, warnings: ['choose a longer password'] });
      }
      if (r.kind.kind === 'CronTab' && r.object?.spec?.cronSpec === 'never') {
        return answer({ allowed: false, status: { message: 'cronSpec "never" is not a schedule' } });
      }
      answer({ allowed: true, warnings: r.operation === 'CREATE' ? [`saw ${r.kind.kind} ${r.name}`] : [] });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  hookUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  sim = await startKubeSim();
  kubectl = makeKubectl(sim.kubeconfigPath);
  core = sim.kubeconfig.makeApiClient(k8s.CoreV1Api);
  admissionApi = sim.kubeconfig.makeApiClient(k8s.AdmissionregistrationV1Api);
  for (const ns of ['guarded', 'slow-fail', 'slow-ignore', 'garbage', 'race']) await core.createNamespace({ body: { metadata: { name: ns, labels: { test: ns } } } });
  await admissionApi.createValidatingWebhookConfiguration({ body: webhookConfig('guard', 'guard.kreconcile.example.com', '/validate', 'guarded', 'Fail', 10) });
  await kubectl.ok(['apply', '-f', new URL('../../infra/k8s/crontab-crd.yaml', import.meta.url).pathname]);
});

after(async () => {
  await sim.stop();
  kubectl.cleanup();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function webhookConfig(name: string, hook: string, path: string, ns: string, failurePolicy: 'Fail' | 'Ignore', timeoutSeconds: number): k8s.V1ValidatingWebhookConfiguration {
  return {
    metadata: { name },
    webhooks: [
      {
        name: hook,
        clientConfig: { url: `${hookUrl}${path}`, caBundle },
        rules: [
          { operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['secrets', 'configmaps'] },
          { operations: ['CREATE', 'UPDATE'], apiGroups: ['stable.example.com'], apiVersions: ['v1'], resources: ['crontabs'] },
        ],
        namespaceSelector: { matchLabels: { test: ns } },
        failurePolicy,
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        timeoutSeconds,
      },
    ],
  };
}

async function status(p: Promise<unknown>): Promise<any> {
  try {
    await p;
  } catch (err: any) {
    return { code: err.code, ...JSON.parse(err.body) };
  }
  assert.fail('expected the request to be refused');
}

describe('validating admission webhooks', () => {
  test('client-node writes are refused with the webhook message and code', async () => {
    const s = await status(core.createNamespacedSecret({ namespace: 'guarded', body: { metadata: { name: 'weak' }, stringData: { password: 'short' } } }));
    assert.equal(s.code, 403);
    assert.equal(s.reason, 'Forbidden');
    assert.equal(s.message, 'admission webhook "guard.kreconcile.example.com" denied the request: password too short');
    await assert.rejects(core.readNamespacedSecret({ namespace: 'guarded', name: 'weak' }));
    const ok = await core.createNamespacedSecret({ namespace: 'guarded', body: { metadata: { name: 'strong' }, stringData: { password: 'long-enough-password' } } });
    assert.equal(ok.metadata!.name, 'strong');
  });

  test('kubectl create secret generic is refused, and warnings reach kubectl as Warning: lines', async () => {
    const refused = await kubectl(['create', 'secret', 'generic', 'k-weak', '-n', 'guarded', '--from-literal=password=abc']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /admission webhook "guard.kreconcile.example.com" denied the request: password too short/);
    assert.match(refused.stderr, /Warning: choose a longer password/);
    const allowed = await kubectl(['create', 'secret', 'generic', 'k-strong', '-n', 'guarded', '--from-literal=password=abcdefghijkl']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stderr, /Warning: saw Secret k-strong/);
  });

  test('kubectl apply -f is refused with a 400 when the webhook gives no code', async () => {
    const file = kubectl.file('never.json', JSON.stringify({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'never', namespace: 'guarded' }, spec: { cronSpec: 'never', image: 'x' } }));
    const r = await kubectl(['apply', '-f', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /admission webhook "guard.kreconcile.example.com" denied the request: cronSpec "never" is not a schedule/);
    const raw = await status(
      sim.kubeconfig.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
        group: 'stable.example.com',
        version: 'v1',
        namespace: 'guarded',
        plural: 'crontabs',
        body: { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'never' }, spec: { cronSpec: 'never', image: 'x' } },
      }),
    );
    assert.equal(raw.code, 400);
  });

  test('dry-run requests reach the webhook with dryRun: true', async () => {
    reviews.length = 0;
    const r = await kubectl(['create', 'secret', 'generic', 'dry', '-n', 'guarded', '--from-literal=password=abcdefghijkl', '--dry-run=server']);
    assert.equal(r.code, 0, r.stderr);
    const seen = reviews.find((x) => x.name === 'dry');
    assert.ok(seen, 'the webhook was called');
    assert.equal(seen.dryRun, true);
    assert.equal(sim.store.get('secrets', 'guarded/dry'), undefined);
  });

  test('a webhook that times out: Fail is a 500, Ignore lets the write through', async () => {
    await admissionApi.createValidatingWebhookConfiguration({ body: webhookConfig('slow-fail', 'slow-fail.kreconcile.example.com', '/slow', 'slow-fail', 'Fail', 1) });
    await admissionApi.createValidatingWebhookConfiguration({ body: webhookConfig('slow-ignore', 'slow-ignore.kreconcile.example.com', '/slow', 'slow-ignore', 'Ignore', 1) });
    const failed = await status(core.createNamespacedSecret({ namespace: 'slow-fail', body: { metadata: { name: 's' } } }));
    assert.equal(failed.code, 500);
    assert.equal(failed.reason, 'InternalError');
    assert.match(failed.message, /^Internal error occurred: failed calling webhook "slow-fail.kreconcile.example.com": failed to call webhook: Post "https:\/\/127.0.0.1:\d+\/slow\?timeout=1s": context deadline exceeded/);
    const passed = await core.createNamespacedSecret({ namespace: 'slow-ignore', body: { metadata: { name: 's' } } });
    assert.equal(passed.metadata!.name, 's');
  });

  test('a webhook answering garbage under Fail is a 500 naming the webhook', async () => {
    await admissionApi.createValidatingWebhookConfiguration({ body: webhookConfig('garbage', 'garbage.kreconcile.example.com', '/garbage', 'garbage', 'Fail', 5) });
    const failed = await status(core.createNamespacedSecret({ namespace: 'garbage', body: { metadata: { name: 's' } } }));
    assert.equal(failed.code, 500);
    assert.match(failed.message, /failed calling webhook "garbage.kreconcile.example.com"/);
  });

  test('requests outside the namespaceSelector never reach the webhook', async () => {
    reviews.length = 0;
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'unguarded' }, stringData: { password: 'x' } } });
    assert.equal(reviews.length, 0);
  });

  test('a write that waited on a webhook does not overwrite a write that landed meanwhile', async () => {
    await admissionApi.createValidatingWebhookConfiguration({ body: webhookConfig('race', 'race.kreconcile.example.com', '/race', 'race', 'Fail', 5) });
    await core.createNamespacedConfigMap({ namespace: 'race', body: { metadata: { name: 'shared' }, data: {} } });
    const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
    // The first patch waits 500 ms in the webhook; the second lands while it waits.
    const slow = core.patchNamespacedConfigMap({ namespace: 'race', name: 'shared', body: { data: { a: '1' } } }, merge);
    await new Promise<void>((resolve) => {
      const check = () => (raceDelayed ? resolve() : setTimeout(check, 5));
      check();
    });
    await core.patchNamespacedConfigMap({ namespace: 'race', name: 'shared', body: { data: { b: '2' } } }, merge);
    await slow;
    const final = await core.readNamespacedConfigMap({ namespace: 'race', name: 'shared' });
    assert.deepEqual(final.data, { a: '1', b: '2' });
  });
});
