// Scenario 1: workers are SIGKILLed mid-burst, four times, and started again.
// A killed worker's active jobs stall; once their lock (WORKER_LOCK_DURATION,
// 4 s here) runs out, BullMQ's stalled-job check (every lock/2) hands them to
// another worker. Bound on convergence: lock + stalled-check interval + the work.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness, type ManagedProcess } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 30;
const isReconciled = (l: Record<string, unknown>) => l.msg === 'reconciled';

test('1: SIGKILL a worker mid-burst, four times: every object converges, no CronJob created twice', async (t) => {
  const h = await startHarness({ workers: 3, lockDuration: '4s' });
  try {
    h.driver.start();
    await sleep(1_500);
    const restarts: Promise<unknown>[] = [];
    const killMidJob = async (victim: ManagedProcess) => {
      // Mid-job: it has just written something, and the stream keeps it busy.
      await victim.waitForLine(isReconciled, 30_000);
      await victim.kill();
    };
    for (let round = 0; round < 3; round++) {
      const victim = h.workers[round]!;
      await killMidJob(victim);
      restarts.push(sleep(1_000).then(() => victim.start((l) => l.msg === 'worker started')));
      await sleep(2_000);
    }
    await Promise.all(restarts);
    // A last kill right as the stream ends: its jobs must wait out their lock.
    const last = h.workers[0]!;
    await killMidJob(last);
    await h.driver.stop();
    const conv = await h.waitConverged(CONVERGE_BOUND_S * 1000);
    t.diagnostic(reportLine('worker-sigkill', h, conv, { kills: 4 }));
    assert.ok(h.driver.stats.changes > 50, `the stream made changes (${h.driver.stats.changes})`);
    assertConverged(h, conv, CONVERGE_BOUND_S);
  } finally {
    await h.stop();
  }
});
