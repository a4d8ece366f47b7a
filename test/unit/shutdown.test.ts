import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { silentLogger } from '../../services/common/logger.ts';
import { installShutdown } from '../../services/common/shutdown.ts';

test('closers run last-registered first, a failing closer does not stop the rest, and the exit code is kept', async () => {
  const order: string[] = [];
  let exitCode: number | undefined;
  const shutdown = installShutdown(silentLogger, { exit: (code) => void (exitCode = code) });
  shutdown.register('redis', () => void order.push('redis'));
  shutdown.register('server', async () => {
    order.push('server');
    throw new Error('already closed');
  });
  shutdown.register('worker', async () => void order.push('worker'));
  await shutdown.trigger('test', 3);
  await shutdown.done;
  assert.deepEqual(order, ['worker', 'server', 'redis']);
  assert.equal(exitCode, 3);
});

test('a closer that hangs past the deadline still ends in an exit', async () => {
  const exits: number[] = [];
  const shutdown = installShutdown(silentLogger, { deadlineMs: 50, exit: (code) => void exits.push(code) });
  shutdown.register('stuck', () => new Promise(() => {}));
  void shutdown.trigger('test');
  await new Promise((r) => setTimeout(r, 150));
  assert.deepEqual(exits, [1], 'the deadline exits with a failure code');
});

test('triggering twice runs the closers once', async () => {
  let runs = 0;
  const shutdown = installShutdown(silentLogger, { exit: () => {} });
  shutdown.register('once', () => void runs++);
  await Promise.all([shutdown.trigger('a'), shutdown.trigger('b')]);
  assert.equal(runs, 1);
});

test('the same stop delivered twice (process group + supervisor) is one graceful stop; a later second signal exits at once', async () => {
  const signals = new EventEmitter();
  const exits: number[] = [];
  let release!: () => void;
  const shutdown = installShutdown(silentLogger, { signals, duplicateSignalMs: 200, exit: (code) => void exits.push(code) });
  shutdown.register('drain', () => new Promise<void>((r) => (release = r)));
  assert.equal(shutdown.stopping, false);
  signals.emit('SIGINT', 'SIGINT');
  signals.emit('SIGTERM', 'SIGTERM'); // forwarded by the supervisor a moment later
  assert.equal(shutdown.stopping, true);
  assert.deepEqual(exits, [], 'still draining: the duplicate did not force an exit');
  await new Promise((r) => setTimeout(r, 250));
  signals.emit('SIGINT', 'SIGINT'); // an impatient second Ctrl-C
  assert.deepEqual(exits, [130]);
  release();
  await shutdown.done;
  assert.deepEqual(exits, [130, 0]);
});
