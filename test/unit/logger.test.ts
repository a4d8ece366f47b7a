import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { batchedStdout, createLogger } from '../../services/common/logger.ts';

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

test('batched output: lines wait for the interval or 16 kB, then go out together and in order', async () => {
  const writes: string[] = [];
  const out = batchedStdout(40, { write: (chunk: string) => writes.push(chunk) });
  out.write('a\n');
  out.write('b\n');
  assert.deepEqual(writes, [], 'nothing is written at once');
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(writes, ['a\nb\n'], 'both lines in one write after the interval');
  const big = 'x'.repeat(16 * 1024) + '\n';
  out.write(big);
  assert.deepEqual(writes, ['a\nb\n', big], 'a full batch is written without waiting');
  out.write('c\n');
  out.flush();
  assert.deepEqual(writes.at(-1), 'c\n', 'flush writes what is pending');
});
