// tsc emits only JavaScript: copy every other file under services/ (e.g. .proto,
// word lists) next to the compiled modules, so code that loads a file relative to
// import.meta.url finds it in dist/ as it does in the sources.
// Usage: node infra/copy-assets.mjs [outDir]   (default: dist)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.resolve(root, process.argv[2] ?? 'dist');
const skip = (name) => name.endsWith('.ts') || name.endsWith('.tsbuildinfo');

let copied = 0;
for (const rel of fs.readdirSync(path.join(root, 'services'), { recursive: true, encoding: 'utf8' })) {
  const from = path.join(root, 'services', rel);
  if (!fs.statSync(from).isFile() || skip(rel)) continue;
  const to = path.join(outDir, 'services', rel);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(from, to);
  copied++;
}
console.log(`copied ${copied} asset file(s) into ${path.relative(root, outDir) || '.'}/services`);
