// Scenario 4: the API drops every watch again and again (clean ends and TCP
// resets), then a 410 storm: kube-sim compacts its history to the current
// revision and drops the watches, six times, so each resumed watch finds its
// resourceVersion gone and the relay must relist. A relist compares the list
// with the known-set the relay keeps, so a delete that fell into a gap is
// still enqueued. Bound: relay backoff (≤ 10 s, reset by every event) + a
// relist + one pass over what changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 30;

test('4: every watch dropped repeatedly, then a 410 storm: relists heal it, every object converges', async (t) => {
  const h = await startHarness({ workers: 2, resyncInterval: '10m' });
  try {
    h.driver.start();
    await sleep(2_000);
    const leader = h.leader()!;
    const before = {
      restarts: await h.relayMetric(leader, 'kreconcile_relay_watch_restarts_total'),
      relists: await h.relayMetric(leader, 'kreconcile_relay_relists_total'),
      gone: await h.relayMetric(leader, 'kreconcile_relay_gone_total'),
    };
    let dropped = 0;
    for (let i = 0; i < 8; i++) {
      dropped += h.sim.faults.dropWatches(i % 2 ? 'reset' : 'end');
      await sleep(750);
    }
    for (let i = 0; i < 6; i++) {
      h.sim.faults.compact();
      dropped += h.sim.faults.dropWatches('end');
      await sleep(1_000);
    }
    await h.driver.stop();
    const conv = await h.waitConverged(CONVERGE_BOUND_S * 1000);
    const after = {
      restarts: await h.relayMetric(leader, 'kreconcile_relay_watch_restarts_total'),
      relists: await h.relayMetric(leader, 'kreconcile_relay_relists_total'),
      gone: await h.relayMetric(leader, 'kreconcile_relay_gone_total'),
    };
    const relay = { watchesDropped: dropped, watchRestarts: after.restarts - before.restarts, relists: after.relists - before.relists, gone410: after.gone - before.gone };
    t.diagnostic(reportLine('watch-drops-410', h, conv, relay));
    assert.equal(h.leader(), leader, 'the same relay led throughout');
    assert.ok(relay.watchRestarts >= 14, `the relay restarted its watches after each drop (${relay.watchRestarts})`);
    assert.ok(relay.gone410 > 0 && relay.relists > 0, `the storm forced 410s and relists (${relay.gone410} 410s, ${relay.relists} relists)`);
    assert.ok(h.driver.stats.changes > 50, `the stream made changes (${h.driver.stats.changes})`);
    assertConverged(h, conv, CONVERGE_BOUND_S);
  } finally {
    await h.stop();
  }
});
