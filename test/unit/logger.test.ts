import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../services/common/logger.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  let out = '';
  const stream = new Writable({ write: (chunk, _enc, cb) => ((out += chunk.toString()), cb()) });
  return { stream, text: () => out, lines: () => out.trim().split('\n').map((l) => JSON.parse(l)) };
}

test('secret-looking fields are censored at every depth the logger promises', () => {
  const sink = capture();
  const log = createLogger({ destination: sink.stream, level: 'info' });
  log.info(
    {
      password: 'top-level-value',
      secret: { data: { password: 'aHVudGVyMg==' }, stringData: { password: 'nested-value' } },
      req: { headers: { authorization: 'Bearer abc.def' } },
      key: 'Secret/default/db',
    },
    'reconciled',
  );
  const text = sink.text();
  for (const value of ['top-level-value', 'aHVudGVyMg==', 'nested-value', 'Bearer abc.def']) assert.ok(!text.includes(value), `${value} leaked`);
  const [line] = sink.lines();
  assert.equal(line!.password, '[REDACTED]');
  assert.equal(line!.key, 'Secret/default/db', 'job keys are not secrets');
  assert.equal(line!.msg, 'reconciled');
  assert.equal(line!.level, 'info');
});
