// The admission dispatcher against real HTTPS webhook servers (TLS verified against caBundle).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCA, type Pem } from '../../services/common/certs.ts';
import { AdmissionDispatcher, admissionWarnings } from '../../services/kube-sim/admission.ts';
import type { AdmissionAttributes } from '../../services/kube-sim/api.ts';
import { StatusError, type KubeObject, type ResourceInfo } from '../../services/kube-sim/types.ts';

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
type Handler = (review: Review, req: http.IncomingMessage, res: http.ServerResponse) => void;

const crontabs: ResourceInfo = {
  group: 'stable.example.com', version: 'v1', resource: 'crontabs', singular: 'crontab', kind: 'CronTab', listKind: 'CronTabList',
  namespaced: true, verbs: ['create', 'update', 'delete'], statusSubresource: true, builtin: false,
};
const namespaces: ResourceInfo = {
  group: '', version: 'v1', resource: 'namespaces', singular: 'namespace', kind: 'Namespace', listKind: 'NamespaceList',
  namespaced: false, verbs: ['create'], statusSubresource: true, builtin: true,
};
const crds: ResourceInfo = {
  group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', singular: 'customresourcedefinition', kind: 'CustomResourceDefinition',
  listKind: 'CustomResourceDefinitionList', namespaced: false, verbs: ['create'], statusSubresource: true, builtin: true,
};
const vwcs: ResourceInfo = {
  group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', singular: 'validatingwebhookconfiguration',
  kind: 'ValidatingWebhookConfiguration', listKind: 'ValidatingWebhookConfigurationList', namespaced: false, verbs: ['create'], statusSubresource: false, builtin: true,
};

let ca: { cert: string; key: string };
let leaf: Pem;
let server: https.Server;
let base: string;
const handlers = new Map<string, Handler>();
/** Reviews received, by path. */
const received = new Map<string, { review: Review; url: string }[]>();

function answer(res: http.ServerResponse, review: Review, response: Record<string, unknown>): void {
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, ...response } }));
}

before(async () => {
  const authority = createCA('admission-test-ca');
  ca = authority;
  leaf = authority.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  server = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = new URL(req.url!, 'https://x').pathname;
      const review = JSON.parse(Buffer.concat(chunks).toString()) as Review;
      received.set(path, [...(received.get(path) ?? []), { review, url: req.url! }]);
      const h = handlers.get(path);
      if (h) h(review, req, res);
      else answer(res, review, { allowed: true });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const caBundle = () => Buffer.from(ca.cert).toString('base64');

/** One configuration holding the given webhooks; each calls `base + path` unless it brings its own clientConfig. */
function config(...webhooks: Record<string, any>[]): KubeObject {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'cfg' },
    webhooks: webhooks.map((w) => ({
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      rules: [{ operations: ['CREATE', 'UPDATE'], apiGroups: ['stable.example.com'], apiVersions: ['v1'], resources: ['crontabs'] }],
      ...w,
      clientConfig: w.clientConfig ?? { url: `${base}${w.path}`, caBundle: caBundle() },
      path: undefined,
    })),
  };
}

const nsObjects = new Map<string, KubeObject>([
  ['default', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', labels: { 'kubernetes.io/metadata.name': 'default' } } }],
  ['kube-system', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kube-system', labels: { 'kubernetes.io/metadata.name': 'kube-system' } } }],
]);

function dispatcher(...configs: KubeObject[]): AdmissionDispatcher {
  return new AdmissionDispatcher({ listConfigurations: () => configs, getNamespace: (n) => nsObjects.get(n) });
}

const cronTab = (labels: Record<string, string> = {}): KubeObject => ({
  apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'ct', namespace: 'default', labels }, spec: { cronSpec: '* * * * *', image: 'busybox' },
});

function attrs(over: Partial<AdmissionAttributes> = {}): AdmissionAttributes {
  return {
    operation: 'CREATE', resource: crontabs, subResource: '', name: 'ct', namespace: 'default', object: cronTab(), oldObject: null, dryRun: false,
    options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply' },
    userInfo: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] },
    ...over,
  };
}

async function rejection(p: Promise<unknown>): Promise<StatusError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StatusError, `expected StatusError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to be refused');
}

let n = 0;
/** A fresh path per test, so tests sharing the server never read each other's requests. */
function path(name: string): string {
  return `/${name}-${++n}`;
}

describe('calling webhooks', () => {
  test('allow: the AdmissionReview request carries what the contract lists', async () => {
    const p = path('allow');
    const result = await dispatcher(config({ name: 'allow.test', path: p })).validate(attrs());
    assert.deepEqual(result, { warnings: [] });
    const [call] = received.get(p)!;
    assert.equal(new URL(call!.url, 'https://x').search, '?timeout=10s');
    const { apiVersion, kind, request } = call!.review;
    assert.equal(apiVersion, 'admission.k8s.io/v1');
    assert.equal(kind, 'AdmissionReview');
    assert.match(request.uid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(request.kind, { group: 'stable.example.com', version: 'v1', kind: 'CronTab' });
    assert.deepEqual(request.resource, { group: 'stable.example.com', version: 'v1', resource: 'crontabs' });
    assert.deepEqual(request.requestKind, request.kind);
    assert.deepEqual(request.requestResource, request.resource);
    assert.equal(request.name, 'ct');
    assert.equal(request.namespace, 'default');
    assert.equal(request.operation, 'CREATE');
    assert.deepEqual(request.userInfo, { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] });
    assert.deepEqual(request.object, cronTab());
    assert.equal(request.oldObject, null);
    assert.equal(request.dryRun, false);
    assert.deepEqual(request.options, { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'kubectl-client-side-apply' });
    assert.equal('subResource' in request, false);
  });

  test('deny with code and message: the webhook\'s code, reason and message', async () => {
    const p = path('deny');
    handlers.set(p, (r, _q, res) => answer(res, r, { allowed: false, status: { code: 403, reason: 'Forbidden', message: 'weak password' } }));
    const err = await rejection(dispatcher(config({ name: 'deny.test', path: p })).validate(attrs()));
    assert.equal(err.code, 403);
    assert.equal(err.reason, 'Forbidden');
    assert.equal(err.message, 'admission webhook "deny.test" denied the request: weak password');
    assert.equal(err.toStatus().status, 'Failure');
  });

  test('deny without explanation, with a code below 400, with a reason only', async () => {
    const bare = path('bare');
    handlers.set(bare, (r, _q, res) => answer(res, r, { allowed: false }));
    let err = await rejection(dispatcher(config({ name: 'bare.test', path: bare })).validate(attrs()));
    assert.equal(err.code, 400);
    assert.equal(err.reason, '');
    assert.equal(err.message, 'admission webhook "bare.test" denied the request without explanation');

    const low = path('low');
    handlers.set(low, (r, _q, res) => answer(res, r, { allowed: false, status: { code: 200, message: 'no' } }));
    err = await rejection(dispatcher(config({ name: 'low.test', path: low })).validate(attrs()));
    assert.equal(err.code, 400);
    assert.equal(err.message, 'admission webhook "low.test" denied the request: no');

    const reasonOnly = path('reason');
    handlers.set(reasonOnly, (r, _q, res) => answer(res, r, { allowed: false, status: { code: 422, reason: 'Invalid' } }));
    err = await rejection(dispatcher(config({ name: 'reason.test', path: reasonOnly })).validate(attrs()));
    assert.equal(err.code, 422);
    assert.equal(err.message, 'admission webhook "reason.test" denied the request: Invalid');
  });

  test('warnings from every webhook, on allow and on deny', async () => {
    const a = path('warn-a');
    const b = path('warn-b');
    handlers.set(a, (r, _q, res) => answer(res, r, { allowed: true, warnings: ['first'] }));
    handlers.set(b, (r, _q, res) => answer(res, r, { allowed: true, warnings: ['second', 'third'] }));
    const ok = await dispatcher(config({ name: 'a.test', path: a }, { name: 'b.test', path: b })).validate(attrs());
    assert.deepEqual(ok.warnings, ['first', 'second', 'third']);

    const d = path('warn-deny');
    handlers.set(d, (r, _q, res) => answer(res, r, { allowed: false, status: { message: 'nope' }, warnings: ['because'] }));
    const err = await rejection(dispatcher(config({ name: 'a.test', path: a }, { name: 'd.test', path: d })).validate(attrs()));
    assert.deepEqual(admissionWarnings(err), ['first', 'because']);
  });

  test('webhooks run in parallel', async () => {
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    let arrived = 0;
    const hold: Handler = (r, _q, res) => {
      if (++arrived === 2) open();
      void gate.then(() => answer(res, r, { allowed: true }));
    };
    const a = path('par-a');
    const b = path('par-b');
    handlers.set(a, hold);
    handlers.set(b, hold);
    // Each webhook answers only once both have been called: sequential calls would time out.
    const result = await dispatcher(config({ name: 'a.test', path: a, timeoutSeconds: 5 }, { name: 'b.test', path: b, timeoutSeconds: 5 })).validate(attrs());
    assert.deepEqual(result.warnings, []);
    assert.equal(arrived, 2);
  });

  test('http:// URLs work (documented local deviation)', async () => {
    const plain = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => answer(res, JSON.parse(Buffer.concat(chunks).toString()) as Review, { allowed: false, status: { message: 'plain' } }));
    });
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/v`;
      const err = await rejection(dispatcher(config({ name: 'plain.test', clientConfig: { url } })).validate(attrs()));
      assert.equal(err.message, 'admission webhook "plain.test" denied the request: plain');
    } finally {
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});

describe('failures and failurePolicy', () => {
  test('timeout under Fail is a 500 naming the URL; under Ignore the request goes through', async () => {
    const p = path('slow');
    handlers.set(p, () => { /* never answers */ });
    const url = `${base}${p}`;
    const err = await rejection(dispatcher(config({ name: 'slow.test', path: p, timeoutSeconds: 1 })).validate(attrs()));
    const cause = `failed calling webhook "slow.test": failed to call webhook: Post "${url}?timeout=1s": context deadline exceeded`;
    assert.equal(err.code, 500);
    assert.equal(err.reason, 'InternalError');
    assert.equal(err.message, `Internal error occurred: ${cause}`);
    assert.deepEqual(err.details, { causes: [{ message: cause }] });

    const started = Date.now();
    const ok = await dispatcher(config({ name: 'slow.test', path: p, timeoutSeconds: 1, failurePolicy: 'Ignore' })).validate(attrs());
    assert.deepEqual(ok, { warnings: [] });
    assert.ok(Date.now() - started < 5000);
  });

  test('connection refused, in Go\'s words', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await rejection(dispatcher(config({ name: 'down.test', clientConfig: { url: `https://127.0.0.1:${port}/x`, caBundle: caBundle() } })).validate(attrs()));
    assert.equal(err.message, `Internal error occurred: failed calling webhook "down.test": failed to call webhook: Post "https://127.0.0.1:${port}/x?timeout=10s": dial tcp 127.0.0.1:${port}: connect: connection refused`);
  });

  test('a certificate the caBundle does not vouch for is a call failure', async () => {
    const p = path('tls');
    const wrongBundle = Buffer.from(leaf.cert).toString('base64'); // the leaf is no CA
    const err = await rejection(dispatcher(config({ name: 'tls.test', clientConfig: { url: `${base}${p}`, caBundle: wrongBundle } })).validate(attrs()));
    assert.equal(err.code, 500);
    assert.match(err.message, /failed calling webhook "tls\.test": failed to call webhook: Post ".*": tls: failed to verify certificate: x509: certificate signed by unknown authority$/);
    assert.equal(received.get(p), undefined);
  });

  const broken: [string, Handler, RegExp][] = [
    ['garbage body', (_r, _q, res) => res.end('this is not json'), /failed to call webhook: couldn't get version\/kind; json parse error: /],
    ['wrong uid', (r, _q, res) => answer(res, { ...r, request: { ...r.request, uid: 'other' } }, { allowed: true }), /received invalid webhook response: expected response\.uid="[0-9a-f-]+", got "other"$/],
    ['wrong kind', (r, _q, res) => res.end(JSON.stringify({ apiVersion: 'v1', kind: 'Status', response: { uid: r.request.uid, allowed: true } })), /expected webhook response of admission\.k8s\.io\/v1, Kind=AdmissionReview, got v1, Kind=Status$/],
    ['no response', (_r, _q, res) => res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' })), /webhook response was absent$/],
    ['a patch', (r, _q, res) => answer(res, r, { allowed: true, patchType: 'JSONPatch', patch: 'W10=' }), /validating webhooks may not return patches$/],
    ['HTTP 500', (_r, _q, res) => { res.statusCode = 500; res.end('boom'); }, /failed to call webhook: an error on the server \("boom"\) has prevented the request from succeeding$/],
    ['HTTP 404', (_r, _q, res) => { res.statusCode = 404; res.end(); }, /the server responded with the status code 404 but did not return more information$/],
  ];
  for (const [what, handler, message] of broken) {
    test(`${what}: 500 under Fail, allowed under Ignore`, async () => {
      const p = path('broken');
      handlers.set(p, handler);
      const err = await rejection(dispatcher(config({ name: 'broken.test', path: p })).validate(attrs()));
      assert.equal(err.code, 500);
      assert.equal(err.reason, 'InternalError');
      assert.match(err.message, message);
      assert.deepEqual(await dispatcher(config({ name: 'broken.test', path: p, failurePolicy: 'Ignore' })).validate(attrs()), { warnings: [] });
    });
  }

  test('service references cannot be resolved here: a call failure naming the service URL', async () => {
    const err = await rejection(dispatcher(config({ name: 'svc.test', clientConfig: { service: { namespace: 'kreconcile', name: 'webhook', path: '/validate', port: 443 } } })).validate(attrs()));
    assert.equal(err.message, 'Internal error occurred: failed calling webhook "svc.test": failed to call webhook: Post "https://webhook.kreconcile.svc:443/validate?timeout=10s": dial tcp: lookup webhook.kreconcile.svc: no such host');
  });

  test('a denial wins over an ignored failure', async () => {
    const d = path('deny2');
    handlers.set(d, (r, _q, res) => answer(res, r, { allowed: false, status: { code: 403, message: 'no' } }));
    const err = await rejection(dispatcher(config(
      { name: 'gone.test', clientConfig: { url: 'https://127.0.0.1:1/x' }, failurePolicy: 'Ignore' },
      { name: 'deny.test', path: d },
    )).validate(attrs()));
    assert.equal(err.code, 403);
  });
});

describe('which webhooks are called', () => {
  /** Calls the dispatcher with one recording webhook and reports whether it was called. */
  async function called(webhook: Record<string, any>, a: AdmissionAttributes): Promise<boolean> {
    const p = path('match');
    await dispatcher(config({ name: 'm.test', path: p, ...webhook })).validate(a);
    return (received.get(p)?.length ?? 0) > 0;
  }
  const rule = (r: Record<string, unknown>) => ({ rules: [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'], ...r }] });

  test('operations, groups, versions', async () => {
    assert.equal(await called(rule({ operations: ['CREATE'] }), attrs()), true);
    assert.equal(await called(rule({ operations: ['UPDATE'] }), attrs()), false);
    assert.equal(await called(rule({ operations: ['DELETE'] }), attrs({ operation: 'DELETE', object: null, oldObject: cronTab() })), true);
    assert.equal(await called(rule({ apiGroups: [''] }), attrs()), false);
    assert.equal(await called(rule({ apiGroups: ['stable.example.com'], apiVersions: ['v2'] }), attrs()), false);
  });

  test('resources: plain, */*, subresources', async () => {
    const status = attrs({ operation: 'UPDATE', subResource: 'status', oldObject: cronTab() });
    assert.equal(await called(rule({ resources: ['crontabs'] }), attrs()), true);
    assert.equal(await called(rule({ resources: ['secrets'] }), attrs()), false);
    assert.equal(await called(rule({ resources: ['crontabs'] }), status), false);
    assert.equal(await called(rule({ resources: ['*'] }), status), false);
    assert.equal(await called(rule({ resources: ['crontabs/status'] }), status), true);
    assert.equal(await called(rule({ resources: ['*/*'] }), status), true);
    assert.equal(await called(rule({ resources: ['crontabs/*'] }), status), true);
    assert.equal(await called(rule({ resources: ['*/status'] }), status), true);
    const p = path('status-req');
    await dispatcher(config({ name: 's.test', path: p, ...rule({ resources: ['*/*'] }) })).validate(status);
    assert.equal(received.get(p)![0]!.review.request.subResource, 'status');
  });

  test('scope', async () => {
    const crd = attrs({ resource: crds, namespace: '', name: 'x', object: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'x' } } });
    assert.equal(await called(rule({ scope: 'Namespaced' }), attrs()), true);
    assert.equal(await called(rule({ scope: 'Cluster' }), attrs()), false);
    assert.equal(await called(rule({ scope: 'Cluster' }), crd), true);
    assert.equal(await called(rule({ scope: 'Namespaced' }), crd), false);
    assert.equal(await called(rule({ scope: '*' }), crd), true);
  });

  test('namespaceSelector: the namespace\'s labels; a Namespace\'s own; cluster-scoped always', async () => {
    const notSystem = { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system'] }] }, ...rule({}) };
    assert.equal(await called(notSystem, attrs()), true);
    assert.equal(await called(notSystem, attrs({ namespace: 'kube-system', object: { ...cronTab(), metadata: { name: 'ct', namespace: 'kube-system' } } })), false);
    const ns = (name: string, labels: Record<string, string>) => attrs({ resource: namespaces, namespace: '', name, object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } } });
    const team = { namespaceSelector: { matchLabels: { team: 'a' } }, ...rule({}) };
    assert.equal(await called(team, ns('n1', { team: 'a' })), true);
    assert.equal(await called(team, ns('n2', { team: 'b' })), false);
    assert.equal(await called(team, attrs({ resource: crds, namespace: '', object: { apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'x' } } })), true);
  });

  test('objectSelector: object or oldObject labels', async () => {
    const sel = { objectSelector: { matchLabels: { checked: 'yes' } }, ...rule({}) };
    assert.equal(await called(sel, attrs({ object: cronTab({ checked: 'yes' }) })), true);
    assert.equal(await called(sel, attrs({ object: cronTab() })), false);
    assert.equal(await called(sel, attrs({ operation: 'UPDATE', object: cronTab(), oldObject: cronTab({ checked: 'yes' }) })), true);
    assert.equal(await called(sel, attrs({ operation: 'DELETE', object: null, oldObject: cronTab({ checked: 'yes' }) })), true);
  });

  test('matchConditions (CEL): all true to call; an error is a call failure', async () => {
    const cond = (...expressions: string[]) => ({ matchConditions: expressions.map((expression, i) => ({ name: `c${i}`, expression })), ...rule({}) });
    assert.equal(await called(cond('true'), attrs()), true);
    assert.equal(await called(cond('true', 'false'), attrs()), false);
    assert.equal(await called(cond('object.spec.image == "busybox"', '!request.userInfo.username.startsWith("system:")'), attrs()), true);
    assert.equal(await called(cond('request.userInfo.username.startsWith("system:")'), attrs()), false);
    const err = await rejection(dispatcher(config({ name: 'cel.test', path: path('cel'), ...cond('authorizer.group("").check()') })).validate(attrs()));
    assert.match(err.message, /^Internal error occurred: failed calling webhook "cel\.test": failed evaluating match conditions: matchCondition "c0": /);
  });

  test('dryRun: sent as dryRun true to side-effect-free webhooks; others refuse dry run', async () => {
    const p = path('dry');
    await dispatcher(config({ name: 'dry.test', path: p, sideEffects: 'NoneOnDryRun' })).validate(attrs({ dryRun: true, options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1', dryRun: ['All'] } }));
    const request = received.get(p)![0]!.review.request;
    assert.equal(request.dryRun, true);
    assert.deepEqual(request.options.dryRun, ['All']);
    const err = await rejection(dispatcher(config({ name: 'fx.test', path: path('fx'), sideEffects: 'Some' })).validate(attrs({ dryRun: true })));
    assert.equal(err.code, 400);
    assert.equal(err.message, 'admission webhook "fx.test" does not support dry run');
  });

  test('webhook configurations themselves are never sent to webhooks', async () => {
    const a = attrs({ resource: vwcs, namespace: '', name: 'cfg', object: config({ name: 'x.test', path: '/x' }) });
    assert.equal(await called(rule({}), a), false);
  });

  test('matchPolicy Equivalent reaches a webhook through an equivalent resource', async () => {
    const coreEvents: ResourceInfo = { ...crontabs, group: '', resource: 'events', kind: 'Event', listKind: 'EventList', builtin: true, statusSubresource: false };
    const newEvents: ResourceInfo = { ...coreEvents, group: 'events.k8s.io' };
    const p = path('equiv');
    const d = new AdmissionDispatcher({
      listConfigurations: () => [config({ name: 'ev.test', path: p, rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['events'] }] })],
      getNamespace: (name) => nsObjects.get(name),
      equivalents: (r) => (r === newEvents ? [coreEvents] : []),
      convert: (o) => ({ ...o, apiVersion: 'v1', note: undefined, message: (o as any).note }),
    });
    const ev = { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: 'e', namespace: 'default' }, note: 'hi' } as KubeObject;
    await d.validate(attrs({ resource: newEvents, name: 'e', object: ev }));
    const request = received.get(p)![0]!.review.request;
    assert.deepEqual(request.resource, { group: '', version: 'v1', resource: 'events' });
    assert.deepEqual(request.requestResource, { group: 'events.k8s.io', version: 'v1', resource: 'events' });
    assert.equal(request.object.message, 'hi');
    // Exact: not called
    const q = path('exact');
    const exact = new AdmissionDispatcher({
      listConfigurations: () => [config({ name: 'ev.test', path: q, matchPolicy: 'Exact', rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['events'] }] })],
      getNamespace: (name) => nsObjects.get(name),
      equivalents: () => [coreEvents],
    });
    await exact.validate(attrs({ resource: newEvents, name: 'e', object: ev }));
    assert.equal(received.get(q), undefined);
  });
});
