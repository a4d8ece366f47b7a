// Scenario 2: the relay leader is SIGKILLed, twice; the standby takes over.
// The Lease (LEASE_DURATION 4 s, renewed every 1 s) expires, the standby takes
// it, resumes every watch from the checkpoint the old leader left in Redis (a
// checkpoint never runs ahead of the jobs already added), and relays again.
// Events between the old leader's last flush and its death are replayed from
// the checkpoint. Bound on takeover: lease duration + one renew interval.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 30;
const TAKEOVER_BOUND_S = 4 + 1 + 3; // lease + renew interval + slack for a loaded machine

test('2: SIGKILL the relay leader, twice: the standby takes over, every object converges', async (t) => {
  const h = await startHarness({ workers: 2, relays: 2, leaseDuration: '4s', leaseRenew: '1s' });
  try {
    h.driver.start();
    await sleep(2_000);
    const takeovers: number[] = [];
    for (let round = 0; round < 2; round++) {
      const old = h.leader();
      assert.ok(old, 'a relay leads');
      await old.kill();
      const killedAt = Date.now();
      const next = await h.waitForLeader(30_000, old);
      takeovers.push((Date.now() - killedAt) / 1000);
      assert.notEqual(next.name, old.name);
      // The killed replica comes back as the standby.
      await old.start((l) => l.msg === 'relay role running');
      await sleep(2_000);
    }
    await h.driver.stop();
    const conv = await h.waitConverged(CONVERGE_BOUND_S * 1000);
    t.diagnostic(reportLine('relay-leader-sigkill', h, conv, { takeoverSeconds: takeovers.map((s) => Number(s.toFixed(1))) }));
    assert.ok(h.driver.stats.changes > 50, `the stream made changes (${h.driver.stats.changes})`);
    assertConverged(h, conv, CONVERGE_BOUND_S);
    for (const s of takeovers) assert.ok(s <= TAKEOVER_BOUND_S, `standby took over within ${TAKEOVER_BOUND_S} s (${s} s)`);
  } finally {
    await h.stop();
  }
});
