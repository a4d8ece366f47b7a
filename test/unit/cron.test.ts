import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cronTabSpecProblems, validateCronSpec, validateTimeZone } from '../../services/common/cron.ts';

describe('validateCronSpec', () => {
  const accepted = [
    '*/5 * * * *',
    '0 0 * * *',
    '0 9-17 * * 1-5',
    '15,45 */2 1-15 * *',
    '0 0 ? * MON-FRI',
    '0 0 1 jan,jul *',
    '0 0 * * sun',
    '  30 4 * * 0  ',
    '0\t0\t* * *',
    '@hourly',
    '@daily',
    '@midnight',
    '@weekly',
    '@monthly',
    '@yearly',
    '@annually',
    '@HOURLY',
    '*/7 * * * *',
  ];
  for (const expr of accepted) {
    test(`accepts ${JSON.stringify(expr)}`, () => assert.deepEqual(validateCronSpec(expr), { ok: true }));
  }

  const refused: Array<[string, RegExp]> = [
    ['* * * *', /5 fields.*got 4/],
    ['0 * * * * *', /5 fields.*got 6/],
    ['0 0 0 1 1 * 2030', /got 7/],
    ['60 * * * *', /not a valid cron expression/],
    ['* 24 * * *', /not a valid cron expression/],
    ['*/0 * * * *', /not a valid cron expression/],
    ['5-1 * * * *', /not a valid cron expression/],
    ['0 0 30 2 *', /not a valid cron expression/],
    ['0 0 L * *', /day of month field "L"/],
    ['0 0 1W * *', /day of month field/],
    ['0 0 * * 1#2', /day of week field/],
    ['H * * * *', /minute field/],
    ['0 0 * * 7', /0-6/],
    ['0 0 * * 1-7', /0-6/],
    ['? * * * *', /only allowed in the day fields/],
    ['a b c d e', /minute field/],
    ['@every 5m', /unsupported descriptor/],
    ['@minutely', /unsupported descriptor/],
    ['@weekdays', /unsupported descriptor/],
    ['TZ=UTC 0 0 * * *', /spec.timeZone/],
    ['CRON_TZ=Europe/Paris 0 0 * * *', /spec.timeZone/],
    ['', /empty/],
    ['   ', /empty/],
  ];
  for (const [expr, why] of refused) {
    test(`refuses ${JSON.stringify(expr)}`, () => {
      const r = validateCronSpec(expr);
      assert.equal(r.ok, false);
      assert.match((r as { message: string }).message, why);
    });
  }

  test('refuses non-strings', () => {
    for (const v of [undefined, null, 5, {}, ['* * * * *']]) assert.equal(validateCronSpec(v).ok, false);
  });

  test('a number robfig/cron cannot read (19 digits or more) is refused, though cron-parser takes it as a step', () => {
    assert.deepEqual(validateCronSpec(`*/${'1'.repeat(18)} * * * *`), { ok: true });
    assert.deepEqual(validateCronSpec(`*/${'0'.repeat(30)}5 * * * *`), { ok: true }, 'leading zeros are not digits that count');
    assert.equal(validateCronSpec(`*/1${'0'.repeat(18)} * * * *`).ok, false);
    const r = validateCronSpec(`*/1${'0'.repeat(1000)} * * * *`);
    assert.equal(r.ok, false);
    assert.match((r as { message: string }).message, /^minute field .*: number too large$/);
  });

  test('a megabyte-long field is named by its start and length, not echoed whole', () => {
    for (const expr of [`${'x'.repeat(1 << 20)} * * * *`, `@${'x'.repeat(1 << 20)}`, `1-${'9'.repeat(1 << 20)} * * * *`]) {
      const r = validateCronSpec(expr);
      assert.equal(r.ok, false);
      const message = (r as { message: string }).message;
      assert.ok(message.length < 400, `message of ${message.length} characters`);
    }
    const r = validateCronSpec(`${'x'.repeat(100)} * * * *`) as { message: string };
    assert.equal(r.message, `minute field "${'x'.repeat(64)}…" (100 characters) has characters a CronJob does not accept`);
  });
});

describe('validateTimeZone', () => {
  for (const zone of ['UTC', 'Etc/UTC', 'Europe/Paris', 'America/Argentina/Buenos_Aires', 'America/Port-au-Prince', 'US/Eastern', 'Etc/GMT+5', 'Asia/Kolkata']) {
    test(`accepts ${zone}`, () => assert.deepEqual(validateTimeZone(zone), { ok: true }));
  }
  for (const [zone, why] of [
    ['', /non-empty/],
    ['Local', /Local/],
    ['Mars/Olympus_Mons', /not a known/],
    ['+01:00', /not an IANA/],
    ['europe/paris', /case-sensitive: "Europe\/Paris"/],
    ['../etc/passwd', /not an IANA/],
    ['Europe/-Paris', /not an IANA/],
    [`Europe/${'P'.repeat(1 << 20)}`, /^"Europe\/P{57}…" \(1048583 characters\) is not a known IANA time zone$/],
  ] as const) {
    test(`refuses ${JSON.stringify(zone)}`, () => {
      const r = validateTimeZone(zone);
      assert.equal(r.ok, false);
      assert.match((r as { message: string }).message, why);
    });
  }
});

describe('cronTabSpecProblems', () => {
  test('a valid spec has no problems', () => {
    assert.deepEqual(cronTabSpecProblems({ cronSpec: '*/5 * * * *', image: 'busybox', replicas: 1, timeZone: 'Europe/Paris' }), []);
    assert.deepEqual(cronTabSpecProblems({ cronSpec: '@daily', image: 'busybox' }), []);
  });

  test('names every bad field', () => {
    const p = cronTabSpecProblems({ cronSpec: 'every minute', image: '', replicas: 0, timeZone: 'Nowhere/Land' });
    assert.deepEqual(p.map((x) => x.field), ['spec.cronSpec', 'spec.timeZone', 'spec.replicas', 'spec.image']);
  });

  test('replicas must be an integer of at least 1', () => {
    for (const r of [0, -1, 1.5, '2', true]) {
      assert.deepEqual(cronTabSpecProblems({ cronSpec: '* * * * *', image: 'x', replicas: r }).map((x) => x.field), ['spec.replicas'], String(r));
    }
  });

  test('missing spec or cronSpec is reported as required', () => {
    assert.deepEqual(cronTabSpecProblems(undefined).map((x) => x.field), ['spec']);
    assert.match(cronTabSpecProblems({ image: 'x' })[0]!.message, /Required/);
  });
});
