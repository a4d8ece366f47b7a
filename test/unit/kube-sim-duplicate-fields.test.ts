import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { duplicateFields } from '../../services/kube-sim/duplicate-fields.ts';

test('names each repeated key by its path, as the strict JSON decoder does', () => {
  assert.deepEqual(duplicateFields('{"type":"Opaque","type":"Opaque"}'), ['type']);
  assert.deepEqual(duplicateFields('{"spec":{"template":{"spec":{"containers":[{"name":"x","image":"a","image":"b"}]}}}}'), ['spec.template.spec.containers[0].image']);
  assert.deepEqual(duplicateFields('{"a":{"b":1,"b":2},"c":[{"d":1},{"d":1,"d":2}],"e":[[1],{"k":1,"k":2}]}'), ['a.b', 'c[1].d', 'e[1].k']);
});

test('is not fooled by strings: escaped quotes, brackets and commas inside values or keys', () => {
  assert.deepEqual(duplicateFields('{"a\\"b":1,"a\\"b":2,"s":"x,{}[]\\"y","s2":"\\\\"}'), ['a"b']);
  assert.deepEqual(duplicateFields('{"k":"{\\"k\\":1}","j":["k","k"]}'), []);
});

/** JSON.stringify, except that the `target`-th non-empty object (preorder) writes its first key twice; returns the text and that key's path. */
function stringifyWithDuplicate(value: unknown, target: number): { text: string; path?: string } {
  let seen = 0;
  let path: string | undefined;
  const write = (v: unknown, at: string): string => {
    if (Array.isArray(v)) return `[${v.map((x, i) => write(x, `${at}[${i}]`)).join(',')}]`;
    if (v && typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      const fields = entries.map(([k, x]) => `${JSON.stringify(k)}:${write(x, at ? `${at}.${k}` : k)}`);
      if (entries.length && seen++ === target) {
        path = at ? `${at}.${entries[0]![0]}` : entries[0]![0];
        fields.unshift(`${JSON.stringify(entries[0]![0])}:0`);
      }
      return `{${fields.join(',')}}`;
    }
    return JSON.stringify(v) ?? 'null';
  };
  return { text: write(value, ''), path };
}

test('finds nothing in what JSON.stringify writes, and finds a key written twice anywhere', () => {
  fc.assert(
    fc.property(fc.object({ maxDepth: 4 }), fc.nat({ max: 20 }), (obj, target) => {
      assert.deepEqual(duplicateFields(JSON.stringify(obj)), []);
      const { text, path } = stringifyWithDuplicate(obj, target);
      assert.doesNotThrow(() => JSON.parse(text));
      assert.deepEqual(duplicateFields(text), path === undefined ? [] : [path]);
    }),
    { numRuns: 1000 },
  );
});
