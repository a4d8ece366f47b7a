// The deployment manifests (infra/k8s and the overlays in infra/overlays):
//  - every YAML file parses, and every kustomize build succeeds (`kubectl kustomize`);
//  - every object of every build validates against its published schema model
//    (kubernetes-models for Kubernetes kinds, @kubernetes-models/cert-manager and
//    @kubernetes-models/keda for those CRDs); an object without a model fails;
//  - the wiring holds: each role gets a configuration its own option table accepts,
//    probes hit the ports the roles serve, Services/PDB/webhook/KEDA/cert-manager
//    point at things that exist;
//  - RBAC grants exactly the API calls the worker's and relay's code makes.
// Note: the schema models check types, formats and required fields but do not
// reject unknown fields; the CRD and webhook configuration are also applied to
// kube-sim with `--dry-run=server` (fieldValidation=Strict) in test/integration.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { QueueKeys } from 'bullmq';
import YAML from 'yaml';
import { loadConfig, type OptionTable } from '../../services/common/config.ts';
import { cronTabSpecProblems } from '../../services/common/cron.ts';
import { evaluateSecret, PASSWORD_SECRET_TYPES } from '../../services/common/password-policy.ts';
import { hashTaggedPrefix } from '../../services/common/queue.ts';
import { relayOptions } from '../../services/relay/options.ts';
import { WATCHED_RESOURCES } from '../../services/relay/resources.ts';
import { webhookOptions } from '../../services/webhook/main.ts';
import * as workerKube from '../../services/worker/kube.ts';
import { EXEMPT, POLICY_KEY } from '../../services/worker/reconcilers/secret.ts';
import { workerOptions } from '../../services/worker/main.ts';

type Obj = Record<string, any>;

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const NAMESPACE = 'kreconcile';
const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];
const ROLE_OPTIONS: Record<string, OptionTable> = { relay: relayOptions, worker: workerOptions, webhook: webhookOptions };

function parseAll(text: string, source: string): Obj[] {
  const docs = YAML.parseAllDocuments(text);
  for (const doc of docs) assert.deepEqual(doc.errors, [], `${source}: YAML errors`);
  return docs.map((d) => d.toJS()).filter((o): o is Obj => o !== null && o !== undefined);
}

function kustomize(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAll(out, dir);
}

const find = (objs: Obj[], kind: string, name: string): Obj => {
  const obj = objs.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(obj, `${kind} ${name} is missing`);
  return obj;
};
const findAll = (objs: Obj[], kind: string): Obj[] => objs.filter((o) => o.kind === kind);
/** Names with kustomize's content-hash suffix match their generator's name. */
const findGenerated = (objs: Obj[], kind: string, name: string): Obj => {
  const obj = objs.find((o) => o.kind === kind && (o.metadata?.name === name || new RegExp(`^${name}-[a-z0-9]{10}$`).test(o.metadata?.name)));
  assert.ok(obj, `${kind} ${name}(-hash) is missing`);
  return obj;
};

// ---- schema validation ----------------------------------------------------------

const MODEL_MODULES: Record<string, () => Promise<Record<string, unknown>>> = {
  v1: () => import('kubernetes-models/v1'),
  'apps/v1': () => import('kubernetes-models/apps/v1'),
  'policy/v1': () => import('kubernetes-models/policy/v1'),
  'autoscaling/v2': () => import('kubernetes-models/autoscaling/v2'),
  'rbac.authorization.k8s.io/v1': () => import('kubernetes-models/rbac.authorization.k8s.io/v1'),
  'admissionregistration.k8s.io/v1': () => import('kubernetes-models/admissionregistration.k8s.io/v1'),
  'apiextensions.k8s.io/v1': () => import('kubernetes-models/apiextensions.k8s.io/v1'),
  'cert-manager.io/v1': () => import('@kubernetes-models/cert-manager/cert-manager.io/v1'),
  'keda.sh/v1alpha1': () => import('@kubernetes-models/keda/keda.sh/v1alpha1'),
};

/**
 * kustomize wraps the base64 it generates (Secret data, a caBundle copied from it) at 70
 * columns. The API server's base64 decoder skips line breaks, the models' "byte" format
 * does not: unwrap those fields first, exactly as the server reads them.
 */
function unwrapBase64(obj: Obj): Obj {
  const copy = structuredClone(obj);
  const unwrap = (v: unknown) => (typeof v === 'string' ? v.replace(/[\r\n]/g, '') : v);
  if (copy.kind === 'Secret' && copy.data) for (const k of Object.keys(copy.data)) copy.data[k] = unwrap(copy.data[k]);
  for (const w of copy.webhooks ?? []) if (w.clientConfig?.caBundle) w.clientConfig.caBundle = unwrap(w.clientConfig.caBundle);
  return copy;
}

async function validateAgainstSchema(obj: Obj): Promise<void> {
  const load = MODEL_MODULES[obj.apiVersion];
  assert.ok(load, `${obj.kind} ${obj.metadata?.name}: no schema model for apiVersion ${obj.apiVersion}`);
  const Model = (await load())[obj.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  assert.ok(Model, `${obj.kind} ${obj.metadata?.name}: no schema model for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(unwrapBase64(obj)).validate();
  } catch (err) {
    assert.fail(`${obj.kind} ${obj.metadata?.name} does not match the ${obj.apiVersion} schema: ${(err as Error).message}`);
  }
}

// ---- builds -------------------------------------------------------------------------

let tmp: string;
let base: Obj[];
let hpa: Obj[];
let noCertManager: Obj[];
let noCertManagerDir: string;
let managedRedis: Obj[];

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-manifests-'));
  base = kustomize(path.join(ROOT, 'infra', 'k8s'));
  hpa = kustomize(path.join(ROOT, 'infra', 'overlays', 'hpa'));
  // The no-cert-manager overlay needs gen-certs.sh's files: build it in a copy, never in the work tree.
  const copy = path.join(tmp, 'infra');
  fs.cpSync(path.join(ROOT, 'infra'), copy, { recursive: true, filter: (src) => !/\.(crt|key)$|redis\.env$/.test(src) });
  noCertManagerDir = path.join(copy, 'overlays', 'no-cert-manager');
  execFileSync('sh', [path.join(noCertManagerDir, 'gen-certs.sh')], { env: { ...process.env, OUT: noCertManagerDir }, stdio: 'pipe' });
  noCertManager = kustomize(noCertManagerDir);
  const managedRedisDir = path.join(copy, 'overlays', 'managed-redis');
  fs.copyFileSync(path.join(managedRedisDir, 'redis.env.example'), path.join(managedRedisDir, 'redis.env'));
  managedRedis = kustomize(managedRedisDir);
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('every manifest', () => {
  test('every YAML file under infra/ parses', () => {
    const files = fs
      .readdirSync(path.join(ROOT, 'infra'), { recursive: true, encoding: 'utf8' })
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => path.join(ROOT, 'infra', f));
    assert.ok(files.length >= 10, `found only ${files.length} YAML files`);
    for (const file of files) parseAll(fs.readFileSync(file, 'utf8'), file);
  });

  test('every object of every build matches its schema (kubernetes-models, cert-manager and KEDA models)', async () => {
    for (const [name, objs] of Object.entries({ base, hpa, noCertManager, managedRedis })) {
      assert.ok(objs.length > 20, `${name}: only ${objs.length} objects`);
      for (const obj of objs) await validateAgainstSchema(obj);
    }
  });

  test('a broken object is caught by the schema check (the check can fail)', async () => {
    const deployment = structuredClone(find(base, 'Deployment', 'kreconcile-worker'));
    deployment.spec.template.spec.containers[0].resources.requests.cpu = { not: 'a quantity' };
    await assert.rejects(validateAgainstSchema(deployment), /does not match/);
    const scaledObject = structuredClone(find(base, 'ScaledObject', 'kreconcile-worker'));
    scaledObject.spec.minReplicaCount = 'zero';
    await assert.rejects(validateAgainstSchema(scaledObject), /does not match/);
    await assert.rejects(validateAgainstSchema({ apiVersion: 'example.com/v1', kind: 'Thing', metadata: { name: 'x' } }), /no schema model/);
  });

  test('namespaced objects live in the kreconcile namespace, which exists', () => {
    const ns = find(base, 'Namespace', NAMESPACE);
    assert.equal(ns.metadata.labels['kubernetes.io/metadata.name'], NAMESPACE);
    const clusterScoped = new Set(['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'ValidatingWebhookConfiguration']);
    for (const obj of base) {
      if (clusterScoped.has(obj.kind)) assert.equal(obj.metadata.namespace, undefined, `${obj.kind} ${obj.metadata.name} is cluster-scoped`);
      else assert.equal(obj.metadata.namespace, NAMESPACE, `${obj.kind} ${obj.metadata.name}`);
    }
  });

  test('the CRD in the build is infra/k8s/crontab-crd.yaml, unchanged apart from labels', () => {
    const [file] = parseAll(fs.readFileSync(path.join(ROOT, 'infra', 'k8s', 'crontab-crd.yaml'), 'utf8'), 'crontab-crd.yaml');
    const built = find(base, 'CustomResourceDefinition', 'crontabs.stable.example.com');
    assert.deepEqual(built.spec, file!.spec);
  });
});

// ---- roles -------------------------------------------------------------------------

const deployment = (objs: Obj[], role: string) => find(objs, 'Deployment', `kreconcile-${role}`);
const container = (dep: Obj): Obj => dep.spec.template.spec.containers[0];

/** The environment a container would see, resolving ConfigMap/Secret references inside the build. */
function containerEnv(objs: Obj[], c: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(objs, 'ConfigMap', from.configMapRef.name).data);
    if (from.secretRef) for (const [k, v] of Object.entries(find(objs, 'Secret', from.secretRef.name).data ?? {})) env[k] = Buffer.from(v as string, 'base64').toString();
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      const secret = find(objs, 'Secret', e.valueFrom.secretKeyRef.name);
      const value = secret.data?.[e.valueFrom.secretKeyRef.key];
      assert.ok(value !== undefined, `${c.name}: Secret ${secret.metadata.name} has no key ${e.valueFrom.secretKeyRef.key}`);
      env[e.name] = Buffer.from(value, 'base64').toString();
    } else if (e.valueFrom?.configMapKeyRef) env[e.name] = find(objs, 'ConfigMap', e.valueFrom.configMapKeyRef.name).data[e.valueFrom.configMapKeyRef.key];
    else if (e.valueFrom?.fieldRef) env[e.name] = e.valueFrom.fieldRef.fieldPath === 'metadata.namespace' ? NAMESPACE : `${c.name}-pod`;
    else assert.fail(`${c.name}: env ${e.name} has no value`);
  }
  return env;
}

const portNumber = (c: Obj, name: string): number => {
  const port = c.ports?.find((p: Obj) => p.name === name);
  assert.ok(port, `${c.name} has no port named ${name}`);
  return port.containerPort;
};

describe('the role Deployments', () => {
  for (const role of ['relay', 'worker', 'webhook']) {
    test(`${role}: one image for every role, run as \`kreconcile ${role}\`, with a configuration its option table accepts`, () => {
      const dep = deployment(base, role);
      const c = container(dep);
      assert.deepEqual(c.args, [role]);
      assert.equal(c.image, container(deployment(base, 'relay')).image, 'every role runs the same image');
      const env = containerEnv(base, c);
      const options = ROLE_OPTIONS[role]!;
      // NODE_OPTIONS tunes the runtime (V8 heap flags), not the role.
      const known = new Set([...Object.values(options).map((o) => o.env), 'NODE_OPTIONS']);
      for (const e of c.env ?? []) assert.ok(known.has(e.name), `${role}: env ${e.name} is not an option of the ${role} role`);
      const config = loadConfig(options, env, c.args.slice(1)) as Record<string, unknown>;
      assert.equal(config.healthPort, portNumber(c, 'health'), `${role}: HEALTH_PORT and the health containerPort differ`);
    });

    test(`${role}: non-root, read-only, probes on the health port, resource requests and a memory limit`, () => {
      const dep = deployment(base, role);
      const pod = dep.spec.template.spec;
      const c = container(dep);
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.ok(pod.securityContext.runAsUser > 0);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
      assert.equal(pod.serviceAccountName, `kreconcile-${role}`);
      assert.equal(c.livenessProbe.httpGet.path, '/healthz');
      assert.equal(c.readinessProbe.httpGet.path, '/readyz');
      for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe]) assert.equal(probe.httpGet.port, 'health');
      assert.ok(c.resources.requests.cpu && c.resources.requests.memory, 'requests cpu and memory');
      assert.ok(c.resources.limits.memory, 'memory limit');
      // The pod's labels match its own selector (else the Deployment is rejected).
      for (const [k, v] of Object.entries(dep.spec.selector.matchLabels)) assert.equal(dep.spec.template.metadata.labels[k], v);
    });
  }

  test('relay: two replicas, leader election on its own Lease in its own namespace', () => {
    const dep = deployment(base, 'relay');
    assert.equal(dep.spec.replicas, 2);
    const config = loadConfig(relayOptions, containerEnv(base, container(dep)));
    assert.equal(config.leaderElection, true);
    assert.equal(config.leaseNamespace, NAMESPACE);
    assert.equal(config.identity, 'relay-pod', 'each replica identifies itself by pod name');
    const role = find(base, 'Role', 'kreconcile-relay-leader-election');
    const named = role.rules.find((r: Obj) => r.resourceNames);
    assert.deepEqual(named.resourceNames, [config.leaseName]);
  });

  test('worker: the grace period outlasts its drain deadline; the autoscaler owns the replica count', () => {
    const dep = deployment(base, 'worker');
    const config = loadConfig(workerOptions, containerEnv(base, container(dep)));
    assert.ok(dep.spec.template.spec.terminationGracePeriodSeconds > config.shutdownDeadline + 5);
    assert.equal(dep.spec.replicas, undefined, 'with KEDA, replicas must not be in the Deployment');
    assert.equal(deployment(hpa, 'worker').spec.replicas, undefined, 'with the HPA, replicas must not be in the Deployment');
    const raw = parseAll(fs.readFileSync(path.join(ROOT, 'infra', 'k8s', 'worker.yaml'), 'utf8'), 'worker.yaml');
    assert.ok(find(raw, 'Deployment', 'kreconcile-worker').spec.replicas >= 1, 'worker.yaml still says how many without an autoscaler');
    assert.ok(container(dep).resources.limits.cpu, 'a CPU limit, so the HPA fallback has a meaningful ceiling');
  });

  test('webhook: two replicas spread by anti-affinity, a PodDisruptionBudget, no API token, TLS from the mounted Secret', () => {
    const dep = deployment(base, 'webhook');
    const pod = dep.spec.template.spec;
    const c = container(dep);
    assert.equal(dep.spec.replicas, 2);
    const anti = pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm;
    assert.equal(anti.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(anti.labelSelector.matchLabels, dep.spec.selector.matchLabels);
    const pdb = find(base, 'PodDisruptionBudget', 'kreconcile-webhook');
    assert.deepEqual(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
    assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < dep.spec.replicas, 'a drain may evict one, never both');
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(find(base, 'ServiceAccount', 'kreconcile-webhook').automountServiceAccountToken, false);
    const config = loadConfig(webhookOptions, containerEnv(base, c));
    assert.equal(config.port, portNumber(c, 'https'));
    const mount = c.volumeMounts.find((m: Obj) => config.tlsCert.startsWith(`${m.mountPath}/`));
    assert.ok(mount, 'TLS_CERT_FILE lies in a mounted volume');
    assert.ok(config.tlsKey.startsWith(`${mount.mountPath}/`));
    assert.equal(mount.subPath, undefined, 'no subPath: a renewed certificate must appear in place');
    const volume = pod.volumes.find((v: Obj) => v.name === mount.name);
    assert.equal(volume.secret.secretName, find(base, 'Certificate', 'kreconcile-webhook').spec.secretName);
  });

  test('every pod meets the restricted Pod Security Standard its namespace enforces', () => {
    assert.equal(find(base, 'Namespace', NAMESPACE).metadata.labels['pod-security.kubernetes.io/enforce'], 'restricted');
    for (const workload of [...findAll(base, 'Deployment'), ...findAll(base, 'StatefulSet')]) {
      const pod = workload.spec.template.spec;
      const what = `${workload.kind} ${workload.metadata.name}`;
      assert.equal(pod.securityContext?.seccompProfile?.type, 'RuntimeDefault', `${what}: seccomp`);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        assert.equal(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, true, `${what}/${c.name}: runAsNonRoot`);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${what}/${c.name}: allowPrivilegeEscalation`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${what}/${c.name}: drop ALL`);
        assert.ok(!c.securityContext?.privileged, `${what}/${c.name}: not privileged`);
      }
      for (const v of pod.volumes ?? []) assert.equal(v.hostPath, undefined, `${what}: no hostPath`);
    }
  });

  test('every Service selects pods of the build and targets ports they declare', () => {
    const pods = [...findAll(base, 'Deployment'), ...findAll(base, 'StatefulSet')].map((w) => w.spec.template);
    for (const svc of findAll(base, 'Service')) {
      const matching = pods.filter((p) => Object.entries(svc.spec.selector).every(([k, v]) => p.metadata.labels[k] === v));
      assert.equal(matching.length, 1, `Service ${svc.metadata.name} selects ${matching.length} workloads`);
      for (const port of svc.spec.ports) {
        const declared = matching[0]!.spec.containers.flatMap((c: Obj) => c.ports ?? []);
        assert.ok(declared.some((p: Obj) => p.name === port.targetPort || p.containerPort === port.targetPort), `Service ${svc.metadata.name}: no container port ${port.targetPort}`);
      }
    }
  });

  test('the ConfigMap only sets options some role has', () => {
    const known = new Set(Object.values(ROLE_OPTIONS).flatMap((o) => Object.values(o).map((s) => s.env)));
    for (const key of Object.keys(findGenerated(base, 'ConfigMap', 'kreconcile-config').data)) assert.ok(known.has(key), `${key} is no role's option`);
  });

  test('Redis: the in-cluster StatefulSet never evicts (an evicted key is a lost job) and REDIS_URL points at its Service', () => {
    const sts = find(base, 'StatefulSet', 'kreconcile-redis');
    const args: string[] = container(sts).args;
    assert.equal(args[args.indexOf('--maxmemory-policy') + 1], 'noeviction');
    assert.ok(find(base, 'Service', sts.spec.serviceName).spec.clusterIP === 'None', 'governing Service is headless');
    const url = new URL(containerEnv(base, container(deployment(base, 'worker'))).REDIS_URL!);
    const svc = find(base, 'Service', url.hostname);
    assert.ok(svc.spec.ports.some((p: Obj) => p.port === Number(url.port || 6379)));
  });
});

// ---- admission ----------------------------------------------------------------------

describe('the ValidatingWebhookConfiguration', () => {
  const vwc = () => find(base, 'ValidatingWebhookConfiguration', 'kreconcile');

  test('every webhook: v1 reviews, no side effects, at most 5 s, calls the webhook Service on /validate', () => {
    const svc = find(base, 'Service', 'kreconcile-webhook');
    const https = svc.spec.ports.find((p: Obj) => p.name === 'https');
    for (const w of vwc().webhooks) {
      assert.deepEqual(w.admissionReviewVersions, ['v1']);
      assert.equal(w.sideEffects, 'None');
      assert.ok(w.timeoutSeconds >= 1 && w.timeoutSeconds <= 5, `${w.name}: timeoutSeconds ${w.timeoutSeconds}`);
      assert.deepEqual(w.clientConfig.service, { namespace: NAMESPACE, name: svc.metadata.name, port: https.port, path: '/validate' });
    }
  });

  test('Secrets: failurePolicy Fail, with the system namespaces and kreconcile itself excluded', () => {
    const w = vwc().webhooks.find((x: Obj) => x.rules.some((r: Obj) => r.resources.includes('secrets')));
    assert.ok(w, 'a webhook for Secrets');
    assert.equal(w.failurePolicy, 'Fail');
    assert.deepEqual(w.rules[0].apiGroups, ['']);
    assert.deepEqual([...w.rules[0].operations].sort(), ['CREATE', 'UPDATE']);
    const [expr] = w.namespaceSelector.matchExpressions;
    assert.equal(expr.key, 'kubernetes.io/metadata.name');
    assert.equal(expr.operator, 'NotIn');
    assert.deepEqual([...expr.values].sort(), [...SYSTEM_NAMESPACES, NAMESPACE].sort());
  });

  test("Secrets: the worker's opt-out label and password-bearing types decide what is sent, as they decide what the worker checks", () => {
    const w = vwc().webhooks.find((x: Obj) => x.rules.some((r: Obj) => r.resources.includes('secrets')));
    const optOut = { key: POLICY_KEY, operator: 'NotIn', values: [EXEMPT] };
    assert.deepEqual(w.namespaceSelector.matchExpressions[1], optOut);
    assert.deepEqual(w.objectSelector.matchExpressions, [optOut]);
    const [condition] = w.matchConditions;
    const types = [...condition.expression.matchAll(/'([^']+)'/g)].map((m: RegExpMatchArray) => m[1]);
    assert.deepEqual(types.sort(), [...PASSWORD_SECRET_TYPES].sort());
    assert.match(condition.expression, /^!has\(object\.type\) \|\| /, 'a Secret without a type is Opaque');
  });

  test('CronTabs: validated on create and update (failurePolicy Ignore: the worker re-checks every schedule)', () => {
    const w = vwc().webhooks.find((x: Obj) => x.rules.some((r: Obj) => r.resources.includes('crontabs')));
    assert.ok(w, 'a webhook for CronTabs');
    assert.deepEqual(w.rules[0].apiGroups, ['stable.example.com']);
    assert.deepEqual([...w.rules[0].operations].sort(), ['CREATE', 'UPDATE']);
    assert.equal(w.failurePolicy, 'Ignore');
    assert.deepEqual(w.namespaceSelector.matchExpressions, [vwc().webhooks[0].namespaceSelector.matchExpressions[0]]);
  });

  test('cert-manager: the CA injection annotation names the Certificate that serves the webhook Service', () => {
    const [ns, name] = vwc().metadata.annotations['cert-manager.io/inject-ca-from'].split('/');
    const cert = find(base, 'Certificate', name);
    assert.equal(cert.metadata.namespace, ns);
    assert.ok(cert.spec.dnsNames.includes(`kreconcile-webhook.${NAMESPACE}.svc`));
    // The issuer chain resolves: Certificate → CA Issuer → CA Certificate → self-signed Issuer.
    const caIssuer = find(base, 'Issuer', cert.spec.issuerRef.name);
    const caCert = findAll(base, 'Certificate').find((c) => c.spec.secretName === caIssuer.spec.ca.secretName);
    assert.ok(caCert?.spec.isCA, 'the issuer signs with a CA certificate');
    assert.ok(find(base, 'Issuer', caCert.spec.issuerRef.name).spec.selfSigned);
    assert.ok(!cert.spec.isCA, 'the serving certificate is not a CA');
  });
});

// ---- autoscaling --------------------------------------------------------------------

describe('worker autoscaling', () => {
  test('KEDA scales the worker Deployment from zero on the BullMQ wait list of the configured queue', () => {
    const so = find(base, 'ScaledObject', 'kreconcile-worker');
    assert.equal(so.spec.scaleTargetRef.name, 'kreconcile-worker');
    assert.equal(so.spec.minReplicaCount, 0);
    assert.ok(so.spec.maxReplicaCount > 1);
    const env = containerEnv(base, container(deployment(base, 'worker')));
    const config = loadConfig(workerOptions, env);
    // The key names BullMQ itself uses for this prefix and queue.
    const keys = new QueueKeys(hashTaggedPrefix(config.queuePrefix)).getKeys(config.queueName);
    const lists = so.spec.triggers.map((t: Obj) => t.metadata.listName);
    assert.ok(lists.includes(keys.wait), `a trigger on ${keys.wait}, got ${lists.join(', ')}`);
    assert.ok(lists.includes(keys.active), `a trigger on ${keys.active} keeps workers while jobs run`);
    for (const t of so.spec.triggers) {
      assert.equal(t.type, 'redis');
      const auth = find(base, 'TriggerAuthentication', t.authenticationRef.name);
      for (const ref of auth.spec.secretTargetRef) {
        const secret = find(base, 'Secret', ref.name);
        const value = Buffer.from(secret.data[ref.key], 'base64').toString();
        if (ref.parameter === 'address') {
          const url = new URL(env.REDIS_URL!);
          assert.equal(value, `${url.hostname}:${url.port || 6379}`, 'KEDA reads the same Redis as the workers');
        }
      }
    }
  });

  test('the HPA overlay replaces KEDA instead of adding to it (two autoscalers would fight)', () => {
    assert.equal(findAll(base, 'HorizontalPodAutoscaler').length, 0);
    assert.equal(findAll(hpa, 'ScaledObject').length, 0);
    assert.equal(findAll(hpa, 'TriggerAuthentication').length, 0);
    const h = find(hpa, 'HorizontalPodAutoscaler', 'kreconcile-worker');
    assert.equal(h.spec.scaleTargetRef.name, 'kreconcile-worker');
    assert.equal(h.spec.metrics[0].resource.name, 'cpu');
    assert.equal(hpa.length, base.length - 1, 'only the two KEDA objects are swapped for one HPA');
  });
});

// ---- without cert-manager ------------------------------------------------------------

describe('the no-cert-manager overlay', () => {
  test('drops every cert-manager object and annotation', () => {
    assert.deepEqual(noCertManager.filter((o) => o.apiVersion.startsWith('cert-manager.io/')), []);
    const vwc = find(noCertManager, 'ValidatingWebhookConfiguration', 'kreconcile');
    assert.equal(vwc.metadata.annotations?.['cert-manager.io/inject-ca-from'], undefined);
    assert.equal(noCertManager.filter((o) => o.metadata.name === 'kreconcile-webhook-ca').length, 0, 'the CA carrier stays local');
  });

  test("the caBundle is gen-certs.sh's CA, and the webhook mounts a serving certificate it signed for the Service name", () => {
    const caPem = fs.readFileSync(path.join(noCertManagerDir, 'ca.crt'));
    const vwc = find(noCertManager, 'ValidatingWebhookConfiguration', 'kreconcile');
    for (const w of vwc.webhooks) assert.deepEqual(Buffer.from(w.clientConfig.caBundle, 'base64'), caPem, `${w.name}: caBundle`);

    const dep = deployment(noCertManager, 'webhook');
    const volume = dep.spec.template.spec.volumes.find((v: Obj) => v.secret);
    const secret = find(noCertManager, 'Secret', volume.secret.secretName);
    assert.equal(secret.type, 'kubernetes.io/tls');
    const leaf = new X509Certificate(Buffer.from(secret.data['tls.crt'], 'base64'));
    const ca = new X509Certificate(caPem);
    assert.ok(leaf.verify(ca.publicKey), 'signed by the CA in the caBundle');
    assert.ok(leaf.checkHost(`kreconcile-webhook.${NAMESPACE}.svc`), 'valid for the name the API server calls');
    assert.ok(ca.ca && !leaf.ca);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(Buffer.from(secret.data['tls.key'], 'base64'))), 'key matches the certificate');
  });

  test('gen-certs.sh renews the serving certificate under the same CA (the caBundle does not change)', () => {
    const caBefore = fs.readFileSync(path.join(noCertManagerDir, 'ca.crt'), 'utf8');
    const leafBefore = fs.readFileSync(path.join(noCertManagerDir, 'tls.crt'), 'utf8');
    execFileSync('sh', [path.join(noCertManagerDir, 'gen-certs.sh')], { env: { ...process.env, OUT: noCertManagerDir }, stdio: 'pipe' });
    assert.equal(fs.readFileSync(path.join(noCertManagerDir, 'ca.crt'), 'utf8'), caBefore);
    const leafAfter = fs.readFileSync(path.join(noCertManagerDir, 'tls.crt'), 'utf8');
    assert.notEqual(leafAfter, leafBefore);
    assert.ok(new X509Certificate(leafAfter).verify(new X509Certificate(caBefore).publicKey));
  });
});

// ---- managed Redis -------------------------------------------------------------------

describe('the managed-redis overlay', () => {
  test('drops the in-cluster Redis and gives the roles and KEDA the managed endpoint and password', () => {
    assert.equal(findAll(managedRedis, 'StatefulSet').length, 0);
    assert.ok(!managedRedis.some((o) => o.kind === 'Service' && o.metadata.name.startsWith('kreconcile-redis')));
    const example = Object.fromEntries(
      fs
        .readFileSync(path.join(ROOT, 'infra', 'overlays', 'managed-redis', 'redis.env.example'), 'utf8')
        .split('\n')
        .filter((l) => l && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const config = loadConfig(workerOptions, containerEnv(managedRedis, container(deployment(managedRedis, 'worker'))));
    assert.equal(config.redisUrl, example.REDIS_URL);
    const auth = find(managedRedis, 'TriggerAuthentication', 'kreconcile-redis');
    const secret = find(managedRedis, 'Secret', 'kreconcile-redis');
    const param = (name: string) => {
      const ref = auth.spec.secretTargetRef.find((r: Obj) => r.parameter === name);
      assert.ok(ref, `KEDA parameter ${name}`);
      return Buffer.from(find(managedRedis, 'Secret', ref.name).data[ref.key], 'base64').toString();
    };
    assert.equal(param('address'), new URL(config.redisUrl).host);
    assert.equal(param('password'), decodeURIComponent(new URL(config.redisUrl).password));
    assert.equal(secret.metadata.name, 'kreconcile-redis', 'a fixed name, as KEDA refers to it');
  });
});

// ---- RBAC -----------------------------------------------------------------------------

type Permission = `${string}|${string}|${string}`; // group|resource[/sub]|verb

function granted(objs: Obj[], roleNames: string[]): Set<Permission> {
  const out = new Set<Permission>();
  for (const role of objs.filter((o) => (o.kind === 'ClusterRole' || o.kind === 'Role') && roleNames.includes(o.metadata.name))) {
    for (const rule of role.rules) for (const g of rule.apiGroups) for (const r of rule.resources) for (const v of rule.verbs) out.add(`${g}|${r}|${v}`);
  }
  return out;
}

/** Roles bound to a ServiceAccount. */
function rolesOf(objs: Obj[], serviceAccount: string): string[] {
  return objs
    .filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')
    .filter((b) => b.subjects.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === serviceAccount && s.namespace === NAMESPACE))
    .map((b) => b.roleRef.name);
}

const CLIENT_VERBS: Record<string, string> = { get: 'get', list: 'list', watch: 'watch', create: 'create', update: 'update', mergePatch: 'patch', patch: 'patch', delete: 'delete' };

/** The API calls in the worker's sources: `<client>.<method>(<RESOURCE>, …[, 'status'])` through services/worker/kube.ts. */
function workerCalls(): Set<Permission> {
  const dir = path.join(ROOT, 'services', 'worker');
  const resources = Object.entries(workerKube).filter(([, v]) => v && typeof v === 'object' && 'plural' in v && 'group' in v) as [string, workerKube.Resource][];
  const calls = new Set<Permission>();
  for (const file of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    const call = /\.(\w+)(?:<[^>()]*>)?\(\s*([A-Z][A-Z_]*)\b/g;
    for (const m of source.matchAll(call)) {
      const verb = CLIENT_VERBS[m[1]!];
      const resource = resources.find(([name]) => name === m[2])?.[1];
      if (!verb || !resource) continue;
      // The argument list, to its closing parenthesis: a trailing 'status' is the subresource.
      let depth = 0;
      let end = m.index! + m[0].length - m[2]!.length - 1;
      for (; end < source.length; end++) {
        if (source[end] === '(') depth++;
        else if (source[end] === ')' && --depth === 0) break;
      }
      const args = source.slice(m.index, end + 1);
      const sub = /,\s*'status'\s*\)$/.test(args) ? '/status' : '';
      calls.add(`${resource.group}|${resource.plural}${sub}|${verb}`);
    }
    // An ownerReference with blockOwnerDeletion needs update on the owner's finalizers
    // where the OwnerReferencesPermissionEnforcement admission plugin runs.
    if (/blockOwnerDeletion:\s*true/.test(source) && /kind: 'CronTab'/.test(source)) calls.add('stable.example.com|crontabs/finalizers|update');
  }
  return calls;
}

describe('RBAC: least privilege, derived from the code', () => {
  test('the worker may make exactly the API calls services/worker makes', () => {
    const used = workerCalls();
    assert.ok(used.size >= 6, `found only ${used.size} API calls in services/worker`);
    assert.ok(used.has('stable.example.com|crontabs/status|patch'), 'status writes are recognised as the status subresource');
    const allowed = granted(base, rolesOf(base, 'kreconcile-worker'));
    assert.deepEqual([...allowed].sort(), [...used].sort());
  });

  test('the relay may list and watch what it watches, and manage its Lease; nothing else', () => {
    const needed = new Set<Permission>();
    for (const r of WATCHED_RESOURCES) for (const verb of ['list', 'watch']) needed.add(`${r.group}|${r.name}|${verb}`);
    // Leader election's requests, as services/relay/leader.ts makes them.
    const leader = fs.readFileSync(path.join(ROOT, 'services', 'relay', 'leader.ts'), 'utf8');
    const HTTP_VERBS: Record<string, string> = { GET: 'get', PUT: 'update', POST: 'create', PATCH: 'patch', DELETE: 'delete' };
    const methods = [...leader.matchAll(/\.request(?:<[^>()]*>)?\(\s*'([A-Z]+)'/g)].map((m) => m[1]!);
    assert.ok(methods.length >= 3, `found ${methods.length} Lease requests in leader.ts`);
    for (const method of methods) needed.add(`coordination.k8s.io|leases|${HTTP_VERBS[method]}`);
    const allowed = granted(base, rolesOf(base, 'kreconcile-relay'));
    assert.deepEqual([...allowed].sort(), [...needed].sort());
    // The Lease permissions are namespaced (a Role), never cluster-wide.
    const clusterRoles = base.filter((o) => o.kind === 'ClusterRole' && rolesOf(base, 'kreconcile-relay').includes(o.metadata.name));
    assert.ok(clusterRoles.every((r) => r.rules.every((rule: Obj) => !rule.apiGroups.includes('coordination.k8s.io'))));
  });

  test('the webhook has no role at all', () => {
    assert.deepEqual(rolesOf(base, 'kreconcile-webhook'), []);
  });

  test('no role may read Secrets cluster-wide except through the verbs the code uses', () => {
    for (const role of findAll(base, 'ClusterRole')) {
      for (const rule of role.rules) assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*') && !rule.apiGroups.includes('*'), `${role.metadata.name}: no wildcards`);
    }
  });
});


// ---- examples/ (the README walkthrough) ---------------------------------------------

describe('examples/', () => {
  const example = (file: string): Obj => {
    const [obj] = parseAll(fs.readFileSync(path.join(ROOT, 'examples', file), 'utf8'), file);
    return obj!;
  };

  test('the Secrets match the v1 schema; the weak one breaks the password policy, the strong one passes it', async () => {
    const weak = example('secret-weak.yaml');
    const strong = example('secret-strong.yaml');
    await validateAgainstSchema(weak);
    await validateAgainstSchema(strong);
    const weakVerdict = evaluateSecret(weak);
    assert.ok(weakVerdict.checked);
    assert.deepEqual(weakVerdict.violations.map((v) => v.rule).sort(), ['min-length', 'well-known']);
    const strongVerdict = evaluateSecret(strong);
    assert.ok(strongVerdict.checked, 'a basic-auth Secret is checked');
    assert.deepEqual(strongVerdict.violations, []);
    assert.deepEqual(strongVerdict.warnings, []);
  });

  test("the CronTabs fit the CRD's schema; the valid one passes kreconcile's rules, the invalid one fails on its schedule", () => {
    const crd = find(base, 'CustomResourceDefinition', 'crontabs.stable.example.com');
    const schema = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    for (const file of ['crontab.yaml', 'crontab-invalid.yaml']) {
      const ct = example(file);
      assert.equal(ct.apiVersion, `${crd.spec.group}/${crd.spec.versions[0].name}`);
      assert.equal(ct.kind, crd.spec.names.kind);
      for (const field of Object.keys(ct.spec)) assert.ok(field in schema.properties, `${file}: spec.${field} is in the CRD schema`);
      for (const field of schema.required) assert.ok(field in ct.spec, `${file}: spec.${field} is required`);
    }
    assert.deepEqual(cronTabSpecProblems(example('crontab.yaml').spec), []);
    assert.deepEqual(cronTabSpecProblems(example('crontab-invalid.yaml').spec).map((p) => p.field), ['spec.cronSpec']);
  });
});
