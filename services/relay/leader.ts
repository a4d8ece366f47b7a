// Leader election through a coordination.k8s.io/v1 Lease (contract §9).
//
// Invariants:
//  - Every write is a PUT carrying the resourceVersion just read, so of two
//    replicas racing for the Lease exactly one wins; the other gets 409.
//  - A replica leads only between a successful acquire/renew and either a failed
//    renew that finds another holder, or `renewDeadline` without a successful
//    renew. renewDeadline < leaseDuration, so a leader stops relaying before any
//    standby may take the Lease over.
//  - A standby takes over once `renewTime + leaseDurationSeconds` has passed (or
//    the holder released the Lease), incrementing leaseTransitions.
//  - Times are MicroTime: RFC 3339 with exactly six fractional digits.
import type { Logger } from '../common/logger.ts';
import { KubeApiError, type KubeClient } from './kube-client.ts';

export interface LeaseSpec {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string; [k: string]: unknown };
  spec?: LeaseSpec;
}

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** `2025-01-02T03:04:05.123456Z`: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  const iso = new Date(Math.floor(ms)).toISOString(); // …T03:04:05.123Z
  const micros = String(Math.floor((ms % 1) * 1000)).padStart(3, '0');
  return `${iso.slice(0, -1)}${micros}Z`;
}

export type LeaseDecision =
  | { action: 'create' }
  | { action: 'renew' }
  | { action: 'takeover'; previousHolder: string }
  | { action: 'wait'; holder: string; expiresAt: number };

/** What a replica should do with the Lease it just read. Pure. */
export function decideLease(lease: Lease | undefined, identity: string, nowMs: number): LeaseDecision {
  if (!lease) return { action: 'create' };
  const spec = lease.spec ?? {};
  const holder = spec.holderIdentity ?? '';
  if (holder === identity) return { action: 'renew' };
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  const duration = spec.leaseDurationSeconds;
  if (!holder || !Number.isFinite(renewed) || !duration || duration <= 0) return { action: 'takeover', previousHolder: holder };
  const expiresAt = renewed + duration * 1000;
  if (expiresAt <= nowMs) return { action: 'takeover', previousHolder: holder };
  return { action: 'wait', holder, expiresAt };
}

/** The Lease to write for a decision. Pure. */
export function nextLease(current: Lease | undefined, decision: LeaseDecision, o: { name: string; namespace: string; identity: string; durationSeconds: number; nowMs: number }): Lease {
  const now = microTime(o.nowMs);
  const spec = current?.spec ?? {};
  const base: Lease = current
    ? { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: o.name, namespace: o.namespace, resourceVersion: current.metadata.resourceVersion } }
    : { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: o.name, namespace: o.namespace } };
  switch (decision.action) {
    case 'create':
      return { ...base, spec: { holderIdentity: o.identity, leaseDurationSeconds: o.durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } };
    case 'renew':
      return { ...base, spec: { ...spec, holderIdentity: o.identity, leaseDurationSeconds: o.durationSeconds, renewTime: now, acquireTime: spec.acquireTime ?? now } };
    case 'takeover':
      return {
        ...base,
        spec: { holderIdentity: o.identity, leaseDurationSeconds: o.durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + (decision.previousHolder ? 1 : 0) },
      };
    case 'wait':
      throw new Error('nothing to write while another replica holds the lease');
  }
}

/** Graceful release: no holder and a one-second duration, so a standby takes over at its next try. */
export function releasedLease(current: Lease, nowMs: number): Lease {
  const now = microTime(nowMs);
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: current.metadata.name, namespace: current.metadata.namespace, resourceVersion: current.metadata.resourceVersion },
    spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
  };
}

export interface LeaderElectorOptions {
  client: KubeClient;
  name: string;
  namespace: string;
  identity: string;
  leaseDurationMs: number;
  /** How often the leader renews and a standby retries. */
  renewIntervalMs: number;
  log: Logger;
  clock?: Clock;
  onStartedLeading: () => void;
  onStoppedLeading: (reason: string) => void;
}

export class LeaderElector {
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private lastLease: Lease | undefined;
  private running: Promise<void> | undefined;
  private lastError: string | undefined;
  private observedHolder: string | undefined;
  private readonly clock: Clock;
  private readonly renewDeadlineMs: number;

  constructor(private readonly o: LeaderElectorOptions) {
    if (o.renewIntervalMs * 2 > o.leaseDurationMs) throw new Error('lease renew interval must be at most half the lease duration');
    this.clock = o.clock ?? systemClock;
    this.renewDeadlineMs = o.leaseDurationMs - o.renewIntervalMs;
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases/${encodeURIComponent(this.o.name)}`;
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** Undefined while the API answers; else the last error. */
  apiError(): string | undefined {
    return this.lastError;
  }

  start(): void {
    this.o.log.info({ lease: `${this.o.namespace}/${this.o.name}`, identity: this.o.identity }, 'leader election started');
    this.loop(0);
  }

  private loop(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.loop(this.o.renewIntervalMs);
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    const { client, log } = this.o;
    try {
      let current: Lease | undefined;
      try {
        current = (await client.request<Lease>('GET', this.path, { timeoutMs: this.o.renewIntervalMs })).body;
      } catch (err) {
        if (!(err instanceof KubeApiError && err.code === 404)) throw err;
      }
      this.lastError = undefined;
      if (this.stopped) return;
      const now = this.clock.now();
      const decision = decideLease(current, this.o.identity, now);
      if (decision.action === 'wait') {
        if (this.leading) this.stopLeading(`lease now held by ${decision.holder}`);
        if (this.observedHolder !== decision.holder) log.info({ holder: decision.holder }, 'standing by; another replica leads');
        this.observedHolder = decision.holder;
        this.lastLease = current;
        return;
      }
      const body = nextLease(current, decision, { name: this.o.name, namespace: this.o.namespace, identity: this.o.identity, durationSeconds: Math.ceil(this.o.leaseDurationMs / 1000), nowMs: now });
      const written = current
        ? await client.request<Lease>('PUT', this.path, { body, timeoutMs: this.o.renewIntervalMs })
        : await client.request<Lease>('POST', `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.o.namespace)}/leases`, { body, timeoutMs: this.o.renewIntervalMs });
      if (this.stopped) return;
      this.lastLease = written.body;
      this.observedHolder = this.o.identity;
      this.armDeadline();
      if (!this.leading) {
        this.leading = true;
        log.info({ action: decision.action, ...(decision.action === 'takeover' && decision.previousHolder ? { previousHolder: decision.previousHolder } : {}) }, 'became leader');
        this.o.onStartedLeading();
      }
    } catch (err) {
      if (err instanceof KubeApiError && (err.code === 409 || err.code === 422)) {
        // Someone else wrote first: we lost this round.
        if (this.leading) this.stopLeading('lease renewal conflicted; another replica took it');
        return;
      }
      this.lastError = (err as Error).message;
      log.warn({ err: { message: this.lastError }, leading: this.leading }, 'lease request failed');
    }
  }

  /** Stop leading if no renew succeeds within the renew deadline (a hung request included). */
  private armDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.leading) this.stopLeading('could not renew the lease in time');
    }, this.renewDeadlineMs);
  }

  private stopLeading(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    clearTimeout(this.deadline);
    this.o.log.warn({ reason }, 'lost leadership; stopped relaying');
    this.o.onStoppedLeading(reason);
  }

  /** Stop electing; a leader releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    await this.running?.catch(() => {});
    if (!this.leading) return;
    this.leading = false;
    this.o.onStoppedLeading('shutting down');
    try {
      const current = (await this.o.client.request<Lease>('GET', this.path, { timeoutMs: 5000 })).body;
      if (current.spec?.holderIdentity === this.o.identity) {
        await this.o.client.request('PUT', this.path, { body: releasedLease(current, this.clock.now()), timeoutMs: 5000 });
        this.o.log.info('lease released');
      }
    } catch (err) {
      this.o.log.warn({ err: { message: (err as Error).message } }, 'could not release the lease; a standby takes over when it expires');
    }
  }
}
