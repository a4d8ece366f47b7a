// Scenario 6: the admission webhook stops while its Secret rule has
// failurePolicy: Fail (the CronTab rule has Ignore).
//
// Expected, in order:
//  - webhook up: a weak Secret is refused with the webhook's reason, which
//    never contains the value;
//  - webhook down: every Secret create/update is refused with the API server's
//    "failed calling webhook" error (deletes are not subject to the rule);
//    CronTab writes go on and converge; the workers' own Secret writes (the
//    audit annotation) are refused too and back off;
//  - webhook back: Secret writes are judged again, the workers' retries land,
//    everything converges. Bound: the workers' backoff reached during the
//    outage (0.5 s × 2ⁿ: ~8 s after ~10 s down) plus one pass. An outage longer
//    than the 8 attempts (~2 min) leaves those keys in the failed set until the
//    relay's periodic resync (RESYNC_INTERVAL) enqueues them again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertConverged, reportLine, startHarness, statsSince } from './harness.ts';
import { sleep } from '../support/wait.ts';

const CONVERGE_BOUND_S = 45;
const HOOK = 'secrets.kreconcile.example.com';

test('6: webhook stopped with failurePolicy Fail: Secret writes refused clearly, the rest goes on, all converges when it returns', async (t) => {
  const h = await startHarness({ workers: 0, webhook: true, resyncInterval: '10m' });
  try {
    const d = h.driver;
    // Secrets stored before the policy existed: weak, and nobody has audited them yet.
    d.weakShare = 1;
    for (let i = 0; i < 10; i++) assert.ok((await d.step('s.create')).ok, 'a Secret is accepted before the webhook is registered');
    d.weakShare = 0;
    for (let i = 0; i < 5; i++) assert.ok((await d.step('s.create')).ok);
    await h.registerWebhook();

    // Webhook up: a weak password is refused with the webhook's reason.
    d.weakShare = 1;
    const denied = await d.step('s.create');
    assert.equal(denied.ok, false, 'a weak Secret is refused');
    const denial = d.refusals.at(-1)!;
    assert.equal(denial.cls, 'webhook-denied');
    assert.match(denial.message, new RegExp(`admission webhook "${HOOK}" denied the request: .*password`));

    // Webhook down. The workers start now, so the legacy Secrets' audit happens during the outage.
    await h.webhook!.stop();
    const outageStarted = d.snapshot();
    await h.startWorkers(2);
    d.weakShare = 0.5;
    d.start();
    await sleep(6_000);
    await d.stop();
    const outage = statsSince(outageStarted, d.snapshot());
    const outageRefusals = d.refusals.filter((r) => r.cls === 'webhook-unreachable');
    assert.equal(outage.byOp['s.create'] ?? 0, 0, 'no Secret created while the webhook is down');
    assert.equal(outage.byOp['s.update'] ?? 0, 0, 'no Secret updated while the webhook is down');
    assert.ok(outageRefusals.length > 5, `Secret writes were refused (${outageRefusals.length})`);
    for (const r of outageRefusals) {
      assert.match(r.op, /^s\.(create|update)$/);
      assert.match(r.message, new RegExp(`failed calling webhook "${HOOK}"`));
    }
    assert.ok((outage.byOp['ct.create'] ?? 0) + (outage.byOp['ct.update'] ?? 0) > 10, `CronTab writes went on (${JSON.stringify(outage.byOp)})`);
    assert.deepEqual(Object.keys(outage.refused), ['webhook-unreachable'], 'nothing but Secret writes was refused');

    // Nothing else breaks: CronTabs converge while the webhook is still down …
    const cronTabsDuringOutage = await h.waitConverged(30_000, { only: { cronTabs: true } });
    assert.deepEqual(cronTabsDuringOutage.result.wrong, [], 'CronTabs converge while the webhook is down');
    // … while the legacy weak Secrets cannot be annotated yet: the outage really blocked the workers.
    const secretsDuringOutage = await h.check({ secrets: true });
    assert.ok(secretsDuringOutage.wrong.some((w) => w.endsWith('weak but not annotated')), 'weak Secrets wait for the webhook');

    // Webhook back.
    await h.startWebhook();
    const backAt = Date.now();
    const wrongAtReturn = (await h.check()).wrong.length;
    const back = d.snapshot();
    d.start();
    await sleep(4_000);
    await d.stop();
    const after = statsSince(back, d.snapshot());
    assert.ok((after.byOp['s.create'] ?? 0) + (after.byOp['s.update'] ?? 0) > 0, 'Secret writes are accepted again');
    assert.ok(!after.refused['webhook-unreachable'], 'no more "failed calling webhook"');
    const waited = await h.waitConverged(CONVERGE_BOUND_S * 1000);
    // Timed from the webhook's return (the stream after it included), not from the stream's end.
    const conv = { ...waited, seconds: (Date.now() - backAt) / 1000, wrongAtStart: wrongAtReturn };

    // No refusal ever carried a password.
    for (const r of d.refusals) for (const p of d.passwordsWritten) assert.ok(!r.message.includes(p), `a refusal message contains a password (${r.cls})`);

    t.diagnostic(
      reportLine('webhook-down', h, conv, {
        secretWritesRefusedWhileDown: outageRefusals.length,
        cronTabWritesWhileDown: (outage.byOp['ct.create'] ?? 0) + (outage.byOp['ct.update'] ?? 0) + (outage.byOp['ct.delete'] ?? 0),
        cronTabsConvergedWhileDownSeconds: Number(cronTabsDuringOutage.seconds.toFixed(1)),
        weakDeniedAfter: after.refused['webhook-denied'] ?? 0,
      }),
    );
    assertConverged(h, conv, CONVERGE_BOUND_S);
  } finally {
    await h.stop();
  }
});
