// Prints the README's configuration table from the roles' option tables, so the
// documentation cannot drift from what the program accepts.
import type { OptionTable } from '../services/common/config.ts';

export const ROLE_MODULES = ['relay', 'worker', 'webhook', 'sim', 'dev'] as const;

async function loadOptions(role: (typeof ROLE_MODULES)[number]): Promise<OptionTable> {
  const dir = role === 'sim' ? 'kube-sim' : role;
  const mod = await import(`../services/${dir}/main.ts`);
  return mod.default.options as OptionTable;
}

export async function configRows(): Promise<{ env: string; flag?: string; roles: string[]; help: string }[]> {
  const rows = new Map<string, { env: string; flag?: string; roles: string[]; help: string }>();
  for (const role of ROLE_MODULES) {
    for (const spec of Object.values(await loadOptions(role))) {
      const row = rows.get(spec.env) ?? { env: spec.env, flag: spec.flag, roles: [], help: spec.help };
      row.roles.push(role);
      rows.set(spec.env, row);
    }
  }
  return [...rows.values()];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await configRows();
  console.log('| variable | flag | roles | meaning |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| \`${r.env}\` | ${r.flag ? `\`--${r.flag}\`` : ''} | ${r.roles.join(', ')} | ${r.help.replace(/\|/g, '\\|')} |`);
}
