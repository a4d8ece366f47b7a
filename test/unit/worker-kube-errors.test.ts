// The worker's API client turns an error answer into a KubeApiError whose message
// is logged and kept with a failed job: it must stay short whatever the server said.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { CRONJOBS, KubeApiError, KubeClient } from '../../services/worker/kube.ts';

test('a 422 whose message quotes a megabyte-long value gives a bounded error message, code and reason intact', async (t) => {
  const server = http.createServer((_req, res) => {
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Invalid', code: 422, message: `spec.image: Invalid value: "${'x'.repeat(1 << 20)}"` });
    res.writeHead(422, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const client = await KubeClient.create({ kubeconfig });
  t.after(() => client.close());
  const err = await client.update(CRONJOBS, 'team-a', 'nightly', {}).then(
    () => assert.fail('the update succeeded'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KubeApiError);
  assert.equal(err.code, 422);
  assert.equal(err.reason, 'Invalid');
  assert.match(err.message, /^PUT \/apis\/batch\/v1\/namespaces\/team-a\/cronjobs\/nightly: 422 Invalid spec\.image: Invalid value: "xxx/);
  assert.ok(err.message.length < 1200, `${err.message.length} characters`);
});
