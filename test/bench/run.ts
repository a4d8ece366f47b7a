// npm run bench [-- name...]: runs each benchmark in its own process (so their
// memory and CPU figures are their own), echoes its JSON lines, then prints a
// summary table of every result.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ORDER = ['webhook', 'relay', 'e2e', 'sim', 'scaling', 'polling'];
const available = fs
  .readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99));

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}`);
  process.exit(2);
}
const selected = wanted.length ? wanted : available;
const results: Record<string, unknown>[] = [];
let failures = 0;

for (const name of selected) {
  console.error(`# bench ${name}`);
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, `${name}.ts`)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buf += chunk.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        console.log(line);
        try {
          const parsed = JSON.parse(line);
          if (parsed && typeof parsed === 'object') results.push(parsed);
        } catch {
          /* not a result line */
        }
      }
    });
    child.on('exit', (c) => resolve(c ?? 1));
  });
  if (code !== 0) {
    failures++;
    console.error(`# bench ${name} exited with code ${code}`);
  }
}

// Summary: one row per result, the bench name and its figures.
console.error('\n# summary');
for (const r of results) {
  const { bench, ...figures } = r as { bench?: string };
  const cells = Object.entries(figures).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(2) : JSON.stringify(v)}`);
  console.error(`${String(bench ?? '?').padEnd(10)} ${cells.join('  ')}`);
}
process.exit(failures ? 1 : 0);
