// The image runs compiled JavaScript (infra/Dockerfile: `npm run build`, then
// `node dist/services/cli.js <role>`). Docker is not available here, so this test
// does what the image's build stage does, into a temporary directory, and runs
// the result: tsc with tsconfig.build.json, infra/copy-assets.mjs, then every
// role's --help through the compiled CLI, which loads each role's module graph.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const ROLES = ['relay', 'worker', 'webhook', 'sim', 'dev'];

let tmp: string;
let outDir: string;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kreconcile-build-'));
  outDir = path.join(tmp, 'dist');
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await run(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }).catch((err) => {
    throw new Error(`tsc -p tsconfig.build.json failed:\n${err.stdout}${err.stderr}`);
  });
  await run(process.execPath, [path.join(ROOT, 'infra', 'copy-assets.mjs'), outDir], { cwd: ROOT });
  // As in the image, the compiled files resolve packages from node_modules beside dist/.
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'), 'dir');
  fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(tmp, 'package.json'));
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test("the build emits the CLI where package.json's bin (and the image's ENTRYPOINT) expect it", () => {
  assert.ok(fs.existsSync(path.join(tmp, pkg.bin.kreconcile)), `${pkg.bin.kreconcile} after npm run build`);
});

test('every non-TypeScript file under services/ is copied next to the compiled modules', () => {
  const assets = fs.readdirSync(path.join(ROOT, 'services'), { recursive: true, encoding: 'utf8' }).filter((f) => fs.statSync(path.join(ROOT, 'services', f)).isFile() && !f.endsWith('.ts'));
  for (const f of assets) assert.ok(fs.existsSync(path.join(outDir, 'services', f)), `${f} copied`);
  // The compiled code imports .js, never .ts (rewriteRelativeImportExtensions).
  const cli = fs.readFileSync(path.join(tmp, pkg.bin.kreconcile), 'utf8');
  assert.doesNotMatch(cli, /from ['"][^'"]+\.ts['"]|import\(['"][^'"]+\.ts['"]\)/);
});

test('the compiled CLI loads every role and prints its usage', async () => {
  const cli = path.join(tmp, pkg.bin.kreconcile);
  const { stdout: usage } = await run(process.execPath, [cli, '--help'], { cwd: tmp });
  for (const role of ROLES) assert.match(usage, new RegExp(`^\\s+${role}\\s`, 'm'), `usage lists ${role}`);
  for (const role of ROLES) {
    const { stdout } = await run(process.execPath, [cli, role, '--help'], { cwd: tmp, env: { ...process.env, NODE_ENV: 'production' } });
    assert.match(stdout, new RegExp(`usage: kreconcile ${role}`), `${role} --help`);
  }
});
