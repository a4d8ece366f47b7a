// What every `kreconcile <role>` module exports. The CLI parses and validates the
// role's options, builds the logger and the shutdown handler, then calls run().
import type { ConfigOf, OptionTable } from './config.ts';
import type { Logger } from './logger.ts';
import type { Shutdown } from './shutdown.ts';

export interface RoleContext {
  log: Logger;
  shutdown: Shutdown;
}

export interface RoleModule<T extends OptionTable = OptionTable> {
  description: string;
  options: T;
  /** Write the JSON log in batches, at least every this many ms (a role that logs on its hot path). */
  logBatchMs?: number;
  /** Starts the role; resolves once it is serving. Long-running work is registered with ctx.shutdown. */
  run(config: ConfigOf<T>, ctx: RoleContext): Promise<void>;
}

export function defineRole<T extends OptionTable>(role: RoleModule<T>): RoleModule<T> {
  return role;
}
