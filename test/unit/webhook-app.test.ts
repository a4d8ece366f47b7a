import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { beforeEach, describe, test } from 'node:test';
import request from 'supertest';
import { createLogger } from '../../services/common/logger.ts';
import { createRegistry } from '../../services/common/metrics.ts';
import { createApp, createListener, MAX_REVIEW_BYTES } from '../../services/webhook/app.ts';
import { createWebhookMetrics } from '../../services/webhook/metrics.ts';

const WEAK = 'xq7!b';
const COMMON = 'qwertyuiop';
const STRONG = 'tangerine-violin-47-Orbit';
const b64 = (s: string) => Buffer.from(s).toString('base64');

function review(req: Record<string, unknown>) {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: randomUUID(), name: 'x', namespace: 'default', ...req } };
}
const secretKind = { group: '', version: 'v1', kind: 'Secret' };
const cronTabKind = { group: 'stable.example.com', version: 'v1', kind: 'CronTab' };
const secret = (fields: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x', namespace: 'default' }, ...fields });
const cronTab = (spec: Record<string, unknown>) => ({ apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'x', namespace: 'default' }, spec });

// The express app (what supertest-style tests and other hosts mount) and the
// listener the HTTPS server serves (a fast path to the same handler) must agree.
for (const [label, factory] of [['express app', createApp], ['server listener', createListener]] as const) {
describe(label, () => {
  let lines: string[];
  let app: ReturnType<typeof createListener>;
  let registry: ReturnType<typeof createRegistry>;

  beforeEach(() => {
    lines = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    registry = createRegistry('webhook', { defaultMetrics: false });
    app = factory({ log: createLogger({ level: 'debug', destination: sink }), metrics: createWebhookMetrics(registry) });
  });

  async function post(body: object) {
    const res = await request(app).post('/validate').set('content-type', 'application/json').send(body);
    return res;
  }

  function assertEchoes(res: request.Response, body: { request: { uid: string } }) {
    assert.equal(res.status, 200);
    assert.equal(res.body.apiVersion, 'admission.k8s.io/v1');
    assert.equal(res.body.kind, 'AdmissionReview');
    assert.equal(res.body.response.uid, body.request.uid);
  }

  describe('Secrets', () => {
    test('a weak password in data is denied with 403, naming rule and key, not the value', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', object: secret({ data: { password: b64(WEAK) } }) });
      const res = await post(body);
      assertEchoes(res, body);
      assert.equal(res.body.response.allowed, false);
      assert.equal(res.body.response.status.code, 403);
      assert.match(res.body.response.status.message, /key "password".*min-length/);
      assert.ok(!res.text.includes(WEAK) && !res.text.includes(b64(WEAK)));
    });

    test('a well-known password in stringData is denied', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', object: secret({ stringData: { password: COMMON } }) });
      const res = await post(body);
      assert.equal(res.body.response.allowed, false);
      assert.match(res.body.response.status.message, /well-known/);
    });

    test('basic-auth type is checked too', async () => {
      const body = review({ kind: secretKind, operation: 'UPDATE', object: secret({ type: 'kubernetes.io/basic-auth', data: { username: b64('u'), password: b64(WEAK) } }), oldObject: secret({ type: 'kubernetes.io/basic-auth', data: { password: b64(STRONG) } }) });
      const res = await post(body);
      assert.equal(res.body.response.allowed, false);
    });

    test('a strong password is allowed, without warnings', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', object: secret({ data: { password: b64(STRONG) } }) });
      const res = await post(body);
      assertEchoes(res, body);
      assert.equal(res.body.response.allowed, true);
      assert.equal(res.body.response.warnings, undefined);
    });

    test('a password close to failing is allowed with a warning', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', object: secret({ stringData: { password: 'k7#Qz!m2Rw' } }) });
      const res = await post(body);
      assert.equal(res.body.response.allowed, true);
      assert.match(res.body.response.warnings[0], /minimum length/);
    });

    test('a Secret without a password key, or of another type, is allowed', async () => {
      for (const object of [secret({ data: { token: b64('t') } }), secret({ type: 'kubernetes.io/tls', data: { password: b64(WEAK) } })]) {
        const res = await post(review({ kind: secretKind, operation: 'CREATE', object }));
        assert.equal(res.body.response.allowed, true);
      }
    });

    test('an update that keeps an old weak password is allowed with a warning (labels, audit annotations)', async () => {
      const old = secret({ data: { password: b64(WEAK) } });
      const body = review({ kind: secretKind, operation: 'UPDATE', object: { ...old, metadata: { ...old.metadata, labels: { a: 'b' } } }, oldObject: old });
      const res = await post(body);
      assert.equal(res.body.response.allowed, true);
      assert.match(res.body.response.warnings.join(), /unchanged password in key "password"/);
    });

    test('an update that changes the password to a weak one is denied', async () => {
      const body = review({ kind: secretKind, operation: 'UPDATE', object: secret({ data: { password: b64(WEAK) } }), oldObject: secret({ data: { password: b64('another-weak') } }) });
      assert.equal((await post(body)).body.response.allowed, false);
    });

    test('dry-run requests are judged the same way', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', dryRun: true, object: secret({ data: { password: b64(WEAK) } }) });
      const res = await post(body);
      assert.equal(res.body.response.allowed, false);
      assert.match(lines.find((l) => l.includes(body.request.uid))!, /"dryRun":true/);
    });

    test('DELETE and CONNECT are allowed even for a weak Secret', async () => {
      for (const operation of ['DELETE', 'CONNECT']) {
        const body = review({ kind: secretKind, operation, object: null, oldObject: secret({ data: { password: b64(WEAK) } }) });
        const res = await post(body);
        assertEchoes(res, body);
        assert.equal(res.body.response.allowed, true);
      }
    });

    test('the configured policy is applied (min length and keys)', async () => {
      const strict = factory({ log: createLogger({ level: 'silent' }), policy: { minLength: 30, keys: ['db-pass'] } });
      const body = review({ kind: secretKind, operation: 'CREATE', object: secret({ data: { password: b64(WEAK), 'db-pass': b64(STRONG) } }) });
      const res = await request(strict).post('/validate').send(body);
      assert.equal(res.body.response.allowed, false);
      assert.match(res.body.response.status.message, /key "db-pass".*30 characters/);
    });
  });

  describe('CronTabs', () => {
    test('a valid CronTab is allowed', async () => {
      const body = review({ kind: cronTabKind, operation: 'CREATE', object: cronTab({ cronSpec: '*/5 * * * *', image: 'busybox', replicas: 2, timeZone: 'Europe/Paris' }) });
      const res = await post(body);
      assertEchoes(res, body);
      assert.equal(res.body.response.allowed, true);
    });

    test('an invalid cronSpec is denied, naming the field', async () => {
      const res = await post(review({ kind: cronTabKind, operation: 'CREATE', object: cronTab({ cronSpec: '* * * *', image: 'busybox' }) }));
      assert.equal(res.body.response.allowed, false);
      assert.equal(res.body.response.status.code, 403);
      assert.match(res.body.response.status.message, /^spec\.cronSpec: must have 5 fields/);
    });

    test('an unknown time zone and replicas 0 are denied, naming both fields', async () => {
      const res = await post(review({ kind: cronTabKind, operation: 'UPDATE', object: cronTab({ cronSpec: '@daily', image: 'b', replicas: 0, timeZone: 'Mars/Olympus' }), oldObject: cronTab({ cronSpec: '@daily', image: 'b' }) }));
      assert.equal(res.body.response.allowed, false);
      assert.match(res.body.response.status.message, /spec\.timeZone: .*; spec\.replicas: /);
    });

    test('an update that leaves an invalid field unchanged is allowed with a warning', async () => {
      const old = cronTab({ cronSpec: '0 0 * * 7', image: 'b' });
      const res = await post(review({ kind: cronTabKind, operation: 'UPDATE', object: { ...old, metadata: { ...old.metadata, finalizers: [] } }, oldObject: old }));
      assert.equal(res.body.response.allowed, true);
      assert.match(res.body.response.warnings[0], /unchanged spec\.cronSpec/);
    });

    test('an UPDATE whose spec is too deeply nested to compare is judged (denied), not a 500', async () => {
      const body = JSON.stringify(review({ kind: cronTabKind, operation: 'UPDATE', object: cronTab({ cronSpec: 'DEEP', image: 'b' }), oldObject: cronTab({ cronSpec: 'DEEP', image: 'b' }) }));
      // Sent as text: the test client itself cannot serialise such an object.
      const res = await request(app).post('/validate').set('content-type', 'application/json').send(body.replaceAll('"DEEP"', `${'['.repeat(20_000)}${']'.repeat(20_000)}`));
      assert.equal(res.status, 200);
      assert.equal(res.body.response.allowed, false);
      assert.match(res.body.response.status.message, /spec\.cronSpec: must be a string/);
    });

    test('status subresource writes are allowed', async () => {
      const res = await post(review({ kind: cronTabKind, operation: 'UPDATE', subResource: 'status', object: cronTab({ cronSpec: 'bad', image: 'b' }), oldObject: cronTab({ cronSpec: 'bad', image: 'b' }) }));
      assert.equal(res.body.response.allowed, true);
    });

    test('a CronTab-named kind of another group is not ours: allowed', async () => {
      const res = await post(review({ kind: { group: 'other.example.com', version: 'v1', kind: 'CronTab' }, operation: 'CREATE', object: cronTab({ cronSpec: 'bad' }) }));
      assert.equal(res.body.response.allowed, true);
    });
  });

  test('unknown kinds are allowed', async () => {
    const body = review({ kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, operation: 'CREATE', object: { spec: {} } });
    const res = await post(body);
    assertEchoes(res, body);
    assert.equal(res.body.response.allowed, true);
  });

  describe('bad input', () => {
    const cases: Array<[string, unknown, RegExp]> = [
      ['missing request', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }, /request is missing/],
      ['missing request.uid', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { kind: secretKind, operation: 'CREATE' } }, /request\.uid is missing/],
      ['missing request.kind', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE' } }, /request\.kind is missing/],
      ['missing request.operation', { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u', kind: secretKind } }, /request\.operation is missing/],
      ['wrong kind', { apiVersion: 'admission.k8s.io/v1', kind: 'Pod', request: {} }, /kind must be "AdmissionReview"/],
      ['wrong apiVersion', { apiVersion: 'admission.k8s.io/v1beta1', kind: 'AdmissionReview', request: {} }, /apiVersion must be/],
      ['an array', [1, 2], /JSON object/],
      ['CREATE without object', review({ kind: secretKind, operation: 'CREATE' }), /request\.object is missing/],
    ];
    for (const [name, body, why] of cases) {
      test(`${name}: 400 saying what is missing`, async () => {
        const res = await post(body as object);
        assert.equal(res.status, 400);
        assert.equal(res.body.kind, 'Status');
        assert.equal(res.body.code, 400);
        assert.match(res.body.message, why);
      });
    }

    test('not JSON: 400', async () => {
      const res = await request(app).post('/validate').set('content-type', 'application/json').send('{"apiVersion": ');
      assert.equal(res.status, 400);
      assert.match(res.body.message, /not valid JSON/);
    });

    test('a JSON scalar: 400', async () => {
      const res = await request(app).post('/validate').set('content-type', 'application/json').send('"hello"');
      assert.equal(res.status, 400);
    });

    test('empty body: 400', async () => {
      const res = await request(app).post('/validate').set('content-type', 'application/json');
      assert.equal(res.status, 400);
      assert.match(res.body.message, /body is empty/);
    });

    test('wrong method: 405 with Allow', async () => {
      for (const method of ['get', 'put', 'delete', 'patch'] as const) {
        const res = await request(app)[method]('/validate');
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.allow, 'POST');
      }
    });

    test('wrong content type: 415', async () => {
      const res = await request(app).post('/validate').set('content-type', 'text/plain').send('{}');
      assert.equal(res.status, 415);
      const none = await request(app).post('/validate').send(Buffer.from('{}'));
      assert.equal(none.status, 415);
    });

    test('unsupported charset: 415', async () => {
      const res = await request(app).post('/validate').set('content-type', 'application/json; charset=koi8-r').send('{}');
      assert.equal(res.status, 415);
    });

    test('a body over the limit: 413', async () => {
      const big = JSON.stringify(review({ kind: secretKind, operation: 'CREATE', object: secret({ data: { blob: 'A'.repeat(MAX_REVIEW_BYTES) } }) }));
      const res = await request(app).post('/validate').set('content-type', 'application/json').send(big);
      assert.equal(res.status, 413);
    });

    test('an UPDATE of a 3 MiB object (object + oldObject) is within the limit', async () => {
      const blob = 'A'.repeat(3 * 1024 * 1024 - 4096);
      const obj = secret({ data: { blob, password: b64(STRONG) } });
      const res = await post(review({ kind: secretKind, operation: 'UPDATE', object: obj, oldObject: obj }));
      assert.equal(res.status, 200);
      assert.equal(res.body.response.allowed, true);
    });

    test('a bug in a validator is a 500 with a logged reason, and the next review is served', async () => {
      const brokenPolicy = {
        minLength: 10,
        get keys(): string[] {
          throw new Error('policy exploded');
        },
      };
      const broken = factory({ log: createLogger({ level: 'debug', destination: { write: (l: string) => void lines.push(l) } as never }), policy: brokenPolicy });
      const res = await request(broken).post('/validate').send(review({ kind: secretKind, operation: 'CREATE', object: secret({ stringData: { password: WEAK } }) }));
      assert.equal(res.status, 500);
      assert.equal(res.body.kind, 'Status');
      assert.match(lines.join('\n'), /policy exploded/);
      assert.ok(!lines.join('\n').includes(WEAK));
      const next = await request(broken).post('/validate').send(review({ kind: cronTabKind, operation: 'CREATE', object: cronTab({ cronSpec: '@daily', image: 'b' }) }));
      assert.equal(next.status, 200);
    });

    test('unknown path: 404', async () => {
      assert.equal((await request(app).post('/mutate').send({})).status, 404);
    });
  });

  describe('logs and metrics', () => {
    test('one log line per review with identity, decision and duration, never the password', async () => {
      const body = review({ kind: secretKind, operation: 'CREATE', name: 'db', namespace: 'prod', object: secret({ stringData: { password: WEAK } }) });
      await post(body);
      const mine = lines.filter((l) => l.includes(body.request.uid));
      assert.equal(mine.length, 1);
      const line = JSON.parse(mine[0]!);
      assert.deepEqual(
        { uid: line.uid, kind: line.kind, namespace: line.namespace, name: line.name, operation: line.operation, allowed: line.allowed },
        { uid: body.request.uid, kind: 'Secret', namespace: 'prod', name: 'db', operation: 'CREATE', allowed: false },
      );
      assert.equal(typeof line.ms, 'number');
      assert.ok(!lines.join('\n').includes(WEAK));
    });

    test('request fields of any length are cut in the log line; the answer still echoes the whole uid', async () => {
      const huge = 'x'.repeat(1 << 20);
      const body = review({ uid: `u-${huge}`, kind: { group: '', version: 'v1', kind: `K${huge}` }, operation: 'CREATE', name: huge, namespace: huge, subResource: huge, object: {} });
      const res = await post(body);
      assertEchoes(res, body);
      const line = lines.find((l) => l.includes('"msg":"review"'))!;
      assert.ok(line.length < 2000, `log line of ${line.length} characters`);
      assert.ok(JSON.parse(line).uid.startsWith('u-xxx'));
    });

    test('a parse error does not log the body', async () => {
      await request(app).post('/validate').set('content-type', 'application/json').send(`{"password": "${WEAK}"`);
      assert.ok(lines.length > 0);
      assert.ok(!lines.join('\n').includes(WEAK));
    });

    test('reviews are counted by kind, operation and result, with a latency histogram', async () => {
      await post(review({ kind: secretKind, operation: 'CREATE', object: secret({ stringData: { password: WEAK } }) }));
      await post(review({ kind: cronTabKind, operation: 'CREATE', object: cronTab({ cronSpec: '@daily', image: 'b' }) }));
      await post(review({ kind: { group: 'x', version: 'v1', kind: `Rand${randomUUID()}` }, operation: 'CREATE', object: {} }));
      await request(app).post('/validate').set('content-type', 'application/json').send('nope');
      const text = await registry.metrics();
      assert.match(text, /kreconcile_webhook_reviews_total\{kind="Secret",operation="CREATE",result="denied",role="webhook"\} 1/);
      assert.match(text, /kreconcile_webhook_reviews_total\{kind="CronTab",operation="CREATE",result="allowed",role="webhook"\} 1/);
      assert.match(text, /kreconcile_webhook_reviews_total\{kind="other",operation="CREATE",result="allowed",role="webhook"\} 1/);
      assert.match(text, /kreconcile_webhook_reviews_total\{kind="unknown",operation="unknown",result="bad_request",role="webhook"\} 1/);
      assert.match(text, /kreconcile_webhook_review_duration_seconds_count\{role="webhook",kind="Secret"\} 1/);
      assert.ok(!/Rand/.test(text), 'a kind from the request never becomes a label value');
    });
  });
});
}
