// Scenario 5: the API answers 5xx on a share of requests and hangs on others,
// for every client (workers, relays, the driver, the checker), while the
// workers run. Switched through kube-sim's admin endpoint, as an operator
// would. The faults stay on until everything has converged.
//
// Workers retry a failed reconcile with exponential backoff (0.5 s × 2ⁿ, 8
// attempts); the relay backs off and resumes its watches; a Lease renewal that
// fails may move the leadership, which the standby picks up from the
// checkpoint. A reconcile makes 3–5 API calls, so at 3 % errors about one
// attempt in eight fails. The bound (75 s) covers six failures in a row
// (backoff 0.5 + 1 + … + 32 s = 63.5 s); with ~300 keys a run misses it about
// once in 10⁴. (At 10 % errors, two runs in seven had a key fail seven times in
// a row.) After 8 failed attempts (~2 min) a key waits in the failed set for
// the periodic resync (RESYNC_INTERVAL).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 75;
// A retry of an object already right may sit in its backoff (up to 32 s after six failures).
const DRAIN_BOUND_S = 45;

async function admin(url: string, path: string, method: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.equal(res.status, 200, `admin ${method} ${path}: ${res.status}`);
  return res.json();
}

test('5: the API fails (5xx) or hangs on a share of requests while workers run: every object converges', async (t) => {
  const h = await startHarness({ workers: 3, resyncInterval: '10m' });
  try {
    const adminUrl = h.sim.adminUrl!;
    h.driver.start();
    await sleep(2_000);
    const worker5xxBefore = h.answers('worker 5xx');
    await admin(adminUrl, '/faults/errors', 'POST', { code: 500, ratio: 0.03 });
    await admin(adminUrl, '/faults/errors', 'POST', { resource: 'secrets', code: 503, ratio: 0.03 });
    await admin(adminUrl, '/faults/errors', 'POST', { resource: 'cronjobs', code: 504, ratio: 0.03 });
    await admin(adminUrl, '/faults/hang', 'POST', { seconds: 2, ratio: 0.03 });
    const state = (await admin(adminUrl, '/faults', 'GET')) as { errors: unknown[]; hangs: unknown[] };
    assert.equal(state.errors.length, 3);
    assert.equal(state.hangs.length, 1);
    await sleep(10_000);
    await h.driver.stop();
    // Converged while the faults are still on: every object right. Retries of objects already
    // right may still sit in their backoff, so the queue is not waited for here …
    const conv = await h.waitConverged(CONVERGE_BOUND_S * 1000, { idleQueue: false });
    const workerErrors = h.answers('worker 5xx') - worker5xxBefore;
    await admin(adminUrl, '/faults', 'DELETE');
    // … but once the faults are off, the queue drains and nothing undoes the state.
    const drained = await h.waitConverged(DRAIN_BOUND_S * 1000);
    t.diagnostic(reportLine('api-5xx-hang', h, conv, { drainSeconds: Number(drained.seconds.toFixed(1)), worker5xx: workerErrors, relay5xx: h.answers('relay 5xx'), driverRefused: h.driver.stats.refused }));
    assert.ok(workerErrors > 10, `workers met the injected errors (${workerErrors})`);
    assert.ok(h.driver.stats.changes > 50, `the stream made changes (${h.driver.stats.changes})`);
    assertConverged(h, conv, CONVERGE_BOUND_S);
    assert.deepEqual(drained.result.wrong, [], `objects wrong after the queue drained:\n${h.diagnostics()}`);
    assert.equal(drained.result.duplicateCreates, 0, `CronJobs created twice:\n${h.diagnostics()}`);
    assert.ok(drained.converged, `the queue drained within ${DRAIN_BOUND_S} s of the faults ending (${drained.seconds} s)`);
  } finally {
    await h.stop();
  }
});
