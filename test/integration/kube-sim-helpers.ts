// Helpers for kube-sim's integration tests: run kubectl against a sim with its own
// HOME and discovery cache, and follow a child's output.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../support/wait.ts';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Kubectl {
  (args: string[], opts?: { input?: string }): Promise<KubectlResult>;
  /** Like calling it, but fails the test unless kubectl exits 0. */
  ok(args: string[], opts?: { input?: string }): Promise<string>;
  spawn(args: string[]): ChildProcess;
  /** A file in this kubectl's temp dir. */
  file(name: string, content: string): string;
  dir: string;
  cleanup(): void;
}

export function makeKubectl(kubeconfigPath: string): Kubectl {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kube-sim-kubectl-'));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, KUBECACHEDIR: path.join(dir, 'cache'), KUBECONFIG: kubeconfigPath };
  const base = ['--kubeconfig', kubeconfigPath];
  const run = ((args: string[], opts: { input?: string } = {}) =>
    new Promise<KubectlResult>((resolve) => {
      const child = execFile('kubectl', [...base, ...args], { env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      });
      if (opts.input !== undefined) child.stdin!.end(opts.input);
      else child.stdin!.end();
    })) as Kubectl;
  run.ok = async (args, opts) => {
    const r = await run(args, opts);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`);
    return r.stdout;
  };
  run.spawn = (args) => spawn('kubectl', [...base, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  run.file = (name, content) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content);
    return p;
  };
  run.dir = dir;
  run.cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  return run;
}

/** Collects a child's stdout lines; `until` resolves once a line matches. */
export function lines(child: ChildProcess): { all: string[]; until(re: RegExp, ms?: number): Promise<string> } {
  const all: string[] = [];
  let buf = '';
  child.stdout!.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop()!;
    all.push(...parts);
  });
  return {
    all,
    until: (re, ms = 10_000) => waitFor(`a line matching ${re}`, () => all.find((l) => re.test(l)), ms, 10),
  };
}
