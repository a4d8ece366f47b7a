import assert from 'node:assert/strict';
import fs from 'node:fs';
import type https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { loadKubeAccess } from '../../services/relay/kube-access.ts';

let dir: string;
before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-kube-access-'))));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function kubeconfig(name: string, cluster: Record<string, unknown>, user: Record<string, unknown>): string {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    YAML.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster: { server: 'https://api.example:6443', ...cluster } }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

async function optionsOf(file: string): Promise<https.RequestOptions & { headers: Record<string, string> }> {
  const access = await loadKubeAccess(file);
  const opts: https.RequestOptions = { headers: {} };
  await access.applyToHTTPSOptions(opts);
  return opts as https.RequestOptions & { headers: Record<string, string> };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('a token and inline CA', async () => {
  const file = kubeconfig('token.yaml', { 'certificate-authority-data': b64('CA PEM') }, { token: 'abc123' });
  const access = await loadKubeAccess(file);
  assert.equal(access.getCurrentCluster()?.server, 'https://api.example:6443');
  const opts = await optionsOf(file);
  assert.equal(opts.ca, 'CA PEM');
  assert.equal(opts.headers.authorization, 'Bearer abc123');
  assert.equal(opts.rejectUnauthorized, undefined);
});

test('files are resolved next to the kubeconfig; a token file is re-read when it rotates', async () => {
  fs.writeFileSync(path.join(dir, 'ca.crt'), 'CA FROM FILE');
  fs.writeFileSync(path.join(dir, 'client.crt'), 'CERT');
  fs.writeFileSync(path.join(dir, 'client.key'), 'KEY');
  fs.writeFileSync(path.join(dir, 'token'), 'first\n');
  const file = kubeconfig('files.yaml', { 'certificate-authority': 'ca.crt', 'tls-server-name': 'api.internal' }, { 'client-certificate': 'client.crt', 'client-key': 'client.key', tokenFile: 'token' });
  const access = await loadKubeAccess(file);
  const opts: https.RequestOptions = { headers: {} };
  await access.applyToHTTPSOptions(opts);
  assert.deepEqual([opts.ca, opts.cert, opts.key, opts.servername], ['CA FROM FILE', 'CERT', 'KEY', 'api.internal']);
  assert.equal((opts.headers as Record<string, string>).authorization, 'Bearer first');
  fs.writeFileSync(path.join(dir, 'token'), 'second-token\n');
  const again: https.RequestOptions = { headers: {} };
  await access.applyToHTTPSOptions(again);
  assert.equal((again.headers as Record<string, string>).authorization, 'Bearer second-token');
});

test('insecure-skip-tls-verify and basic auth', async () => {
  const opts = await optionsOf(kubeconfig('insecure.yaml', { 'insecure-skip-tls-verify': true }, { username: 'admin', password: 'pw' }));
  assert.equal(opts.rejectUnauthorized, false);
  assert.equal(opts.headers.authorization, `Basic ${b64('admin:pw')}`);
});

test('an exec credential plugin is run once and its token cached until it expires', async () => {
  const counter = path.join(dir, 'exec-count');
  const plugin = path.join(dir, 'plugin.sh');
  const expiry = new Date(Date.now() + 3600_000).toISOString();
  fs.writeFileSync(plugin, `#!/bin/sh\necho x >> "${counter}"\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin-'"$PLUGIN_SUFFIX"'","expirationTimestamp":"${expiry}"}}'\n`, { mode: 0o755 });
  const file = kubeconfig('exec.yaml', {}, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: './plugin.sh', env: [{ name: 'PLUGIN_SUFFIX', value: 'xyz' }], interactiveMode: 'Never' } });
  const access = await loadKubeAccess(file);
  for (let i = 0; i < 3; i++) {
    const opts: https.RequestOptions = { headers: {} };
    await access.applyToHTTPSOptions(opts);
    assert.equal((opts.headers as Record<string, string>).authorization, 'Bearer from-plugin-xyz');
  }
  assert.equal(fs.readFileSync(counter, 'utf8').trim().split('\n').length, 1, 'the plugin ran once');
});

test('anything else is handed to client-node (an auth-provider here)', async () => {
  const file = kubeconfig('provider.yaml', {}, { 'auth-provider': { name: 'oidc', config: { 'id-token': 'tok', 'client-id': 'x', 'idp-issuer-url': 'https://issuer.example' } } });
  const access = await loadKubeAccess(file);
  assert.equal(access.constructor.name, 'KubeConfig');
  assert.equal(access.getCurrentCluster()?.server, 'https://api.example:6443');
});

test('a missing kubeconfig is a clear error', async () => {
  await assert.rejects(loadKubeAccess(path.join(dir, 'nope.yaml')), /kubeconfig file not found/);
});
