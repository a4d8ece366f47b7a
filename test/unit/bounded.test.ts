import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clip, quoted } from '../../services/common/bounded.ts';

test('short text is kept whole; long text is cut, with its length when quoted', () => {
  assert.equal(clip('abc', 3), 'abc');
  assert.equal(clip('abcd', 3), 'abc…');
  assert.equal(quoted('abc'), '"abc"');
  assert.equal(quoted('x'.repeat(70)), `"${'x'.repeat(64)}…" (70 characters)`);
});

test('a cut never splits a surrogate pair (an emoji at the boundary goes whole or not at all)', () => {
  const text = `${'a'.repeat(63)}😀${'b'.repeat(10)}`; // the emoji's high surrogate is unit 64
  assert.equal(quoted(text), `"${'a'.repeat(63)}…" (75 characters)`);
  assert.equal(clip(text, 65), `${'a'.repeat(63)}😀…`);
  assert.doesNotThrow(() => encodeURIComponent(clip(text, 64)), 'no lone surrogate');
});
