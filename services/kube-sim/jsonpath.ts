// Kubernetes-style JSONPath (`.spec.image`, `{.status.conditions[?(@.type=="Ready")].status}`),
// as CRD printer columns and `kubectl -o jsonpath` write it, evaluated by jsonpath-plus.
import { JSONPath } from 'jsonpath-plus';

/** Turn a Kubernetes JSONPath template into the `$`-rooted form jsonpath-plus expects. */
export function toJsonPathPlus(k8sPath: string): string {
  let p = k8sPath.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1).trim();
  if (p.startsWith('$')) return p;
  if (p.startsWith('.') || p.startsWith('[')) return `$${p}`;
  return `$.${p}`;
}

/** Every value the path selects, in document order; [] when nothing matches or the path is bad. */
export function evaluateJsonPath(obj: unknown, k8sPath: string): unknown[] {
  try {
    // `eval: 'safe'` keeps filter expressions from running arbitrary code from a CRD.
    const found = JSONPath({ path: toJsonPathPlus(k8sPath), json: obj as object, wrap: true, eval: 'safe' });
    return Array.isArray(found) ? found : [];
  } catch {
    return [];
  }
}
