// Watch streams (contract §7): newline-delimited JSON events over a chunked 200,
// from a resourceVersion or with synthetic ADDED events, selectors applied per
// event, bookmarks, timeouts, 410 as an ERROR event followed by close.
//
// Ordering: history replay and subscription happen in one synchronous step, and the
// store calls listeners synchronously on commit, so a watcher sees every event once,
// in revision order. Memory: a watcher whose unsent output exceeds maxBufferBytes
// (a client that stopped reading) is closed; the client rewatches.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../common/logger.ts';
import type { Api, Selectors } from './api.ts';
import { toView } from './convert.ts';
import { storageOf } from './resources.ts';
import type { Store, StoreEvent } from './store.ts';
import { contentTypeFor, partialObjectMetadata } from './negotiate.ts';
import { toTableRowEvent, type IncludeObject } from './table.ts';
import { groupVersion, StatusError, type KubeObject, type ResourceInfo } from './types.ts';

export interface WatchSettings {
  /** How often a watch with allowWatchBookmarks gets a BOOKMARK (ms). */
  bookmarkIntervalMs: number;
  /** Default watch length when the client gives no timeoutSeconds: random in [min, 2·min). */
  minRequestTimeoutSeconds: number;
  /** Unsent bytes after which a slow watcher is dropped. */
  maxBufferBytes: number;
}

export const DEFAULT_WATCH_SETTINGS: WatchSettings = { bookmarkIntervalMs: 5_000, minRequestTimeoutSeconds: 1800, maxBufferBytes: 16 * 1024 * 1024 };

export interface WatchRequest {
  info: ResourceInfo;
  namespace?: string;
  selectors: Selectors;
  /** Parsed resourceVersion; undefined for unset or "0" (start with the current state). */
  resourceVersion?: number;
  allowBookmarks: boolean;
  sendInitialEvents: boolean;
  timeoutSeconds?: number;
  /** The negotiated output (negotiate.ts): objects, Table rows, or PartialObjectMetadata. */
  output: 'Object' | 'Table' | 'PartialObjectMetadata';
  includeObject?: IncludeObject;
}

class WatchStream {
  private unsubscribe?: () => void;
  private bookmarkTimer?: NodeJS.Timeout;
  private timeoutTimer?: NodeJS.Timeout;
  private closed = false;
  private heldWhilePaused: string[] = [];
  private tableHeaderSent = false;

  constructor(
    private readonly hub: WatchHub,
    private readonly res: ServerResponse,
    private readonly w: WatchRequest,
  ) {}

  start(store: Store, api: Api): void {
    const { info } = this.w;
    const bucket = storageOf(info);
    this.res.writeHead(200, {
      'content-type': contentTypeFor(this.w.output),
      'cache-control': 'no-cache, private',
      'x-content-type-options': 'nosniff',
    });
    this.res.flushHeaders();
    this.res.on('close', () => this.close());

    if (this.w.resourceVersion === undefined) {
      // Synthetic ADDED for the current state, then live events.
      for (const [, obj] of store.range(bucket, { namespace: this.w.info.namespaced ? this.w.namespace : undefined })) {
        if (api.matches(this.w.selectors, obj)) this.send('ADDED', obj);
      }
      if (this.w.sendInitialEvents) this.sendBookmark(store.currentRevision, true);
    } else {
      let backlog: StoreEvent[];
      try {
        backlog = store.eventsSince(this.w.resourceVersion, bucket);
      } catch (err) {
        if (err instanceof StatusError) {
          this.writeLine({ type: 'ERROR', object: err.toStatus() });
          this.end();
          return;
        }
        throw err;
      }
      for (const e of backlog) this.onEvent(e, api);
      if (this.w.sendInitialEvents) this.sendBookmark(store.currentRevision, true);
    }
    if (this.closed) return;
    this.unsubscribe = store.subscribe(bucket, (e) => this.onEvent(e, api));

    if (this.w.allowBookmarks) {
      this.bookmarkTimer = setInterval(() => this.sendBookmark(store.currentRevision), this.hub.settings.bookmarkIntervalMs);
      this.bookmarkTimer.unref();
    }
    const min = this.hub.settings.minRequestTimeoutSeconds;
    const seconds = this.w.timeoutSeconds ?? min * (1 + Math.random());
    this.timeoutTimer = setTimeout(() => {
      // A last bookmark lets the client resume from the newest revision.
      if (this.w.allowBookmarks) this.sendBookmark(store.currentRevision);
      this.end();
    }, seconds * 1000);
    this.timeoutTimer.unref();
  }

  private onEvent(e: StoreEvent, api: Api): void {
    if (this.closed) return;
    // A watch from a revision newer than the store's sees only what comes after it.
    if (this.w.resourceVersion !== undefined && e.rv <= this.w.resourceVersion) return;
    if (this.w.info.namespaced && this.w.namespace !== undefined && e.namespace !== this.w.namespace) return;
    const sel = this.w.selectors;
    const filtered = sel.labels.length > 0 || sel.fields.length > 0;
    if (!filtered) return this.send(e.type, e.object, e);
    const now = e.type !== 'DELETED' && api.matches(sel, e.object);
    const before = e.prev !== undefined && api.matches(sel, e.prev);
    if (e.type === 'DELETED') {
      if (before) this.send('DELETED', e.object, e);
    } else if (now && before) this.send('MODIFIED', e.object, e);
    else if (now) this.send('ADDED', e.object, e);
    else if (before) this.send('DELETED', e.object, e); // left the selection
  }

  private send(type: string, stored: KubeObject, event?: StoreEvent): void {
    const obj = toView(this.w.info, stored);
    if (this.w.output === 'Table') {
      const table = toTableRowEvent(obj, this.w.info, { includeObject: this.w.includeObject, withColumns: !this.tableHeaderSent });
      this.tableHeaderSent = true;
      this.writeLine({ type, object: table });
    } else if (this.w.output === 'PartialObjectMetadata') {
      this.writeLine({ type, object: partialObjectMetadata(obj) });
    } else {
      this.writeSerialized(this.hub.serialized(type, this.w.info, event, obj));
    }
  }

  sendBookmark(rv: number, initialEventsEnd = false): void {
    if (this.closed || this.hub.paused) return;
    const metadata: Record<string, unknown> = { resourceVersion: String(rv) };
    if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
    const object = { kind: this.w.info.kind, apiVersion: groupVersion(this.w.info), metadata };
    // Every event object goes through the transform, bookmarks included.
    this.writeLine({ type: 'BOOKMARK', object: this.w.output === 'PartialObjectMetadata' ? partialObjectMetadata(object) : object });
  }

  private writeLine(event: unknown): void {
    this.writeSerialized(JSON.stringify(event) + '\n');
  }

  private writeSerialized(line: string): void {
    if (this.closed) return;
    if (this.hub.paused) {
      this.heldWhilePaused.push(line);
      return;
    }
    this.res.write(line);
    if (this.res.writableLength > this.hub.settings.maxBufferBytes) {
      this.hub.log.warn({ resource: this.w.info.resource, buffered: this.res.writableLength }, 'watch client too slow; closing its watch');
      this.drop('reset');
    }
  }

  flushHeld(): void {
    const held = this.heldWhilePaused;
    this.heldWhilePaused = [];
    for (const line of held) {
      if (this.closed) return;
      this.res.write(line);
    }
  }

  /** Ends the stream cleanly (the client rewatches from its last revision). */
  end(): void {
    if (this.closed) return;
    this.flushHeld();
    this.close();
    this.res.end();
  }

  drop(mode: 'end' | 'reset'): void {
    if (mode === 'end') return this.end();
    this.close();
    this.res.destroy();
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    clearInterval(this.bookmarkTimer);
    clearTimeout(this.timeoutTimer);
    this.hub.remove(this);
  }
}

/** Every open watch, for fault injection, pausing and shutdown. */
export class WatchHub {
  private readonly streams = new Set<WatchStream>();
  paused = false;

  constructor(
    readonly settings: WatchSettings,
    readonly log: Logger,
  ) {}

  get size(): number {
    return this.streams.size;
  }

  /** Many watchers of one resource get the same event: serialise it once. */
  // Keyed by the store event, so cached lines go when the event leaves history.
  private readonly lines = new WeakMap<StoreEvent, Map<string, string>>();

  serialized(type: string, info: ResourceInfo, event: StoreEvent | undefined, view: KubeObject): string {
    if (!event) return JSON.stringify({ type, object: view }) + '\n';
    const key = `${type} ${groupVersion(info)} ${info.resource}`;
    let byView = this.lines.get(event);
    if (!byView) this.lines.set(event, (byView = new Map()));
    let line = byView.get(key);
    if (line === undefined) byView.set(key, (line = JSON.stringify({ type, object: view }) + '\n'));
    return line;
  }

  serve(store: Store, api: Api, _req: IncomingMessage, res: ServerResponse, w: WatchRequest): void {
    const s = new WatchStream(this, res, w);
    this.streams.add(s);
    s.start(store, api);
  }

  remove(s: WatchStream): void {
    this.streams.delete(s);
  }

  dropAll(mode: 'end' | 'reset' = 'end'): number {
    const all = [...this.streams];
    for (const s of all) s.drop(mode);
    return all.length;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const s of this.streams) s.flushHeld();
  }
}
