// Secret password policy: audit (annotate + Warning Event) or enforce (delete,
// with preconditions so a Secret fixed in the meantime is never deleted).
//
// Secret values never leave this file's functions: the assessment keeps only key
// names and rules, and that is all that reaches plans, Events, logs and metrics.
import type { ISecret } from 'kubernetes-models/v1/Secret';
import type { INamespace } from 'kubernetes-models/v1/Namespace';
import { evaluateSecret, type PasswordPolicy, type PasswordViolation } from '../../common/password-policy.ts';
import type { ObjectKey } from '../../common/queue.ts';
import { NAMESPACES, SECRETS } from '../kube.ts';
import { done, type Outcome, type ReconcileContext } from '../outcome.ts';
import type { ObjectRef } from '../events.ts';

export type Secret = ISecret;

/** Annotation (on a weak Secret, value `weak`) and label (on a Secret or Namespace, value `exempt`). */
export const POLICY_KEY = 'kreconcile.io/password-policy';
export const WEAK = 'weak';
export const EXEMPT = 'exempt';

export type SecretPolicyMode = 'audit' | 'enforce';

export interface SecretPolicySettings extends PasswordPolicy {
  mode: SecretPolicyMode;
}

/** What the policy says about a Secret: keys and rules only, never a value. */
export interface Assessment {
  weak: boolean;
  violations: Pick<PasswordViolation, 'key' | 'rule' | 'message'>[];
}

export function assess(secret: Secret, policy: PasswordPolicy): Assessment {
  const verdict = evaluateSecret(secret, policy);
  const violations = verdict.violations.map(({ key, rule, message }) => ({ key, rule, message }));
  return { weak: violations.length > 0, violations };
}

export const isExempt = (obj: { metadata?: { labels?: Record<string, string> } } | undefined): boolean => obj?.metadata?.labels?.[POLICY_KEY] === EXEMPT;
export const isAnnotatedWeak = (secret: Secret): boolean => secret.metadata?.annotations?.[POLICY_KEY] === WEAK;

export type SecretStep =
  | { op: 'none' }
  | { op: 'annotate'; violations: Assessment['violations'] }
  | { op: 'unannotate'; why: 'fixed' | 'exempt' }
  | { op: 'delete'; uid: string; resourceVersion: string; violations: Assessment['violations'] };

/**
 * Pure: what to do with a Secret. `namespaceExempt` is only needed (and only read)
 * when the Secret is weak and not exempt itself; pass undefined otherwise.
 */
export function planSecret(secret: Secret, assessment: Assessment, mode: SecretPolicyMode, namespaceExempt: boolean | undefined): SecretStep {
  const annotated = isAnnotatedWeak(secret);
  const exempt = isExempt(secret) || namespaceExempt === true;
  if (!assessment.weak || exempt) return annotated ? { op: 'unannotate', why: exempt ? 'exempt' : 'fixed' } : { op: 'none' };
  if (mode === 'enforce') return { op: 'delete', uid: secret.metadata!.uid!, resourceVersion: secret.metadata!.resourceVersion!, violations: assessment.violations };
  return annotated ? { op: 'none' } : { op: 'annotate', violations: assessment.violations };
}

/** Whether the Namespace must be read to decide: only for a weak Secret not exempt on its own. */
export function needsNamespace(secret: Secret, assessment: Assessment): boolean {
  return assessment.weak && !isExempt(secret);
}

function secretRef(secret: Secret): ObjectRef {
  const m = secret.metadata!;
  return { apiVersion: 'v1', kind: 'Secret', namespace: m.namespace!, name: m.name!, uid: m.uid, resourceVersion: m.resourceVersion };
}

const describe = (violations: Assessment['violations']): string => violations.map((v) => v.message).join('; ');

export interface SecretReconcileHooks {
  /** Called once per weak Secret acted on (annotated or deleted), with the rule it broke. */
  onWeak?: (rule: string, action: 'annotated' | 'deleted') => void;
}

export async function reconcileSecret(ctx: ReconcileContext, key: ObjectKey, settings: SecretPolicySettings, hooks: SecretReconcileHooks = {}): Promise<Outcome> {
  const secret = await ctx.kube.get<Secret>(SECRETS, key.namespace, key.name);
  if (!secret || secret.metadata?.deletionTimestamp) return done();
  const assessment = assess(secret, settings);
  let namespaceExempt: boolean | undefined;
  if (needsNamespace(secret, assessment)) {
    namespaceExempt = isExempt(await ctx.kube.get<INamespace>(NAMESPACES, undefined, key.namespace));
  }
  const step = planSecret(secret, assessment, settings.mode, namespaceExempt);
  const ref = secretRef(secret);
  // Conditional on the resourceVersion read: if the Secret changed since, the patch is a 409 and the worker re-reads it.
  const rv = secret.metadata!.resourceVersion;
  switch (step.op) {
    case 'none':
      return done();
    case 'annotate':
      await ctx.kube.mergePatch(SECRETS, key.namespace, key.name, { metadata: { resourceVersion: rv, annotations: { [POLICY_KEY]: WEAK } } });
      for (const v of step.violations) hooks.onWeak?.(v.rule, 'annotated');
      await ctx.events.record({ regarding: ref, type: 'Warning', reason: 'WeakPassword', action: 'Annotate', note: `${describe(step.violations)}; annotated ${POLICY_KEY}=${WEAK}` });
      return done([`annotated weak (${step.violations.map((v) => `${v.key}: ${v.rule}`).join(', ')})`]);
    case 'unannotate':
      await ctx.kube.mergePatch(SECRETS, key.namespace, key.name, { metadata: { resourceVersion: rv, annotations: { [POLICY_KEY]: null } } });
      await ctx.events.record({
        regarding: ref,
        type: 'Normal',
        reason: step.why === 'fixed' ? 'PasswordPolicyMet' : 'PasswordPolicyExempt',
        action: 'Annotate',
        note: step.why === 'fixed' ? `password now meets the policy; removed ${POLICY_KEY}` : `exempt from the password policy; removed ${POLICY_KEY}`,
      });
      return done([`annotation removed (${step.why})`]);
    case 'delete':
      await ctx.kube.delete(SECRETS, key.namespace, key.name, { uid: step.uid, resourceVersion: step.resourceVersion });
      for (const v of step.violations) hooks.onWeak?.(v.rule, 'deleted');
      await ctx.events.record({ regarding: ref, type: 'Warning', reason: 'WeakPasswordDeleted', action: 'Delete', note: `deleted Secret ${key.name}: ${describe(step.violations)} (${POLICY_KEY} enforce mode)` });
      return done([`deleted weak (${step.violations.map((v) => `${v.key}: ${v.rule}`).join(', ')})`]);
  }
}
