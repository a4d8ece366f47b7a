// POST /audit: the API server's audit webhook backend pushes `audit.k8s.io/v1`
// EventList batches here. Each write it reports on a watched resource becomes the
// same deduplicated job a watch event would make: a faster second source. The
// watch stays the source of truth (audit delivery is best-effort), so nothing
// here is relied on for correctness, and nothing here may crash the relay:
// malformed batches are 400, oversized ones 413, odd items are counted and skipped.
//
// Never log or keep an audit event's request/response objects: with a careless
// policy they carry Secret data. Only keys leave this file.
import crypto from 'node:crypto';
import fs from 'node:fs';
import express, { type ErrorRequestHandler, type Express } from 'express';
import type { Logger } from '../common/logger.ts';
import { isAsWritten, type CronJobLike } from '../common/cronjob-ownership.ts';
import { formatKey, isObjectName } from '../common/queue.ts';
import type { RelayMetrics } from './metrics.ts';
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, objectId, resourceFor, type KnownEntry, type ObjectMetaLite } from './resources.ts';

const WRITE_VERBS = new Set(['create', 'update', 'patch', 'delete']);

export interface AuditKey {
  key: string;
  resourceVersion?: string;
}

export interface AuditOutcome {
  keys: AuditKey[];
  ignored: number;
  unmapped: number;
  /** CronJob writes whose result is exactly as a worker wrote it (see isAsWritten): nothing to do. */
  ownWrites: number;
}

/** Looks up what the relay knows of an object (a CronJob's CronTab), when it is leading. */
export type KnownLookup = (resource: string, id: string) => KnownEntry | undefined;

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function metaOf(obj: unknown): ObjectMetaLite | undefined {
  if (!obj || typeof obj !== 'object') return undefined;
  const m = (obj as { metadata?: unknown }).metadata;
  return m && typeof m === 'object' ? (m as ObjectMetaLite) : undefined;
}

/** isAsWritten for an object from an audit event: untrusted JSON, any shape. */
function asWritten(obj: unknown): boolean {
  if (!obj || typeof obj !== 'object') return false;
  try {
    return isAsWritten(obj as CronJobLike);
  } catch {
    return false; // a malformed object is not the worker's: let the worker look at it
  }
}

/**
 * Turn an EventList into keys. Pure. Keeps writes (create/update/patch/delete) that
 * completed (stage ResponseComplete, 2xx, not dry-run) on watched resources.
 */
export function keysFromAuditEvents(items: unknown[], lookup: KnownLookup = () => undefined): AuditOutcome {
  const out: AuditOutcome = { keys: [], ignored: 0, unmapped: 0, ownWrites: 0 };
  for (const item of items) {
    if (!item || typeof item !== 'object') {
      out.ignored++;
      continue;
    }
    const ev = item as { stage?: unknown; verb?: unknown; requestURI?: unknown; objectRef?: unknown; responseStatus?: { code?: unknown }; responseObject?: unknown; requestObject?: unknown };
    const ref = (ev.objectRef && typeof ev.objectRef === 'object' ? ev.objectRef : undefined) as
      | { resource?: unknown; apiGroup?: unknown; namespace?: unknown; name?: unknown; resourceVersion?: unknown; subresource?: unknown }
      | undefined;
    const code = ev.responseStatus?.code;
    const dryRun = typeof ev.requestURI === 'string' && /[?&]dryRun=/.test(ev.requestURI);
    if (ev.stage !== 'ResponseComplete' || typeof ev.verb !== 'string' || !WRITE_VERBS.has(ev.verb) || !ref || dryRun || (typeof code === 'number' && (code < 200 || code > 299))) {
      out.ignored++;
      continue;
    }
    const resource = resourceFor(str(ref.apiGroup) ?? '', str(ref.resource));
    if (!resource) {
      out.ignored++;
      continue;
    }
    const meta = metaOf(ev.responseObject) ?? metaOf(ev.requestObject);
    const namespace = str(ref.namespace) ?? str(meta?.namespace);
    const name = str(ref.name) ?? str(meta?.name);
    if (!namespace || !name || !isObjectName(namespace, name)) {
      out.unmapped++;
      continue;
    }
    const resourceVersion = str(meta?.resourceVersion) ?? str(ref.resourceVersion);
    let key: string | undefined;
    if (resource.name === 'cronjobs') {
      // A CronJob counts only if managed; its key is its CronTab's. Without the object
      // (policy level Metadata) only the watch's known-set can say which CronTab.
      const labels = meta?.labels as Record<string, unknown> | undefined;
      if (meta && labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
        out.ignored++;
        continue;
      }
      // As the watch does: a CronJob left exactly as a worker wrote it (the worker's own
      // create or update, seen when the policy sends the object) needs no reconcile.
      // A status write still counts: its lastScheduleTime goes into the CronTab's status.
      if (ev.verb !== 'delete' && ref.subresource !== 'status' && asWritten(ev.responseObject)) {
        out.ownWrites++;
        continue;
      }
      key = (meta && resource.keyFor(namespace, name, meta)) || lookup(resource.name, objectId(namespace, name))?.key;
    } else {
      key = formatKey({ kind: resource.kind as 'Secret' | 'CronTab', namespace, name });
    }
    if (!key) {
      out.unmapped++;
      continue;
    }
    out.keys.push({ key, resourceVersion });
  }
  return out;
}

export interface AuditAppOptions {
  enqueue: (key: string, resourceVersion?: string) => void;
  lookup?: KnownLookup;
  /** Reads the expected bearer token; undefined = no token required. */
  token?: () => string | undefined;
  maxBodyBytes: number;
  metrics: RelayMetrics;
  log: Logger;
}

function sameToken(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** The express app for POST /audit. Knows no port, no certificate. */
export function createAuditApp(o: AuditAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  const reply = (res: express.Response, code: number, body: object) => {
    o.metrics.auditBatches.inc({ code: String(code) });
    res.status(code).json(body);
  };

  app.use('/audit', (req, res, next) => {
    const expected = o.token?.();
    if (expected === undefined) return next();
    const header = req.headers.authorization ?? '';
    const given = header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    if (!given || !sameToken(given, expected)) return reply(res, 401, { error: 'a valid bearer token is required' });
    next();
  });
  app.post('/audit', express.json({ limit: o.maxBodyBytes, type: () => true, strict: true }), (req, res) => {
    const body = req.body as { kind?: unknown; apiVersion?: unknown; items?: unknown } | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) return reply(res, 400, { error: 'body must be an audit.k8s.io/v1 EventList object' });
    if (body.kind !== 'EventList') return reply(res, 400, { error: `kind must be EventList, got ${typeof body.kind === 'string' ? JSON.stringify(body.kind.slice(0, 40)) : typeof body.kind}` });
    if (typeof body.apiVersion !== 'string' || !body.apiVersion.startsWith('audit.k8s.io/')) return reply(res, 400, { error: 'apiVersion must be audit.k8s.io/v1' });
    if (!Array.isArray(body.items)) return reply(res, 400, { error: 'items must be an array' });
    const outcome = keysFromAuditEvents(body.items, o.lookup);
    for (const k of outcome.keys) o.enqueue(k.key, k.resourceVersion);
    o.metrics.auditEvents.inc({ result: 'enqueued' }, outcome.keys.length);
    o.metrics.auditEvents.inc({ result: 'ignored' }, outcome.ignored);
    o.metrics.auditEvents.inc({ result: 'unmapped' }, outcome.unmapped);
    o.metrics.auditEvents.inc({ result: 'own_write' }, outcome.ownWrites);
    o.metrics.ownWriteSkips.inc({ resource: 'cronjobs' }, outcome.ownWrites);
    if (outcome.unmapped) o.metrics.badEvents.inc({ source: 'audit', reason: 'unmapped' }, outcome.unmapped);
    o.log.debug({ items: body.items.length, enqueued: outcome.keys.length, ignored: outcome.ignored, unmapped: outcome.unmapped, ownWrites: outcome.ownWrites }, 'audit batch');
    reply(res, 200, { enqueued: outcome.keys.length });
  });
  app.all('/audit', (_req, res) => {
    res.set('allow', 'POST');
    reply(res, 405, { error: 'only POST' });
  });
  app.use((_req, res) => void res.status(404).json({ error: 'not found' }));
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const e = err as { status?: number; type?: string; message?: string };
    const code = e.status === 413 || e.type === 'entity.too.large' ? 413 : e.status && e.status >= 400 && e.status < 500 ? 400 : 500;
    if (code === 500) o.log.error({ err: { message: e.message } }, 'audit batch failed');
    // Never echo the body back: a parse error's message can quote it.
    reply(res, code, { error: code === 413 ? `audit batch larger than ${o.maxBodyBytes} bytes` : code === 400 ? `malformed audit batch: ${e.type ?? 'bad request'}` : 'internal error' });
  };
  app.use(onError);
  return app;
}

/** A token read from a file, re-read when the file changes (a rotated Secret). */
export function tokenFromFile(file: string): () => string {
  let cached = { mtimeMs: -1, size: -1, token: '' };
  const read = () => {
    try {
      const st = fs.statSync(file);
      if (st.mtimeMs !== cached.mtimeMs || st.size !== cached.size) cached = { mtimeMs: st.mtimeMs, size: st.size, token: fs.readFileSync(file, 'utf8').trim() };
    } catch {
      // Mid-rotation the file can be briefly missing: keep the token we had.
    }
    return cached.token;
  };
  fs.accessSync(file, fs.constants.R_OK);
  if (!read()) throw new Error(`audit token file ${file} is empty`);
  return read;
}
