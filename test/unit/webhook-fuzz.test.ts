// Property: whatever arrives, the webhook answers a 200 AdmissionReview echoing
// the uid or a 4xx Status, never a 5xx, never a hang, and keeps serving after.
import assert from 'node:assert/strict';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../services/common/logger.ts';
import { createListener } from '../../services/webhook/app.ts';

let server: Server;
let base: string;

before(async () => {
  server = http.createServer(createListener({ log: silentLogger })).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

async function send(body: string, contentType = 'application/json') {
  const res = await fetch(`${base}/validate`, { method: 'POST', headers: { 'content-type': contentType }, body, signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

function assertWellFormed(status: number, text: string, sentUid?: unknown) {
  assert.ok(status === 200 || (status >= 400 && status < 500), `status ${status}: ${text.slice(0, 200)}`);
  const json = JSON.parse(text);
  if (status === 200) {
    assert.equal(json.kind, 'AdmissionReview');
    assert.equal(json.apiVersion, 'admission.k8s.io/v1');
    assert.equal(typeof json.response.allowed, 'boolean');
    if (sentUid !== undefined) assert.equal(json.response.uid, sentUid);
  } else {
    assert.equal(json.kind, 'Status');
    assert.equal(json.code, status);
  }
}

const kinds = fc.oneof(
  fc.constant({ group: '', version: 'v1', kind: 'Secret' }),
  fc.constant({ group: 'stable.example.com', version: 'v1', kind: 'CronTab' }),
  fc.record({ group: fc.string(), version: fc.string(), kind: fc.string() }, { requiredKeys: [] }),
  fc.anything(),
);
const secretObject = fc.record(
  {
    type: fc.oneof(fc.constantFrom('Opaque', 'kubernetes.io/basic-auth', 'kubernetes.io/tls'), fc.anything()),
    data: fc.oneof(fc.dictionary(fc.constantFrom('password', 'user', 'x'), fc.oneof(fc.base64String(), fc.string(), fc.anything())), fc.anything()),
    stringData: fc.oneof(fc.dictionary(fc.constantFrom('password', 'user'), fc.oneof(fc.string({ unit: 'binary' }), fc.anything())), fc.anything()),
  },
  { requiredKeys: [] },
);
const cronTabObject = fc.record(
  {
    spec: fc.oneof(
      fc.record(
        {
          cronSpec: fc.oneof(fc.constantFrom('* * * * *', '@daily', '@every 1m', '0 0 * * 7', ''), fc.string(), fc.anything()),
          timeZone: fc.oneof(fc.constantFrom('UTC', 'Europe/Paris', 'Local', ''), fc.string(), fc.anything()),
          replicas: fc.oneof(fc.integer(), fc.double(), fc.anything()),
          image: fc.oneof(fc.string(), fc.anything()),
        },
        { requiredKeys: [] },
      ),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);
const reviews = fc.record(
  {
    apiVersion: fc.oneof(fc.constant('admission.k8s.io/v1'), fc.anything()),
    kind: fc.oneof(fc.constant('AdmissionReview'), fc.anything()),
    request: fc.oneof(
      fc.record(
        {
          uid: fc.oneof(fc.uuid(), fc.string(), fc.anything()),
          kind: kinds,
          operation: fc.oneof(fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT'), fc.anything()),
          subResource: fc.oneof(fc.constantFrom('', 'status'), fc.anything()),
          name: fc.anything(),
          namespace: fc.anything(),
          dryRun: fc.anything(),
          object: fc.oneof(secretObject, cronTabObject, fc.anything()),
          oldObject: fc.oneof(secretObject, cronTabObject, fc.anything()),
        },
        { requiredKeys: [] },
      ),
      fc.anything(),
    ),
  },
  { requiredKeys: [] },
);

test('random AdmissionReview-shaped bodies get a 2xx review or a 4xx', async () => {
  await fc.assert(
    fc.asyncProperty(reviews, async (body) => {
      const text = JSON.stringify(body);
      if (text === undefined) return;
      const { status, body: answer } = await send(text);
      const uid = (body.request as { uid?: unknown } | undefined)?.uid;
      assertWellFormed(status, answer, typeof uid === 'string' ? uid : undefined);
    }),
    { numRuns: 400 },
  );
});

test('arbitrary JSON and arbitrary text get a 2xx review or a 4xx', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.json(), fc.string({ unit: 'binary' })), fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded'), async (text, type) => {
      const { status, body } = await send(text, type);
      assertWellFormed(status, body);
    }),
    { numRuns: 300 },
  );
});

test('the server still answers a valid review after the fuzzing', async () => {
  const uid = 'after-fuzz';
  const { status, body } = await send(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'CREATE', object: { stringData: { password: 'xq7' } } } }));
  assert.equal(status, 200);
  assert.equal(JSON.parse(body).response.allowed, false);
  assert.equal(JSON.parse(body).response.uid, uid);
});
