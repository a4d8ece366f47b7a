import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { configRows } from '../../scripts/config-table.ts';

const readme = fs.readFileSync(path.resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');

test('the README documents every environment variable the roles read', async () => {
  const missing = (await configRows()).filter((r) => !readme.includes(`\`${r.env}\``)).map((r) => r.env);
  assert.deepEqual(missing, [], 'regenerate the table: node --import tsx scripts/config-table.ts');
});

test('the README shows exactly the two set-up commands', () => {
  assert.match(readme, /^npm install && npm start/m);
  assert.match(readme, /^npm test/m);
});
