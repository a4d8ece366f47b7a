// Fault switches for the fault-injection suite: drop every watch, compact history,
// fail or hang a share of requests per resource, pause everything. All off by
// default; each switch is logged. Reachable as library calls and on a separate
// admin port, never through the API port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../common/logger.ts';
import { StatusError } from './types.ts';
import type { Store } from './store.ts';
import type { WatchHub } from './watch.ts';

export interface ErrorFault {
  /** Plural resource name ("secrets", "crontabs"); undefined = every resource. */
  resource?: string;
  code: 500 | 503 | 429 | 504;
  /** Share of matching requests that fail, 0..1. */
  ratio: number;
}

export interface HangFault {
  resource?: string;
  seconds: number;
  ratio: number;
}

export interface FaultState {
  errors: ErrorFault[];
  hangs: HangFault[];
  pausedUntil?: string;
}

export class Faults {
  private errors: ErrorFault[] = [];
  private hangs: HangFault[] = [];
  private pausedUntil = 0;
  private resumeWaiters: Array<() => void> = [];
  private pauseTimer?: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly watches: WatchHub,
    private readonly log: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  /** Ends every open watch at once; `reset` cuts the TCP connection instead of ending the stream cleanly. */
  dropWatches(mode: 'end' | 'reset' = 'end'): number {
    const n = this.watches.dropAll(mode);
    this.log.warn({ fault: 'drop-watches', mode, dropped: n }, 'fault: dropped every open watch');
    return n;
  }

  /** Forgets history up to now: a watch or continue token from an older revision gets 410. */
  compact(): number {
    const rv = this.store.currentRevision;
    this.store.compact(rv);
    this.log.warn({ fault: 'compact', revision: rv }, 'fault: compacted event history');
    return rv;
  }

  failRequests(f: ErrorFault): void {
    if (![500, 503, 429, 504].includes(f.code)) throw new Error('code must be 500, 503, 429 or 504');
    if (!(f.ratio >= 0 && f.ratio <= 1)) throw new Error('ratio must be in 0..1');
    this.errors = this.errors.filter((e) => e.resource !== f.resource);
    if (f.ratio > 0) this.errors.push({ ...f });
    this.log.warn({ fault: 'errors', ...f }, 'fault: failing requests');
  }

  hangRequests(f: HangFault): void {
    if (!(f.seconds >= 0)) throw new Error('seconds must be ≥ 0');
    if (!(f.ratio >= 0 && f.ratio <= 1)) throw new Error('ratio must be in 0..1');
    this.hangs = this.hangs.filter((h) => h.resource !== f.resource);
    if (f.ratio > 0 && f.seconds > 0) this.hangs.push({ ...f });
    this.log.warn({ fault: 'hang', ...f }, 'fault: hanging requests');
  }

  /** Nothing is answered and no watch event is delivered for `seconds`. */
  pause(seconds: number): void {
    if (!(seconds >= 0)) throw new Error('seconds must be ≥ 0');
    this.pausedUntil = Date.now() + seconds * 1000;
    clearTimeout(this.pauseTimer);
    this.watches.pause();
    this.pauseTimer = setTimeout(() => this.resume(), seconds * 1000);
    this.pauseTimer.unref();
    this.log.warn({ fault: 'pause', seconds }, 'fault: pausing the API server');
  }

  /** Every switch off. */
  reset(): void {
    this.errors = [];
    this.hangs = [];
    if (this.pausedUntil) this.resume();
    this.log.warn({ fault: 'reset' }, 'fault: every switch off');
  }

  get paused(): boolean {
    return this.pausedUntil > 0;
  }

  state(): FaultState {
    const s: FaultState = { errors: [...this.errors], hangs: [...this.hangs] };
    if (this.pausedUntil) s.pausedUntil = new Date(this.pausedUntil).toISOString();
    return s;
  }

  /** Runs before each API request: waits out a pause or a hang, or throws the injected error. */
  async beforeRequest(resource: string | undefined): Promise<void> {
    if (this.pausedUntil) await new Promise<void>((r) => this.resumeWaiters.push(r));
    // A rule for this resource is tried before a rule for every resource; each rolls its own dice.
    const matching = <T extends { resource?: string }>(rules: T[]) => [
      ...rules.filter((f) => f.resource !== undefined && f.resource === resource),
      ...rules.filter((f) => f.resource === undefined),
    ];
    const hang = matching(this.hangs).find((h) => this.random() < h.ratio);
    if (hang) await new Promise((r) => setTimeout(r, hang.seconds * 1000));
    const err = matching(this.errors).find((e) => this.random() < e.ratio);
    if (err) {
      if (err.code === 503) throw new StatusError(503, 'ServiceUnavailable', 'the server is currently unable to handle the request (injected fault)', { retryAfterSeconds: 1 });
      if (err.code === 429) throw new StatusError(429, 'TooManyRequests', 'the server has received too many requests and has asked us to try again later (injected fault)', { retryAfterSeconds: 1 });
      if (err.code === 504) throw new StatusError(504, 'Timeout', 'Timeout: request did not complete within requested timeout - context deadline exceeded (injected fault)', {});
      throw new StatusError(500, 'InternalError', 'Internal error occurred: injected fault', { causes: [{ message: 'injected fault' }] });
    }
  }

  close(): void {
    clearTimeout(this.pauseTimer);
    this.resume();
  }

  private resume(): void {
    this.pausedUntil = 0;
    clearTimeout(this.pauseTimer);
    const waiters = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const w of waiters) w();
    this.watches.resume();
  }
}

export interface AdminServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The admin endpoint: GET /faults, POST /faults/{drop-watches,compact,errors,hang,pause}, DELETE /faults.
 * JSON bodies: errors {resource?, code, ratio}, hang {resource?, seconds, ratio}, pause {seconds},
 * drop-watches {mode?: "end"|"reset"}.
 */
export async function startAdminServer(faults: Faults, opts: { port?: number; host?: string } = {}): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (code: number, body: unknown) => res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body) + '\n');
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = text.trim() ? JSON.parse(text) : {};
        const path = (req.url ?? '/').split('?')[0];
        const route = `${req.method} ${path}`;
        switch (route) {
          case 'GET /healthz':
            return send(200, { ok: true });
          case 'GET /faults':
            return send(200, faults.state());
          case 'DELETE /faults':
            faults.reset();
            return send(200, faults.state());
          case 'POST /faults/drop-watches':
            return send(200, { dropped: faults.dropWatches(body.mode === 'reset' ? 'reset' : 'end') });
          case 'POST /faults/compact':
            return send(200, { compactedRevision: faults.compact() });
          case 'POST /faults/errors':
            faults.failRequests({ resource: body.resource, code: Number(body.code ?? 500) as ErrorFault['code'], ratio: Number(body.ratio ?? 1) });
            return send(200, faults.state());
          case 'POST /faults/hang':
            faults.hangRequests({ resource: body.resource, seconds: Number(body.seconds), ratio: Number(body.ratio ?? 1) });
            return send(200, faults.state());
          case 'POST /faults/pause':
            faults.pause(Number(body.seconds));
            return send(200, faults.state());
          default:
            return send(404, { error: `no such admin endpoint: ${route}` });
        }
      } catch (err) {
        send(400, { error: (err as Error).message });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
