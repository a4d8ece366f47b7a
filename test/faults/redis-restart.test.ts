// Scenario 3: Redis is SIGKILLed mid-stream and started again empty (no
// persistence): every waiting job, every deduplication key, the relay's
// checkpoints and known-sets are gone.
//
// What heals it: while Redis is away the relay keeps watching and holds the
// changed keys in memory (one entry per key). When Redis answers again, the
// relay finds its checkpoint missing, rewrites its state and enqueues every
// known key; then it flushes what it held. Workers reconnect and take the jobs.
// So convergence is bounded by the relay's reconnect backoff (≤ 2 s) plus one
// pass over every object, not by RESYNC_INTERVAL, which is set far above the
// bound here so that a pass of the periodic resync cannot be what heals it. The stream
// stops as Redis comes back: convergence is timed from the restart.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 30;

test('3: Redis killed and restarted without persistence: the relay re-enqueues every key, every object converges', async (t) => {
  const h = await startHarness({ workers: 2, resyncInterval: '10m' });
  try {
    h.driver.start();
    await sleep(3_000);
    const leader = h.leader()!;
    const enqueuedBefore = await h.relayMetric(leader, 'kreconcile_relay_jobs_enqueued_total');
    await h.redis.kill();
    await sleep(3_000); // the stream goes on; the relay holds the changed keys in memory
    await h.driver.stop();
    const lossNoticed = leader.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('redis lost the relay checkpoint'), 60_000);
    lossNoticed.catch(() => undefined); // awaited below
    await h.redis.restart();
    // Measured from the restart: the changes made while Redis was down are all still to do.
    const conv = await h.waitConverged(CONVERGE_BOUND_S * 1000);
    await lossNoticed;
    const enqueuedAfter = await h.relayMetric(leader, 'kreconcile_relay_jobs_enqueued_total');
    t.diagnostic(reportLine('redis-restart', h, conv, { downSeconds: 3, jobsEnqueuedSinceKill: enqueuedAfter - enqueuedBefore }));
    assert.equal(h.leader(), leader, 'leadership did not move: the Lease lives in the API, not in Redis');
    assert.ok(h.driver.stats.changes > 50, `the stream made changes (${h.driver.stats.changes})`);
    assertConverged(h, conv, CONVERGE_BOUND_S);
  } finally {
    await h.stop();
  }
});
