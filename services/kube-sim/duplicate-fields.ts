// Duplicate keys in a JSON request body, named as kube-apiserver's strict JSON decoder
// names them (`spec.template.spec.containers[0].image`). JSON.parse keeps the last
// value silently; the API server warns (fieldValidation=Warn, the default) or refuses
// (Strict), so a client that writes a key twice must hear about it here too.
// One linear pass over the text, which JSON.parse has already accepted as valid.

/** Paths of keys that appear more than once in the same object, in the order met. */
export function duplicateFields(text: string): string[] {
  const out: string[] = [];
  // One frame per open object or array: its path, and its keys so far (objects) or next index (arrays).
  const stack: Array<{ path: string; keys?: Set<string>; index: number }> = [];
  let pendingKey: string | undefined; // the key whose value comes next, in the innermost object
  const childPath = (frame: { path: string; keys?: Set<string>; index: number } | undefined): string => {
    if (!frame) return '';
    if (frame.keys) return frame.path ? `${frame.path}.${pendingKey}` : (pendingKey ?? '');
    return `${frame.path}[${frame.index}]`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (; j < text.length; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.keys && pendingKey === undefined) {
        // A key: the next non-space character is ':'.
        const raw = text.slice(i, j + 1);
        const key = escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        if (top.keys.has(key)) out.push(top.path ? `${top.path}.${key}` : key);
        else top.keys.add(key);
        pendingKey = key;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const parent = stack[stack.length - 1];
      const path = childPath(parent);
      stack.push(c === 0x7b ? { path, keys: new Set(), index: 0 } : { path, index: 0 });
      pendingKey = undefined;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      pendingKey = undefined;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top && !top.keys) top.index++;
      pendingKey = undefined;
    }
  }
  return out;
}
