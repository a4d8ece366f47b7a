// Secrets: the password policy from services/common, applied at write time.
import { evaluateSecret, readSecretPasswords, type PasswordPolicy } from '../../common/password-policy.ts';
import type { AdmissionRequest, Decision } from '../review.ts';

export function validateSecret(request: AdmissionRequest, policy: PasswordPolicy): Decision {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  const verdict = evaluateSecret(request.object, policy);
  let violations = verdict.violations;
  const warnings = [...verdict.warnings];

  // An update that leaves a password as it was is not judged on it: otherwise a
  // Secret stored before the policy (or before it tightened) could never again
  // get a label, an annotation (the worker's audit mark) or a finalizer removed.
  if (request.operation === 'UPDATE' && violations.length) {
    const before = new Map(readSecretPasswords(request.oldObject, policy.keys).passwords.map((p) => [p.key, p.value]));
    const after = new Map(readSecretPasswords(request.object, policy.keys).passwords.map((p) => [p.key, p.value]));
    const unchanged = (key: string) => before.has(key) && before.get(key) === after.get(key);
    for (const v of violations.filter((x) => unchanged(x.key))) warnings.push(`unchanged ${v.message}`);
    violations = violations.filter((x) => !unchanged(x.key));
  }

  if (violations.length) return { allowed: false, code: 403, message: violations.map((v) => v.message).join('; '), warnings };
  return { allowed: true, warnings };
}
