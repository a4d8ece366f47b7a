// Assertions more than one suite makes.
import assert from 'node:assert/strict';
import { StatusError } from '../../services/kube-sim/types.ts';

/** fn throws kube-sim's StatusError with this HTTP code, reason and a message matching `message`. */
export function throwsStatusError(fn: () => unknown, code: number, reason: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StatusError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.reason, reason);
    assert.match(err.message, message);
    return true;
  });
}
