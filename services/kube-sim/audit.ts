// kube-sim's audit webhook backend, shaped like kube-apiserver's batch backend
// (--audit-webhook-config-file with --audit-webhook-mode=batch): completed API
// requests become `audit.k8s.io/v1` Events at stage ResponseComplete, buffered and
// POSTed as an EventList when the batch is full or its wait is over, one batch in
// flight at a time, retried with backoff, dropped (and logged) when the buffer is
// full or retries run out. Delivery is best-effort, as in the real thing.
//
// The built-in policy is the one kreconcile ships for operators
// (infra/audit/policy.yaml): level Metadata for writes, no request or response
// bodies (so never Secret data), stage RequestReceived omitted, reads not audited.
import http from 'node:http';
import https from 'node:https';
import type { Logger } from '../common/logger.ts';
import type { RequestInfo } from './server.ts';

export interface AuditWebhookOptions {
  /** Where to POST EventList batches (http:// or https://). */
  url: string;
  /** PEM bundle that signs the webhook's certificate (https). */
  caPem?: string;
  /** Sent as `Authorization: Bearer …`. */
  token?: string;
  /** Events per batch (kube-apiserver default 400). */
  batchMaxSize?: number;
  /** Longest an event waits for its batch to fill (kube-apiserver default 30 s; here 200 ms). */
  batchMaxWaitMs?: number;
  /** Events held at most; beyond, new events are dropped (kube-apiserver default 10,000). */
  bufferSize?: number;
  /** Attempts per batch before it is dropped. */
  maxAttempts?: number;
  initialBackoffMs?: number;
  /** Per-POST timeout. */
  timeoutMs?: number;
  log: Logger;
}

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'Metadata';
  auditID: string;
  stage: 'ResponseComplete';
  requestURI: string;
  verb: string;
  user: { username: string; groups?: string[] };
  sourceIPs: string[];
  userAgent?: string;
  objectRef: { resource: string; namespace?: string; name?: string; uid?: string; apiGroup?: string; apiVersion?: string; resourceVersion?: string; subresource?: string };
  responseStatus: { metadata: Record<string, never>; code: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations: Record<string, string>;
}

const AUDITED_VERBS = new Set(['create', 'update', 'patch', 'delete', 'deletecollection']);

/** Audit timestamps are MicroTime: six fractional digits. */
function micro(iso: string): string {
  return iso.replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The audit Event for a completed request, or undefined when the policy says None. Pure. */
export function toAuditEvent(info: RequestInfo): AuditEvent | undefined {
  if (!info.resource || !AUDITED_VERBS.has(info.verb)) return undefined;
  const meta = info.responseObject?.metadata;
  const objectRef: AuditEvent['objectRef'] = { resource: info.resource, apiVersion: info.version };
  if (info.group) objectRef.apiGroup = info.group;
  if (info.namespace) objectRef.namespace = info.namespace;
  // As kube-apiserver does, a create's name, uid and resourceVersion come from the response.
  const name = info.name || meta?.name;
  if (name) objectRef.name = name;
  if (meta?.uid) objectRef.uid = meta.uid;
  if (meta?.resourceVersion) objectRef.resourceVersion = meta.resourceVersion;
  if (info.subresource) objectRef.subresource = info.subresource;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: info.auditID,
    stage: 'ResponseComplete',
    requestURI: info.requestURI,
    verb: info.verb,
    user: { username: info.user.username, groups: info.user.groups },
    sourceIPs: info.sourceIPs,
    userAgent: info.userAgent,
    objectRef,
    responseStatus: { metadata: {}, code: info.code },
    requestReceivedTimestamp: micro(info.requestReceivedTimestamp),
    stageTimestamp: micro(info.stageTimestamp || info.requestReceivedTimestamp),
    annotations: {},
  };
}

export class AuditWebhookBackend {
  private buffer: AuditEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private dropped = 0;
  private sent = 0;
  private readonly o: Required<Omit<AuditWebhookOptions, 'caPem' | 'token'>> & Pick<AuditWebhookOptions, 'caPem' | 'token'>;
  private readonly agent: http.Agent;

  constructor(opts: AuditWebhookOptions) {
    this.o = { batchMaxSize: 400, batchMaxWaitMs: 200, bufferSize: 10_000, maxAttempts: 4, initialBackoffMs: 100, timeoutMs: 5_000, ...opts };
    const u = new URL(opts.url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`audit webhook URL must be http(s), got ${opts.url}`);
    this.agent = u.protocol === 'https:' ? new https.Agent({ keepAlive: true, ca: opts.caPem }) : new http.Agent({ keepAlive: true });
  }

  /** Counts for tests and logs. */
  stats(): { sent: number; dropped: number; buffered: number } {
    return { sent: this.sent, dropped: this.dropped, buffered: this.buffer.length };
  }

  /** A request listener for kube-sim's onRequestComplete. */
  readonly record = (info: RequestInfo): void => {
    if (this.closed) return; // events after close are not audited
    const ev = toAuditEvent(info);
    if (!ev) return;
    if (this.buffer.length >= this.o.bufferSize) {
      if (this.dropped++ % 1000 === 0) this.o.log.warn({ dropped: this.dropped }, 'audit buffer full; dropping events');
      return;
    }
    this.buffer.push(ev);
    if (this.buffer.length >= this.o.batchMaxSize) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.o.batchMaxWaitMs);
  };

  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending) return; // the running sender takes what accumulated when it is done
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      if (this.buffer.length && !this.closed) this.timer ??= setTimeout(() => this.kick(), this.o.batchMaxWaitMs);
    });
  }

  private async drain(): Promise<void> {
    while (this.buffer.length) {
      const batch = this.buffer.splice(0, this.o.batchMaxSize);
      await this.sendWithRetries(batch);
      if (this.buffer.length < this.o.batchMaxSize && !this.closed) return;
    }
  }

  private async sendWithRetries(items: AuditEvent[]): Promise<void> {
    const body = JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items });
    for (let attempt = 1; ; attempt++) {
      try {
        await this.post(body);
        this.sent += items.length;
        return;
      } catch (err) {
        if (attempt >= this.o.maxAttempts) {
          this.dropped += items.length;
          this.o.log.warn({ err: { message: (err as Error).message }, events: items.length }, 'audit webhook unreachable; batch dropped');
          return;
        }
        await new Promise((r) => setTimeout(r, this.o.initialBackoffMs * 2 ** (attempt - 1)));
      }
    }
  }

  private post(body: string): Promise<void> {
    const u = new URL(this.o.url);
    const lib = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': 'kube-sim-audit' };
    if (this.o.token) headers.authorization = `Bearer ${this.o.token}`;
    return new Promise((resolve, reject) => {
      const req = lib.request(u, { method: 'POST', headers, agent: this.agent, timeout: this.o.timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300 ? resolve() : reject(new Error(`audit webhook answered ${res.statusCode}`))));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error('audit webhook timed out')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Send what is buffered (best effort), then stop. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closed = true;
    await this.sending;
    while (this.buffer.length) await this.sendWithRetries(this.buffer.splice(0, this.o.batchMaxSize));
    this.agent.destroy();
  }
}
