// `kreconcile sim` as a process: serves, writes its kubeconfig once ready, stops on SIGTERM.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeKubectl } from './kube-sim-helpers.ts';
import { eventually } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('kreconcile sim --port 0 --kubeconfig-out FILE serves the API and exits cleanly on SIGTERM', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-sim-role-'));
  const kubeconfig = path.join(dir, 'nested', 'kubeconfig');
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'sim', '--port', '0', '--kubeconfig-out', kubeconfig, '--admin-port', '0', '--log-level', 'warn'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_JSON: '1' },
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    await eventually('the kubeconfig', () => fs.existsSync(kubeconfig), 30_000, 10);
    const kubectl = makeKubectl(kubeconfig);
    try {
      const out = await kubectl.ok(['get', 'namespaces', '-o', 'name']);
      assert.deepEqual(out.trim().split('\n').sort(), ['namespace/default', 'namespace/kube-node-lease', 'namespace/kube-public', 'namespace/kube-system']);
    } finally {
      kubectl.cleanup();
    }
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad flags print usage and exit 2', async () => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'services/cli.ts', 'sim', '--port', 'nope'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 2);
  assert.match(stderr, /--port: must be a port number/);
});
