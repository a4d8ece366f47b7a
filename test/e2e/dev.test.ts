// `kreconcile dev` as a newcomer runs it: a child process, driven with kubectl.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually } from '../support/wait.ts';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

let dir: string;
let dev: ReturnType<typeof spawn>;
let kubectlEnv: NodeJS.ProcessEnv;
let exited: Promise<number | string>;
const logLines: string[] = [];

function kubectl(...args: string[]) {
  return run('kubectl', args, { env: kubectlEnv, timeout: 30_000 });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-dev-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  // Its own process group, so the test can check that Ctrl-C leaves nothing behind.
  dev = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'services', 'cli.ts'), 'dev', '--kubeconfig-out', kubeconfig], {
    cwd: ROOT,
    detached: true,
    env: { ...process.env, REDIS_URL: '', DEV_WORKERS: '2', LOG_JSON: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  exited = new Promise((resolve) => dev.once('exit', (code, sig) => resolve(code ?? sig ?? -1)));
  let stderr = '';
  dev.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dev did not become ready in 90 s; stderr:\n${stderr}`)), 90_000);
    readline.createInterface({ input: dev.stdout! }).on('line', (line) => {
      logLines.push(line);
      if (line.includes('dev environment ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then((code) => reject(new Error(`dev exited (${code}) before it was ready; stderr:\n${stderr}`)));
  });
  // The banner goes to stderr, the log line to stdout: two pipes, read in no fixed order.
  await eventually('the banner saying how to point kubectl at it', async () => (/export KUBECONFIG=/.test(stderr) ? true : undefined), 5_000);
  kubectlEnv = { ...process.env, KUBECONFIG: kubeconfig, HOME: dir, KUBECACHEDIR: path.join(dir, 'cache') };
});

after(async () => {
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    try {
      process.kill(-dev.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('an applied CronTab gets its CronJob and a Ready status', async () => {
  await kubectl('apply', '-f', path.join(ROOT, 'examples', 'crontab.yaml'));
  const name = (await kubectl('get', '-f', path.join(ROOT, 'examples', 'crontab.yaml'), '-o', 'jsonpath={.metadata.name}')).stdout;
  const schedule = await eventually('the CronJob', async () => {
    const out = await kubectl('get', 'cronjob', name, '-o', 'jsonpath={.spec.schedule}');
    return out.stdout || undefined;
  }, 30_000, 200);
  const wanted = (await kubectl('get', 'ct', name, '-o', 'jsonpath={.spec.cronSpec}')).stdout;
  assert.equal(schedule, wanted);
  await eventually('Ready=True', async () => {
    const out = await kubectl('get', 'ct', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}');
    return out.stdout === 'True' ? true : undefined;
  }, 30_000, 200);
});

test('a CronJob changed by hand is repaired, and an invalid CronTab is refused', async () => {
  const name = (await kubectl('get', '-f', path.join(ROOT, 'examples', 'crontab.yaml'), '-o', 'jsonpath={.metadata.name}')).stdout;
  const wanted = (await kubectl('get', 'ct', name, '-o', 'jsonpath={.spec.cronSpec}')).stdout;
  await kubectl('patch', 'cronjob', name, '--type=merge', '-p', '{"spec":{"schedule":"0 0 * * *"}}');
  await eventually('the CronJob repaired', async () => {
    const out = await kubectl('get', 'cronjob', name, '-o', 'jsonpath={.spec.schedule}');
    return out.stdout === wanted ? true : undefined;
  }, 30_000, 200);
  await assert.rejects(kubectl('apply', '-f', path.join(ROOT, 'examples', 'crontab-invalid.yaml')), (err: { stderr: string }) => {
    assert.match(err.stderr, /admission webhook "crontabs\.kreconcile\.example\.com" denied the request: .*spec\.cronSpec/);
    return true;
  });
});

test('a weak password is refused with the webhook\'s message, a strong one is stored', async () => {
  await assert.rejects(kubectl('create', 'secret', 'generic', 'weak-db', '--from-literal=password=short'), (err: { stderr: string }) => {
    assert.match(err.stderr, /admission webhook "secrets\.kreconcile\.example\.com" denied the request: .*password/);
    assert.doesNotMatch(err.stderr, /\bshort\b/, 'the message never repeats the password');
    return true;
  });
  await kubectl('create', 'secret', 'generic', 'strong-db', '--from-literal=password=correct-horse-battery-staple-42');
  const out = await kubectl('get', 'secret', 'strong-db', '-o', 'jsonpath={.metadata.name}');
  assert.equal(out.stdout, 'strong-db');
});

test('Ctrl-C (SIGINT to the whole group) stops everything gracefully, Redis last', async () => {
  const redisUrl = logLines.map((l) => JSON.parse(l) as { msg?: string; redisUrl?: string }).find((l) => l.msg?.startsWith('started a private redis-server'))?.redisUrl;
  assert.ok(redisUrl, 'dev started its own redis-server');
  const { redisAnswers } = await import('../../services/dev/redis.ts');
  const before = logLines.length;
  process.kill(-dev.pid!, 'SIGINT');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('timeout'), 30_000)))]);
  clearTimeout(timer); // else it holds the test process for 30 s after the last test
  assert.notEqual(code, 'timeout', 'dev exits within 30 s of Ctrl-C');
  assert.equal(code, 0);
  // Every process got the signal, and dev forwarded it again: one stop, not "second signal: exiting now".
  const shutdownLines = logLines.slice(before).map((l) => JSON.parse(l) as { level?: string; msg?: string; role?: string });
  assert.deepEqual(shutdownLines.filter((l) => l.level === 'error' || l.level === 'fatal' || /second signal/.test(l.msg ?? '')), []);
  assert.ok(shutdownLines.some((l) => l.role === 'worker-1' && l.msg === 'stopped'), 'a worker stopped gracefully');
  assert.equal(await redisAnswers(redisUrl, 500), false, 'the private redis-server is stopped too');
  // Give the children the same grace, then nothing of the group may remain.
  await eventually('the process group to be empty', async () => {
    try {
      process.kill(-dev.pid!, 0);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH' ? true : undefined;
    }
  }, 20_000, 200);
});
