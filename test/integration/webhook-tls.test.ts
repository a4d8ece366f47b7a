// The webhook over real TLS: serving a generated certificate, picking up rotated
// files (plain rewrite, and the symlink swap of a mounted Secret) without
// dropping open connections, refusing a half-written pair, and the role itself.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { X509Certificate, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { createCA, type CertificateAuthority, type Pem } from '../../services/common/certs.ts';
import { silentLogger } from '../../services/common/logger.ts';
import { createListener } from '../../services/webhook/app.ts';
import { startHttpsServer, type HttpsServer } from '../../services/common/https-server.ts';

let ca: CertificateAuthority;
let first: Pem;
let second: Pem;
const tmpDirs: string[] = [];

before(() => {
  ca = createCA('webhook-tls-test-ca', 1);
  first = ca.issue({ commonName: 'first', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
  second = ca.issue({ commonName: 'second', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 1 });
});
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-webhook-tls-'));
  tmpDirs.push(d);
  return d;
}
const fingerprint = (pem: Pem) => new X509Certificate(pem.cert).fingerprint256;

function reviewBody(uid: string) {
  return JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid, kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'CREATE', object: { stringData: { password: 'tangerine-violin-47-Orbit' } } } });
}

/** POST a review; resolves with the answer, the served certificate and whether the socket was reused. */
function callValidate(port: number, agent: https.Agent): Promise<{ status: number; uid: string; fingerprint: string; reused: boolean }> {
  const uid = randomUUID();
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/validate', method: 'POST', ca: ca.cert, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const fp = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, uid: JSON.parse(text).response?.uid, fingerprint: fp, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end(reviewBody(uid));
  }).then((r) => {
    const out = r as { status: number; uid: string; fingerprint: string; reused: boolean };
    assert.equal(out.uid, uid);
    return out;
  });
}

describe('certificate reload', () => {
  let server: HttpsServer;
  after(() => server?.close());

  test('serves the certificate, then the rotated one to new connections, keeping open ones', async () => {
    const dir = tmpDir();
    const certFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    fs.writeFileSync(certFile, first.cert);
    fs.writeFileSync(keyFile, first.key);
    server = await startHttpsServer({ app: createListener({ log: silentLogger }), certFile, keyFile, port: 0, host: '127.0.0.1', log: silentLogger, pollIntervalMs: 60_000 });

    const keepAlive = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const before = await callValidate(server.port, keepAlive);
    assert.equal(before.status, 200);
    assert.equal(before.fingerprint, fingerprint(first));

    // A half-rotated pair (new certificate, old key) is refused; the old pair stays.
    const refused = once(server.events, 'reload-error');
    fs.writeFileSync(certFile, second.cert);
    await refused;
    assert.equal((await callValidate(server.port, new https.Agent())).fingerprint, fingerprint(first));

    const reloaded = once(server.events, 'reload');
    fs.writeFileSync(keyFile, second.key);
    const [info] = await reloaded;
    assert.equal(info.fingerprint256, fingerprint(second));

    const fresh = await callValidate(server.port, new https.Agent());
    assert.equal(fresh.fingerprint, fingerprint(second));

    // The connection opened before the rotation is still alive and still answers.
    const old = await callValidate(server.port, keepAlive);
    assert.equal(old.status, 200);
    assert.equal(old.reused, true);
    assert.equal(old.fingerprint, fingerprint(first));
    keepAlive.destroy();
  });

  test('follows a mounted Secret rotation (the ..data symlink swap)', async () => {
    const dir = tmpDir();
    const writeVersion = (name: string, pem: Pem) => {
      fs.mkdirSync(path.join(dir, name));
      fs.writeFileSync(path.join(dir, name, 'tls.crt'), pem.cert);
      fs.writeFileSync(path.join(dir, name, 'tls.key'), pem.key);
    };
    writeVersion('..v1', first);
    fs.symlinkSync('..v1', path.join(dir, '..data'));
    fs.symlinkSync('..data/tls.crt', path.join(dir, 'tls.crt'));
    fs.symlinkSync('..data/tls.key', path.join(dir, 'tls.key'));
    const s = await startHttpsServer({ app: createListener({ log: silentLogger }), certFile: path.join(dir, 'tls.crt'), keyFile: path.join(dir, 'tls.key'), port: 0, host: '127.0.0.1', log: silentLogger, pollIntervalMs: 60_000 });
    try {
      assert.equal((await callValidate(s.port, new https.Agent())).fingerprint, fingerprint(first));
      writeVersion('..v2', second);
      const reloaded = once(s.events, 'reload');
      // Atomic, as the kubelet does it: a new link, renamed over ..data.
      fs.symlinkSync('..v2', path.join(dir, '..data_tmp'));
      fs.renameSync(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      await reloaded;
      assert.equal((await callValidate(s.port, new https.Agent())).fingerprint, fingerprint(second));
    } finally {
      await s.close();
    }
  });

  test('files renamed into place are picked up (watch or poll, whichever fires first)', async () => {
    const dir = tmpDir();
    const certFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    fs.writeFileSync(certFile, first.cert);
    fs.writeFileSync(keyFile, first.key);
    const s = await startHttpsServer({ app: createListener({ log: silentLogger }), certFile, keyFile, port: 0, host: '127.0.0.1', log: silentLogger, pollIntervalMs: 100 });
    try {
      assert.equal(await s.reload(), false, 'unchanged files are not reloaded');
      const reloaded = once(s.events, 'reload');
      // Written elsewhere and renamed in: one event at most; the poll is the fallback either way.
      fs.writeFileSync(path.join(dir, 'k.tmp'), second.key);
      fs.writeFileSync(path.join(dir, 'c.tmp'), second.cert);
      fs.renameSync(path.join(dir, 'k.tmp'), keyFile);
      fs.renameSync(path.join(dir, 'c.tmp'), certFile);
      await reloaded;
      assert.equal(s.certificate().fingerprint256, fingerprint(second));
    } finally {
      await s.close();
    }
  });
});

describe('the webhook role', () => {
  test('serves /validate over HTTPS and /healthz, /readyz, /metrics on the health port', async () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'tls.crt'), first.cert);
    fs.writeFileSync(path.join(dir, 'tls.key'), first.key);
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'webhook', '--port', '0', '--host', '127.0.0.1', '--health-port', '0', '--tls-cert', path.join(dir, 'tls.crt')], {
      env: { ...process.env, TLS_KEY_FILE: path.join(dir, 'tls.key'), LOG_JSON: '1', LOG_LEVEL: 'info', PASSWORD_MIN_LENGTH: '12' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    try {
      const ready = await new Promise<{ port: number; healthPort: number }>((resolve, reject) => {
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (chunk: string) => {
          output += chunk;
          for (const line of output.split('\n')) {
            if (line.includes('"webhook ready"')) resolve(JSON.parse(line));
          }
        });
        child.stderr.on('data', (c) => (output += c));
        child.once('exit', (code) => reject(new Error(`webhook exited with ${code}: ${output}`)));
      });
      const health = `http://127.0.0.1:${ready.healthPort}`;
      assert.equal((await fetch(`${health}/healthz`)).status, 200);
      assert.equal((await fetch(`${health}/readyz`)).status, 200);

      // 11 characters: allowed by the default policy, denied with PASSWORD_MIN_LENGTH=12.
      const answer = await new Promise<{ response: { allowed: boolean; status: { message: string } } }>((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: ready.port, path: '/validate', method: 'POST', ca: ca.cert, headers: { 'content-type': 'application/json' } }, (res) => {
          let t = '';
          res.on('data', (c) => (t += c));
          res.on('end', () => resolve(JSON.parse(t)));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'u1', kind: { group: '', version: 'v1', kind: 'Secret' }, operation: 'CREATE', name: 'db', namespace: 'default', object: { stringData: { password: 'k7#Qz!m2RwX' } } } }));
      });
      assert.equal(answer.response.allowed, false);
      assert.match(answer.response.status.message, /shorter than 12/);

      const metrics = await (await fetch(`${health}/metrics`)).text();
      assert.match(metrics, /kreconcile_webhook_reviews_total\{kind="Secret",operation="CREATE",result="denied",role="webhook"\} 1/);
      assert.match(metrics, /kreconcile_webhook_review_duration_seconds_bucket/);

      child.kill('SIGTERM');
      const [code] = await once(child, 'close');
      assert.equal(code, 0);
      // The webhook writes its log in batches: the review's line is out by the time it has exited.
      assert.match(output, /"uid":"u1".*"allowed":false/);
      assert.ok(!output.includes('k7#Qz!m2RwX'), 'the password never reaches the log');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  test('refuses to start without certificate files, naming the variables', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'webhook'], { env: { ...process.env, TLS_CERT_FILE: '', TLS_KEY_FILE: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    const [code] = await once(child, 'exit');
    assert.equal(code, 2);
    assert.match(err, /TLS_CERT_FILE: required/);
    assert.match(err, /TLS_KEY_FILE: required/);
  });
});
