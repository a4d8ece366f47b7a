// CronTabs: the schedule, time zone and replicas rules from services/common.
import { cronTabSpecProblems } from '../../common/cron.ts';
import type { AdmissionRequest, Decision } from '../review.ts';

function specOf(obj: unknown): unknown {
  return obj !== null && typeof obj === 'object' ? (obj as { spec?: unknown }).spec : undefined;
}

function fieldValue(spec: unknown, field: string): unknown {
  const name = field.startsWith('spec.') ? field.slice(5) : undefined;
  if (name === undefined) return spec;
  return spec !== null && typeof spec === 'object' ? (spec as Record<string, unknown>)[name] : undefined;
}

/** Equal as JSON; a value too deeply nested to serialise (direct callers only: the API server's schema stops it) counts as changed. */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
}

export function validateCronTab(request: AdmissionRequest): Decision {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  // Status writes come from the worker, often to report an invalid spec: never block them.
  if (request.subResource !== '') return { allowed: true };
  const spec = specOf(request.object);
  let problems = cronTabSpecProblems(spec);
  const warnings: string[] = [];

  // Ratchet as the API server does for CRD validation: a field left as it was is
  // not a reason to refuse, so an old invalid CronTab can still be relabelled,
  // have its finalizers removed, or be fixed one field at a time.
  if (request.operation === 'UPDATE' && problems.length) {
    const oldSpec = specOf(request.oldObject);
    const unchanged = (field: string) => oldSpec !== undefined && sameJson(fieldValue(spec, field), fieldValue(oldSpec, field));
    for (const p of problems.filter((x) => unchanged(x.field))) warnings.push(`unchanged ${p.field}: ${p.message}`);
    problems = problems.filter((x) => !unchanged(x.field));
  }

  if (problems.length) return { allowed: false, code: 403, message: problems.map((p) => `${p.field}: ${p.message}`).join('; '), warnings };
  return { allowed: true, warnings };
}
