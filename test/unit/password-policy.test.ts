import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  checkPassword,
  defaultPasswordPolicy,
  evaluateSecret,
  isWellKnownPassword,
  passwordLength,
  readSecretPasswords,
  withoutNonLetterEnds,
} from '../../services/common/password-policy.ts';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const secret = (fields: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' }, ...fields });
const STRONG = 'tangerine-violin-47-Orbit';

describe('checkPassword', () => {
  test('a password exactly at the minimum length passes the length rule', () => {
    const f = checkPassword('k7#Qz!m2Rw', 'password'); // 10 characters
    assert.deepEqual(f.violations, []);
  });

  test('one character short of the minimum is denied by min-length', () => {
    const f = checkPassword('k7#Qz!m2R', 'password');
    assert.deepEqual(f.violations.map((v) => v.rule), ['min-length']);
    assert.match(f.violations[0]!.message, /key "password".*shorter than 10 characters/);
  });

  test('length counts characters, not bytes: 10 multi-byte characters pass, 9 fail', () => {
    const ten = 'ñößçøéüłžå'; // 10 code points, 20 UTF-8 bytes
    assert.equal(Buffer.byteLength(ten), 20);
    assert.equal(passwordLength(ten), 10);
    assert.deepEqual(checkPassword(ten, 'password').violations, []);
    assert.deepEqual(checkPassword('🔑🔒🗝️🔐🛡'.slice(0, 8), 'password').violations.map((v) => v.rule), ['min-length']);
    assert.equal(passwordLength('😀😀😀😀😀😀😀😀😀😀'), 10); // astral characters are one each, not two UTF-16 units
  });

  test('precomposed and decomposed accents count the same', () => {
    assert.equal(passwordLength('e\u0301'.repeat(10)), passwordLength('\u00e9'.repeat(10)));
    assert.equal(passwordLength('e\u0301'.repeat(10)), 10);
  });

  test('the empty password is denied', () => {
    assert.deepEqual(checkPassword('', 'password').violations.map((v) => v.rule), ['min-length']);
  });

  test('a well-known password is denied even when long enough, case-insensitively', () => {
    assert.ok(isWellKnownPassword('qwertyuiop'));
    for (const pw of ['qwertyuiop', 'PASSWORD123', 'Basketball']) {
      const f = checkPassword(pw, 'password');
      assert.deepEqual(f.violations.map((v) => v.rule), ['well-known'], pw);
    }
  });

  test('a short well-known password breaks both rules', () => {
    assert.deepEqual(checkPassword('hunter2', 'password').violations.map((v) => v.rule).sort(), ['min-length', 'well-known']);
  });

  test('a strong password passes without warnings', () => {
    assert.deepEqual(checkPassword(STRONG, 'password'), { violations: [], warnings: [] });
  });

  test('close to failing earns a warning, not a denial', () => {
    const atMin = checkPassword('k7#Qz!m2Rw', 'password');
    assert.equal(atMin.violations.length, 0);
    assert.match(atMin.warnings[0]!, /barely at the minimum length/);
    const padded = checkPassword('dragon2024!!', 'password');
    assert.equal(padded.violations.length, 0);
    assert.match(padded.warnings.join(), /well-known password with characters added/);
  });

  test('the minimum length is configurable', () => {
    assert.deepEqual(checkPassword(STRONG, 'pw', { ...defaultPasswordPolicy, minLength: 40 }).violations.map((v) => v.rule), ['min-length']);
    assert.deepEqual(checkPassword('xq7!', 'pw', { ...defaultPasswordPolicy, minLength: 4 }).violations, []);
  });

  test('no message ever contains the password', () => {
    for (const pw of ['hunter2', 'qwertyuiop', 'dragon2024!!', 'k7#Qz!m2Rw', 'zq']) {
      const f = checkPassword(pw, 'password');
      for (const m of [...f.violations.map((v) => v.message), ...f.warnings]) assert.ok(!m.includes(pw), `${m} leaks`);
    }
  });
});

describe('readSecretPasswords', () => {
  test('decodes data from base64', () => {
    const r = readSecretPasswords(secret({ type: 'Opaque', data: { password: b64('pässwörd') } }));
    assert.deepEqual(r.passwords, [{ key: 'password', source: 'data', value: 'pässwörd' }]);
  });

  test('reads stringData as plain text, and it wins over data for the same key', () => {
    const only = readSecretPasswords(secret({ stringData: { password: 'plain' } }));
    assert.deepEqual(only.passwords, [{ key: 'password', source: 'stringData', value: 'plain' }]);
    const both = readSecretPasswords(secret({ data: { password: b64('old') }, stringData: { password: 'new' } }));
    assert.deepEqual(both.passwords.map((p) => p.value), ['new']);
  });

  test('a missing type means Opaque; basic-auth is checked; other types are not', () => {
    assert.equal(readSecretPasswords(secret({ data: { password: b64('x') } })).applies, true);
    assert.equal(readSecretPasswords(secret({ type: 'kubernetes.io/basic-auth', data: { password: b64('x') } })).passwords.length, 1);
    const tls = readSecretPasswords(secret({ type: 'kubernetes.io/tls', data: { password: b64('x') } }));
    assert.equal(tls.applies, false);
    assert.equal(tls.passwords.length, 0);
  });

  test('a missing key yields nothing to check', () => {
    assert.deepEqual(readSecretPasswords(secret({ data: { username: b64('admin') } })).passwords, []);
  });

  test('the key list is configurable', () => {
    const r = readSecretPasswords(secret({ data: { password: b64('a'), 'db-pass': b64('b') }, stringData: { PASS: 'c' } }), ['db-pass', 'PASS']);
    assert.deepEqual(r.passwords.map((p) => `${p.key}:${p.value}`), ['db-pass:b', 'PASS:c']);
  });

  test('malformed input never throws', () => {
    for (const junk of [null, undefined, 42, 'x', [], { data: 'nope' }, { data: { password: 7 } }, { type: 5, stringData: [] }, { data: { password: '***' } }]) {
      assert.doesNotThrow(() => readSecretPasswords(junk));
    }
    assert.deepEqual(readSecretPasswords({ data: { password: 'not base64!' } }).undecodable, ['password']);
  });
});

describe('evaluateSecret', () => {
  test('denies a weak data password, naming rule and key but not the value', () => {
    const v = evaluateSecret(secret({ data: { password: b64('xq7!b') } }));
    assert.equal(v.checked, true);
    assert.deepEqual(v.violations.map((x) => [x.key, x.rule]), [['password', 'min-length']]);
    assert.ok(!JSON.stringify(v).includes('xq7!b'));
  });

  test('allows a strong stringData-only password', () => {
    const v = evaluateSecret(secret({ stringData: { password: STRONG } }));
    assert.deepEqual(v, { checked: true, keys: ['password'], violations: [], warnings: [] });
  });

  test('basic-auth with a well-known password is denied', () => {
    const v = evaluateSecret(secret({ type: 'kubernetes.io/basic-auth', stringData: { username: 'admin', password: 'iloveyou123' } }));
    assert.deepEqual(v.violations.map((x) => x.rule), ['well-known']);
  });

  test('the empty password in data is denied', () => {
    assert.deepEqual(evaluateSecret(secret({ data: { password: '' } })).violations.map((x) => x.rule), ['min-length']);
  });

  test('a Secret without the key, or of another type, is not checked', () => {
    assert.equal(evaluateSecret(secret({ data: { token: b64('x') } })).checked, false);
    assert.equal(evaluateSecret(secret({ type: 'kubernetes.io/dockerconfigjson', data: { password: b64('x') } })).checked, false);
  });

  test('undecodable data fails closed', () => {
    assert.deepEqual(evaluateSecret(secret({ data: { password: '%%%' } })).violations.map((x) => x.rule), ['undecodable']);
  });
});

describe('passwordPolicyOptions', () => {
  test('defaults to 10 characters and the key "password"; the environment overrides both', async () => {
    const { loadConfig } = await import('../../services/common/config.ts');
    const { passwordPolicyOptions, passwordPolicyFrom } = await import('../../services/common/password-policy.ts');
    assert.deepEqual(passwordPolicyFrom(loadConfig(passwordPolicyOptions, {})), { minLength: 10, keys: ['password'] });
    const p = passwordPolicyFrom(loadConfig(passwordPolicyOptions, { PASSWORD_MIN_LENGTH: '14', PASSWORD_KEYS: 'password, db-password' }));
    assert.deepEqual(p, { minLength: 14, keys: ['password', 'db-password'] });
    assert.throws(() => loadConfig(passwordPolicyOptions, { PASSWORD_MIN_LENGTH: '0' }), /PASSWORD_MIN_LENGTH/);
  });
});

describe('withoutNonLetterEnds', () => {
  test('strips what the plain regex strips, on any string (surrogate pairs and lone surrogates included)', () => {
    const char = fc.oneof(fc.constantFrom('a', 'Z', 'é', '7', '!', ' ', '𝒜', '😀', '\ud800', '\udc00', 'ß', '字'), fc.string({ unit: 'grapheme', maxLength: 1 }));
    fc.assert(
      fc.property(fc.array(char, { maxLength: 12 }), (chars) => {
        const s = chars.join('');
        assert.equal(withoutNonLetterEnds(s), s.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, ''));
      }),
      { numRuns: 2000 },
    );
  });

  test('is linear: 3 MB of digits between two letters is judged (the regex needed hours)', { timeout: 30_000 }, () => {
    const huge = 'a' + '7'.repeat(3 * 1024 * 1024) + 'a';
    assert.equal(withoutNonLetterEnds(huge), huge);
    const finding = checkPassword(huge, 'password');
    assert.deepEqual(finding.violations, []);
    const found = evaluateSecret(secret({ stringData: { password: '!' + huge + '!' } }));
    assert.deepEqual(found.violations, []);
  });
});

describe('very long passwords', () => {
  test('a megabyte of mixed combining marks is judged at once (NFC alone took 90 s) and passes', { timeout: 30_000 }, () => {
    const k = 512 * 1024;
    const found = evaluateSecret(secret({ stringData: { password: 'a' + '\u0301'.repeat(k) + '\u0316'.repeat(k) } }));
    assert.deepEqual(found.violations, []);
    assert.deepEqual(found.warnings, []);
    assert.equal(isWellKnownPassword('p' + '\u0301'.repeat(k) + '\u0316'.repeat(k)), false);
  });

  test('the shortcut is sound: past 8 × (minimum + margin) code units, NFC still leaves enough characters', () => {
    // The sequences NFC shrinks most: four code points to one (ᾇ), three to one (Hangul), pairs.
    const shrinking = ['\u03b1\u0314\u0342\u0345', '\u1100\u1161\u11a8', 'e\u0301', 'A\u030a', '\u{1d15e}', 'x'];
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.array(fc.constantFrom(...shrinking), { minLength: 1, maxLength: 20 }), (minLength, parts) => {
        const bound = Math.max(1024, 8 * (minLength + 2), 8 * 20);
        let pw = '';
        for (let i = 0; pw.length <= bound; i++) pw += parts[i % parts.length];
        assert.ok(passwordLength(pw) >= minLength + 2, `${pw.length} code units gave ${passwordLength(pw)} characters`);
        // And the long password is allowed without warnings, as the full check would say.
        assert.deepEqual(checkPassword(pw, 'password', { minLength, keys: ['password'] }), { violations: [], warnings: [] });
      }),
      { numRuns: 300 },
    );
  });
});
