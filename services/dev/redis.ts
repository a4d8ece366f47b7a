// A private redis-server for local runs and tests that must kill or restart
// Redis: a free port, no persistence, stopped with its owner.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** SIGKILL: the data is gone, as in a crash without persistence. */
  kill(): Promise<void>;
  /** Start it again on the same port after kill(); nothing to do while it runs. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function findRedisServerBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = r.stdout.trim();
  return r.status === 0 && path ? path : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** True when something answers PING at the URL within the timeout. */
export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export interface StartRedisOptions {
  port?: number;
  binary?: string;
  /**
   * Run it in a process group of its own, so a Ctrl-C meant for its owner does not
   * reach it: the owner stops it last, after the processes using it have drained.
   * It is still killed when the owner's process exits.
   */
  ownProcessGroup?: boolean;
}

export async function startRedisServer(opts: StartRedisOptions = {}): Promise<RedisServer> {
  const binary = opts.binary ?? findRedisServerBinary();
  if (!binary) throw new Error('redis-server not found on the PATH: install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL');
  const port = opts.port ?? (await freePort());
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  async function launch(): Promise<void> {
    if (child && child.exitCode === null && child.signalCode === null) return;
    const c = spawn(binary!, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      detached: opts.ownProcessGroup ?? false,
    });
    child = c;
    if (opts.ownProcessGroup) {
      // Out of our group, it would outlive us: kill it when we exit, however we exit short of SIGKILL.
      const killOnExit = () => c.kill('SIGKILL');
      process.once('exit', killOnExit);
      c.once('exit', () => process.off('exit', killOnExit));
    }
    const started = Date.now();
    while (!(await redisAnswers(url, 200))) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode} on port ${port}`);
      if (Date.now() - started > 10_000) throw new Error(`redis-server did not answer on port ${port} within 10 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function killWith(signal: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  }

  await launch();
  return {
    url,
    port,
    kill: () => killWith('SIGKILL'),
    restart: launch,
    stop: () => killWith('SIGTERM'),
  };
}
