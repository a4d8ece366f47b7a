// infra/Dockerfile, read with dockerfile-ast (Docker is not available where these
// tests run, so the image is never built here). What can be checked without
// building: the stages, the base image line (Node 24 LTS), a non-root user, that
// the runtime stage gets only production dependencies and compiled JS, that every
// file COPY needs exists and is not excluded by .dockerignore (checked with
// @balena/dockerignore, a port of Docker's own matcher), and that the entrypoint
// is the compiled CLI named in package.json's `bin`.
// test/integration/build.test.ts compiles that CLI and runs every role's --help.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type Copy, DockerfileParser, type Instruction } from 'dockerfile-ast';

// A CommonJS module whose typings declare a default export: load it as CommonJS.
const dockerignore = createRequire(import.meta.url)('@balena/dockerignore') as typeof import('@balena/dockerignore').default;

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const dockerfile = DockerfileParser.parse(fs.readFileSync(path.join(ROOT, 'infra', 'Dockerfile'), 'utf8'));
const instructions = dockerfile.getInstructions();
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

/** Instructions grouped by stage name, in order. */
function stages(): Map<string, Instruction[]> {
  const out = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  for (const i of instructions) {
    if (i.getKeyword() === 'FROM') {
      current = [];
      const args = i.getArguments().map((a) => a.getValue());
      out.set(args[2] ?? `stage${out.size}`, current);
    }
    current?.push(i);
  }
  return out;
}

const args = (i: Instruction) => i.getArguments().map((a) => a.getValue());
const runLines = (stage: Instruction[]) => stage.filter((i) => i.getKeyword() === 'RUN').map((i) => args(i).join(' '));

describe('infra/Dockerfile', () => {
  const byStage = stages();
  const names = [...byStage.keys()];
  const runtime = byStage.get(names.at(-1)!)!;

  test('is multi-stage, every stage on the same Node 24 LTS base image', () => {
    assert.ok(names.length >= 2, `stages: ${names.join(', ')}`);
    const defaults = Object.fromEntries(dockerfile.getARGs().map((a) => [a.getProperty()!.getName(), a.getProperty()!.getValue()]));
    for (const from of dockerfile.getFROMs()) {
      const image = from.getImage()!.replace(/\$\{(\w+)\}/g, (_, name: string) => defaults[name] ?? '');
      assert.match(image, /^node:24(\.\d+)*-(bookworm|trixie)-slim(@sha256:[0-9a-f]{64})?$/, `stage ${from.getBuildStage()}: ${image}`);
    }
  });

  test("builds in one stage (npm ci + package.json's build) and installs production dependencies only for the runtime", () => {
    // The build stage runs what `npm run build` runs, so the two cannot drift apart.
    const steps = (cmd: string) => cmd.split('&&').map((part) => part.trim().replace(/^node (node_modules\/typescript\/bin\/)?/, ''));
    const build = [...byStage.values()].find((s) => runLines(s).some((l) => l.includes('tsconfig.build.json')));
    assert.ok(build, 'a stage compiles with tsconfig.build.json');
    const buildLine = runLines(build).find((l) => l.includes('tsconfig.build.json'))!;
    assert.deepEqual(steps(buildLine), steps(pkg.scripts.build));
    assert.ok(runLines(build).some((l) => /npm ci\b/.test(l) && !l.includes('--omit=dev')), 'the build stage has the dev dependencies (tsc)');
    const prod = [...byStage.entries()].find(([, s]) => runLines(s).some((l) => /npm ci\b.*--omit=dev/.test(l)));
    assert.ok(prod, 'a stage installs with npm ci --omit=dev');

    const copies = runtime.filter((i) => i.getKeyword() === 'COPY') as Copy[];
    const fromStage = (dest: string) => copies.find((c) => args(c).at(-1) === dest)?.getFromFlag()?.getValue();
    assert.equal(fromStage('./node_modules'), prod[0], 'node_modules come from the production-only stage');
    assert.ok(fromStage('./dist'), 'the compiled JS comes from the build stage');
    assert.ok(!runtime.some((i) => i.getKeyword() === 'RUN' && /npm (ci|install)/.test(args(i).join(' '))), 'no install in the runtime stage');
    for (const c of copies.filter((c) => !c.getFromFlag())) {
      for (const src of args(c).slice(0, -1)) assert.ok(!/^(services|test|src)\b/.test(src), `runtime stage copies sources: ${src}`);
    }
  });

  test('runs as a non-root numeric user (so Kubernetes can verify runAsNonRoot)', () => {
    const users = runtime.filter((i) => i.getKeyword() === 'USER');
    assert.equal(users.length, 1);
    const [uid] = args(users[0]!)[0]!.split(':');
    assert.match(uid!, /^\d+$/);
    assert.notEqual(Number(uid), 0);
  });

  test('the entrypoint is the compiled CLI that package.json names, run by node directly (exec form, signals reach it)', () => {
    const entrypoint = runtime.find((i) => i.getKeyword() === 'ENTRYPOINT')!;
    const argv = JSON.parse(entrypoint.getArgumentsContent()!) as string[];
    assert.equal(argv[0], 'node');
    assert.equal(argv.at(-1), pkg.bin.kreconcile);
  });

  test('exposes the health port and the webhook port the roles default to', () => {
    const exposed = runtime.filter((i) => i.getKeyword() === 'EXPOSE').flatMap(args);
    assert.ok(exposed.includes('8080') && exposed.includes('8443'));
  });

  test('every file it copies from the context exists and is not excluded by .dockerignore', () => {
    const ignore = dockerignore().add(fs.readFileSync(path.join(ROOT, '.dockerignore'), 'utf8'));
    const sources = (instructions.filter((i) => i.getKeyword() === 'COPY') as Copy[]).filter((c) => !c.getFromFlag()).flatMap((c) => args(c).slice(0, -1));
    assert.ok(sources.includes('services') && sources.includes('package-lock.json'));
    for (const src of new Set(sources)) {
      assert.ok(fs.existsSync(path.join(ROOT, src)), `${src} exists`);
      assert.equal(ignore.ignores(src), false, `${src} is excluded by .dockerignore`);
    }
    // What the image must never receive.
    for (const secretish of ['.git/config', 'node_modules/x', '.kreconcile/kubeconfig', 'infra/overlays/no-cert-manager/tls.key', 'test/unit/x.test.ts']) {
      assert.equal(ignore.ignores(secretish), true, `${secretish} should be excluded`);
    }
  });
});
