// The password policy for Secrets, shared by the webhook (deny at write time) and
// the worker (audit or enforce on stored Secrets), so both apply the same rules.
//
// Never put a password into a result, a message, a log line or an error: results
// name the key and the rule, nothing else. Callers may log results as they are.
import { dictionary } from '@zxcvbn-ts/language-common';
import { schemas, type ConfigOf, type OptionTable } from './config.ts';

export const DEFAULT_MIN_PASSWORD_LENGTH = 10;
export const DEFAULT_PASSWORD_KEYS: readonly string[] = ['password'];
/** Secret types that carry a password; others (TLS, tokens, registry auth) are not checked. */
export const PASSWORD_SECRET_TYPES: readonly string[] = ['Opaque', 'kubernetes.io/basic-auth'];

export interface PasswordPolicy {
  /** Minimum length in characters (Unicode code points), not bytes. */
  readonly minLength: number;
  /** Keys of `data`/`stringData` that hold a password. */
  readonly keys: readonly string[];
}

export const defaultPasswordPolicy: PasswordPolicy = Object.freeze({
  minLength: DEFAULT_MIN_PASSWORD_LENGTH,
  keys: DEFAULT_PASSWORD_KEYS,
});

/** The policy's options, shared by every role that applies it (webhook, worker), so they read the same variables. */
export const passwordPolicyOptions = {
  passwordMinLength: {
    env: 'PASSWORD_MIN_LENGTH',
    flag: 'password-min-length',
    help: `minimum password length in characters (default ${DEFAULT_MIN_PASSWORD_LENGTH})`,
    schema: schemas.positiveInt(DEFAULT_MIN_PASSWORD_LENGTH),
  },
  passwordKeys: {
    env: 'PASSWORD_KEYS',
    flag: 'password-keys',
    help: `comma-separated Secret keys holding a password (default ${DEFAULT_PASSWORD_KEYS.join(',')})`,
    schema: schemas.list([...DEFAULT_PASSWORD_KEYS]),
  },
} satisfies OptionTable;

/** The policy from loaded configuration (see passwordPolicyOptions). */
export function passwordPolicyFrom(config: ConfigOf<typeof passwordPolicyOptions>): PasswordPolicy {
  return Object.freeze({ minLength: config.passwordMinLength, keys: Object.freeze([...config.passwordKeys]) });
}

export type PasswordRule = 'min-length' | 'well-known' | 'undecodable';

/** A broken rule, as safe to show or log as the key name itself. */
export interface PasswordViolation {
  key: string;
  rule: PasswordRule;
  message: string;
}

export interface PasswordFinding {
  violations: PasswordViolation[];
  /** Passed, but close to failing. */
  warnings: string[];
}

// Well-known passwords: the ~49,000-entry list of the zxcvbn-ts project (built
// from leaked-password frequency data and kept up to date there), lower case.
// Loaded once, on first use, so importing this module stays cheap.
let wellKnown: ReadonlySet<string> | undefined;
function wellKnownPasswords(): ReadonlySet<string> {
  return (wellKnown ??= new Set(dictionary['passwords-common'].map((p) => p.toLowerCase())));
}

/** The longest entry of the well-known list (20 characters today). */
let longestWellKnown: number | undefined;
function longestWellKnownPassword(): number {
  if (longestWellKnown === undefined) {
    longestWellKnown = 0;
    for (const p of wellKnownPasswords()) longestWellKnown = Math.max(longestWellKnown, p.length);
  }
  return longestWellKnown;
}

/** Is this (lower-cased) password on the well-known list? */
export function isWellKnownPassword(password: string): boolean {
  // Longer than every entry even after NFC (see beyondEveryRule): no need to normalize it.
  if (password.length > 8 * longestWellKnownPassword()) return false;
  return wellKnownPasswords().has(normalize(password).toLowerCase());
}

function normalize(password: string): string {
  // NFC so that "é" typed precomposed or decomposed counts (and matches) the same.
  return password.normalize('NFC');
}

/**
 * Length in characters as NIST SP 800-63B counts them: one per Unicode code point
 * (after NFC normalization), so "pässwörd" is 8, not its 10 UTF-8 bytes.
 */
export function passwordLength(password: string): number {
  return codePointCount(normalize(password));
}

function codePointCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const LETTER_AT = /\p{L}/uy;
function isLetterAt(s: string, index: number): boolean {
  LETTER_AT.lastIndex = index;
  return LETTER_AT.test(s);
}

/**
 * `s` without the non-letters at either end ("dragon" from "2024dragon!!"). One
 * pass from each end: the obvious regex, /^[^\p{L}]+|[^\p{L}]+$/gu, backtracks
 * quadratically on a long run of non-letters between letters, and a Secret may
 * hold megabytes (measured: 0.9 s for 40,000 digits, which blocked the webhook).
 */
export function withoutNonLetterEnds(s: string): string {
  let start = 0;
  while (start < s.length && !isLetterAt(s, start)) start += s.codePointAt(start)! > 0xffff ? 2 : 1;
  let end = s.length;
  while (end > start) {
    // Step back one code point: a low surrogate preceded by a high one is a pair.
    const low = s.charCodeAt(end - 1);
    const width = low >= 0xdc00 && low <= 0xdfff && end - 2 >= start && (s.charCodeAt(end - 2) & 0xfc00) === 0xd800 ? 2 : 1;
    if (isLetterAt(s, end - width)) break;
    end -= width;
  }
  return s.slice(start, end);
}

/** How much longer than the minimum a password must be to earn no length warning. */
const LENGTH_WARNING_MARGIN = 2;

/** Passwords up to this many UTF-16 code units are always judged in full. */
const ALWAYS_JUDGED_LENGTH = 1024;

/**
 * True when a password is so long that it passes every rule whatever NFC makes of
 * it, so it need not be normalized: NFC is quadratic on a long run of combining
 * marks (measured: 2.2 s for 80,000 characters, 90 s for 1 MiB, which blocked the
 * webhook). NFC turns at most four code points into one (ᾇ), and a code point is at
 * most two code units, so a password keeps at least a eighth of its length in
 * characters: past 8 × (minimum + margin) it is long enough without a warning, and
 * far longer than any well-known password.
 */
function beyondEveryRule(password: string, policy: PasswordPolicy): boolean {
  return password.length > Math.max(ALWAYS_JUDGED_LENGTH, 8 * (policy.minLength + LENGTH_WARNING_MARGIN), 8 * longestWellKnownPassword());
}

/** Check one password against the policy. `key` is only used to name it in messages. */
export function checkPassword(password: string, key: string, policy: PasswordPolicy = defaultPasswordPolicy): PasswordFinding {
  const violations: PasswordViolation[] = [];
  const warnings: string[] = [];
  if (beyondEveryRule(password, policy)) return { violations, warnings };
  const normalized = normalize(password);
  const length = codePointCount(normalized);
  if (length < policy.minLength) {
    violations.push({
      key,
      rule: 'min-length',
      message: `password in key "${key}" is shorter than ${policy.minLength} characters (rule min-length)`,
    });
  } else if (length < policy.minLength + LENGTH_WARNING_MARGIN) {
    warnings.push(`password in key "${key}" is barely at the minimum length of ${policy.minLength} characters; use ${policy.minLength + LENGTH_WARNING_MARGIN} or more`);
  }
  const lower = normalized.toLowerCase();
  if (wellKnownPasswords().has(lower)) {
    violations.push({ key, rule: 'well-known', message: `password in key "${key}" is a well-known password (rule well-known)` });
  } else if (length >= policy.minLength) {
    // A well-known word with digits or symbols stuck on ("dragon2024!!!") passes
    // the rules but is among the first guesses of any cracker.
    const core = withoutNonLetterEnds(lower);
    if (core !== lower && core.length >= 4 && wellKnownPasswords().has(core)) {
      warnings.push(`password in key "${key}" is a well-known password with characters added`);
    }
  }
  return { violations, warnings };
}

/** Where a password was read from. Never carries the value outside this module's callers. */
export interface SecretPassword {
  key: string;
  source: 'data' | 'stringData';
  value: string;
}

export interface SecretPasswords {
  /** False when the Secret's type carries no password (then nothing is checked). */
  applies: boolean;
  type: string;
  passwords: SecretPassword[];
  /** Keys present in `data` whose value is not base64 (cannot be checked: a violation). */
  undecodable: string[];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const utf8 = new TextDecoder('utf-8');

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Read the password(s) out of a Secret, decoding once so no rule sees base64:
 * `data` values are base64, `stringData` values plain. When a key is in both,
 * `stringData` wins, as the API server merges it over `data` on write. A missing
 * `type` is `Opaque`, as the API server defaults it. Accepts any JSON (an
 * AdmissionReview's object is untrusted input): anything malformed is skipped or
 * reported, never thrown.
 */
export function readSecretPasswords(secret: unknown, keys: readonly string[] = DEFAULT_PASSWORD_KEYS): SecretPasswords {
  const s = isRecord(secret) ? secret : {};
  const type = typeof s.type === 'string' && s.type !== '' ? s.type : 'Opaque';
  const out: SecretPasswords = { applies: PASSWORD_SECRET_TYPES.includes(type), type, passwords: [], undecodable: [] };
  if (!out.applies) return out;
  const data = isRecord(s.data) ? s.data : {};
  const stringData = isRecord(s.stringData) ? s.stringData : {};
  for (const key of keys) {
    const plain = Object.hasOwn(stringData, key) ? stringData[key] : undefined;
    if (typeof plain === 'string') {
      out.passwords.push({ key, source: 'stringData', value: plain });
      continue;
    }
    if (!Object.hasOwn(data, key)) continue;
    const encoded = data[key];
    if (typeof encoded !== 'string' || !BASE64.test(encoded)) {
      out.undecodable.push(key);
      continue;
    }
    out.passwords.push({ key, source: 'data', value: utf8.decode(Buffer.from(encoded, 'base64')) });
  }
  return out;
}

export interface SecretVerdict extends PasswordFinding {
  /** False when the Secret's type or keys carry no password: nothing was checked. */
  checked: boolean;
  /** Keys that were checked (never their values). */
  keys: string[];
}

/** Read and check every password in a Secret. Empty `violations` = allowed. */
export function evaluateSecret(secret: unknown, policy: PasswordPolicy = defaultPasswordPolicy): SecretVerdict {
  const read = readSecretPasswords(secret, policy.keys);
  const verdict: SecretVerdict = { checked: false, keys: [], violations: [], warnings: [] };
  if (!read.applies) return verdict;
  for (const key of read.undecodable) {
    verdict.violations.push({ key, rule: 'undecodable', message: `value of key "${key}" in data is not valid base64 (rule undecodable)` });
  }
  for (const p of read.passwords) {
    const finding = checkPassword(p.value, p.key, policy);
    verdict.violations.push(...finding.violations);
    verdict.warnings.push(...finding.warnings);
  }
  verdict.keys = [...read.passwords.map((p) => p.key), ...read.undecodable];
  verdict.checked = verdict.keys.length > 0;
  return verdict;
}
