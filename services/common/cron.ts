// Cron schedule and time-zone rules for CronTabs, shared by the webhook (deny at
// write time) and the worker (mark the CronTab invalid instead of retrying).
//
// What is accepted is what a batch/v1 CronJob accepts, because the worker copies
// `spec.cronSpec` verbatim into the CronJob's `schedule`: the Kubernetes API
// server parses schedules with robfig/cron's ParseStandard, which takes
//   - exactly five fields (minute hour day-of-month month day-of-week), with
//     numbers, `*`, `?` (day fields), lists, ranges, steps, and month/day names;
//   - the descriptors @yearly @annually @monthly @weekly @daily @midnight @hourly.
// We deliberately refuse:
//   - six- or seven-field forms (seconds, years): CronJob rejects them;
//   - cron-parser's own extensions (L, W, #, H, @minutely, @secondly, @weekdays,
//     @weekends) and day-of-week 7: CronJob rejects them;
//   - `@every <duration>`: an interval, not a calendar schedule, and not something
//     a cron parser can check; write it as a step expression instead;
//   - `TZ=`/`CRON_TZ=` prefixes: CronJob forbids them; `spec.timeZone` is the field;
//   - dates that never occur (e.g. `0 0 30 2 *`): CronJob would accept them and
//     silently never run, which is never what the author meant.
// Parsing itself is cron-parser's; the checks here only narrow it to that subset.
import { CronExpressionParser } from 'cron-parser';
import { clip, quoted } from './bounded.ts';

export type Check = { ok: true } | { ok: false; message: string };

/** Descriptors CronJob accepts, mapped to what cron-parser understands. */
const DESCRIPTORS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

const FIELD_NAMES = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const;
const MONTH_NAMES = /jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec/gi;
const DAY_NAMES = /sun|mon|tue|wed|thu|fri|sat/gi;
// The standard alphabet; anything else (L, W, #, H, …) is a cron-parser extension.
const STANDARD_FIELD = /^[0-9*?,/-]+$/;

/** Is `expression` a schedule a Kubernetes CronJob accepts (see the file comment)? */
export function validateCronSpec(expression: unknown): Check {
  if (typeof expression !== 'string') return { ok: false, message: 'must be a string' };
  const trimmed = expression.trim();
  if (trimmed === '') return { ok: false, message: 'must not be empty' };
  if (/^(CRON_)?TZ=/i.test(trimmed)) return { ok: false, message: 'must not set TZ or CRON_TZ; use spec.timeZone' };

  let fiveFields: string;
  if (trimmed.startsWith('@')) {
    const macro = DESCRIPTORS[trimmed.toLowerCase()];
    if (!macro) {
      return { ok: false, message: `unsupported descriptor ${quoted(trimmed)}; use five fields or one of ${Object.keys(DESCRIPTORS).join(', ')}` };
    }
    fiveFields = macro;
  } else {
    const fields = trimmed.split(/\s+/);
    if (fields.length !== 5) {
      return { ok: false, message: `must have 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}` };
    }
    for (let i = 0; i < 5; i++) {
      const field = fields[i]!;
      const withoutNames = i === 3 ? field.replace(MONTH_NAMES, '1') : i === 4 ? field.replace(DAY_NAMES, '1') : field;
      if (!STANDARD_FIELD.test(withoutNames)) {
        return { ok: false, message: `${FIELD_NAMES[i]} field ${quoted(field)} has characters a CronJob does not accept` };
      }
      if (field.includes('?') && i !== 2 && i !== 4) {
        return { ok: false, message: `${FIELD_NAMES[i]} field ${quoted(field)}: "?" is only allowed in the day fields` };
      }
      // robfig/cron reads numbers as Go int64s and refuses larger ones, while cron-parser
      // turns them into Infinity and may accept them (as a step). Refused here from 19
      // significant digits on, a little before int64's limit: no schedule needs them.
      if (field.split(/\D+/).some((digits) => digits.replace(/^0+/, '').length > 18)) {
        return { ok: false, message: `${FIELD_NAMES[i]} field ${quoted(field)}: number too large` };
      }
      // CronJob's day of week is 0–6; cron-parser would also take 7 as Sunday.
      if (i === 4 && /(^|[^/\d])7/.test(withoutNames)) {
        return { ok: false, message: `day of week field ${quoted(field)}: values are 0-6 (Sunday is 0)` };
      }
    }
    fiveFields = fields.join(' ');
  }

  return parseSchedule(fiveFields);
}

// cron-parser builds luxon dates for every parse, the largest part of a worker's
// reconcile when schedules repeat (every resync, every image change). The answer
// depends only on the string, so it is remembered, in a bounded map.
const parsedSchedules = new Map<string, Check>();
const PARSED_SCHEDULES_MAX = 10_000;
// Real schedules are short; a longer one is parsed each time rather than letting
// a few thousand megabyte-long rejects fill the cache (the map bounds the count, not the size).
const CACHED_SCHEDULE_MAX_LENGTH = 256;

function parseSchedule(fiveFields: string): Check {
  let check = parsedSchedules.get(fiveFields);
  if (!check) {
    try {
      CronExpressionParser.parse(fiveFields, { tz: 'UTC' });
      check = { ok: true };
    } catch (err) {
      check = { ok: false, message: `not a valid cron expression: ${clip((err as Error).message, 256)}` };
    }
    if (fiveFields.length > CACHED_SCHEDULE_MAX_LENGTH) return check;
    if (parsedSchedules.size >= PARSED_SCHEDULES_MAX) parsedSchedules.clear();
    parsedSchedules.set(fiveFields, Object.freeze(check));
  }
  return check;
}

const ZONE_NAME = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/;
let canonicalZones: ReadonlySet<string> | undefined;

/**
 * Is `zone` an IANA time zone name (e.g. "Europe/Paris", "UTC", "US/Eastern")?
 * Offsets ("+01:00"), "Local" and wrong case ("europe/paris") are refused, as
 * CronJob refuses them. Known gap: an alias in the wrong case ("us/eastern")
 * passes, because Intl resolves aliases case-insensitively.
 */
export function validateTimeZone(zone: unknown): Check {
  if (typeof zone !== 'string') return { ok: false, message: 'must be a string' };
  if (zone === '') return { ok: false, message: 'must be a non-empty IANA time zone name, or unset' };
  if (zone.toLowerCase() === 'local') return { ok: false, message: 'must be an explicit IANA time zone, not "Local"' };
  if (!ZONE_NAME.test(zone) || zone.split('/').some((part) => part.startsWith('-'))) {
    return { ok: false, message: `${quoted(zone)} is not an IANA time zone name` };
  }
  canonicalZones ??= new Set(Intl.supportedValuesOf('timeZone'));
  if (canonicalZones.has(zone)) return { ok: true };
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en', { timeZone: zone }).resolvedOptions().timeZone;
  } catch {
    return { ok: false, message: `${quoted(zone)} is not a known IANA time zone` };
  }
  if (resolved !== zone && resolved.toLowerCase() === zone.toLowerCase()) {
    return { ok: false, message: `${quoted(zone)} is not a known IANA time zone (names are case-sensitive: "${resolved}")` };
  }
  return { ok: true };
}

/** One problem in a CronTab's spec, named by its field path. */
export interface FieldProblem {
  field: string;
  message: string;
}

/**
 * Every rule kreconcile puts on a CronTab's spec: `cronSpec` a CronJob schedule,
 * `timeZone` (when set) an IANA zone, `replicas` (when set) an integer ≥ 1, and
 * `image` a non-empty string. Empty result = valid.
 */
export function cronTabSpecProblems(spec: unknown): FieldProblem[] {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    return [{ field: 'spec', message: 'Required value: spec must be an object' }];
  }
  const s = spec as Record<string, unknown>;
  const problems: FieldProblem[] = [];
  if (s.cronSpec === undefined) problems.push({ field: 'spec.cronSpec', message: 'Required value' });
  else {
    const c = validateCronSpec(s.cronSpec);
    if (!c.ok) problems.push({ field: 'spec.cronSpec', message: c.message });
  }
  if (s.timeZone !== undefined && s.timeZone !== null) {
    const z = validateTimeZone(s.timeZone);
    if (!z.ok) problems.push({ field: 'spec.timeZone', message: z.message });
  }
  if (s.replicas !== undefined && s.replicas !== null && !(Number.isInteger(s.replicas) && (s.replicas as number) >= 1)) {
    problems.push({ field: 'spec.replicas', message: 'must be an integer ≥ 1' });
  }
  if (s.image === undefined) problems.push({ field: 'spec.image', message: 'Required value' });
  else if (typeof s.image !== 'string' || s.image.trim() === '') problems.push({ field: 'spec.image', message: 'must be a non-empty string' });
  return problems;
}
