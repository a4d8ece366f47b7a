// The webhook's HTTP layer, without port, TLS or environment (server.ts and
// main.ts add those): read the review, call the validator for its kind, answer.
// It must never take the cluster down with it: every path ends in an answer,
// bad input is a 4xx naming the problem, a bug is a 500 with a logged reason.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import contentType from 'content-type';
import express, { type NextFunction, type Request, type Response } from 'express';
import { clip } from '../common/bounded.ts';
import { REDACT_PATHS, type Logger } from '../common/logger.ts';
import { defaultPasswordPolicy, type PasswordPolicy } from '../common/password-policy.ts';
import type { ReviewResult, WebhookMetrics } from './metrics.ts';
import { parseReview, reviewResponse, statusBody, type AdmissionRequest, type Decision } from './review.ts';
import { validateCronTab } from './validators/crontab.ts';
import { validateSecret } from './validators/secret.ts';

/**
 * The API server caps a request at 3 MiB; an UPDATE review carries the object
 * and the oldObject, plus the envelope. Larger bodies are refused with 413.
 */
export const MAX_REVIEW_BYTES = 7 * 1024 * 1024;

export interface WebhookDeps {
  log: Logger;
  policy?: PasswordPolicy;
  metrics?: WebhookMetrics;
}

type Validator = (request: AdmissionRequest, policy: PasswordPolicy) => Decision;

/** Validators by `group/kind`; kinds not listed are allowed. */
const VALIDATORS = new Map<string, Validator>([
  ['/Secret', validateSecret],
  ['stable.example.com/CronTab', (request) => validateCronTab(request)],
]);

class HttpProblem extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
const badRequest = (message: string) => new HttpProblem(400, 'BadRequest', message);

export function validate(request: AdmissionRequest, policy: PasswordPolicy): Decision {
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return { allowed: true };
  const validator = VALIDATORS.get(`${request.kind.group}/${request.kind.kind}`);
  if (!validator) return { allowed: true };
  // A CREATE or UPDATE always carries the object; without it there is nothing to judge.
  if (request.object === null || typeof request.object !== 'object') {
    throw badRequest(`request.object is missing for ${request.operation}`);
  }
  return validator(request, policy);
}

/** Only `application/json` in UTF-8 (what the API server sends); anything else is 415. */
function checkContentType(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  let parsed: contentType.ContentType;
  try {
    parsed = contentType.parse(header ?? '');
  } catch {
    throw new HttpProblem(415, 'UnsupportedMediaType', 'content type must be application/json');
  }
  if (parsed.type !== 'application/json') throw new HttpProblem(415, 'UnsupportedMediaType', 'content type must be application/json');
  const charset = parsed.parameters.charset?.toLowerCase();
  if (charset && charset !== 'utf-8' && charset !== 'utf8') throw new HttpProblem(415, 'UnsupportedMediaType', `unsupported charset "${charset}"; use utf-8`);
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity') throw new HttpProblem(415, 'UnsupportedMediaType', `unsupported content encoding "${encoding}"`);
}

/**
 * The body as text, at most `limit` bytes. Written here rather than taken from
 * express.json(): reviews are UTF-8 JSON only, and body-parser's generality
 * (charsets, inflation, type matching) cost ~40 µs per review, a third of the
 * webhook's CPU per review on the benchmark.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks, size).toString('utf8'));
    };
    const onAbort = () => {
      cleanup();
      reject(badRequest('request body was not received completely'));
    };
    const cleanup = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('aborted', onAbort);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('aborted', onAbort);
  });
}

function tooLarge(): HttpProblem {
  return new HttpProblem(413, 'RequestEntityTooLarge', `request entity too large: limit is ${MAX_REVIEW_BYTES} bytes`);
}

/** A request field as copied into a log line: at most 256 characters (the API server's are far shorter; a direct caller's need not be). */
const logged = (field: string) => clip(field, 256);

/** An error for the log: message and stack only; enumerable extras could hold request data. */
function loggable(err: unknown): { message: string; stack?: string } {
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}

/** The POST /validate handler on plain Node request/response objects. */
export function createReviewHandler(deps: WebhookDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const policy = deps.policy ?? defaultPasswordPolicy;
  const { metrics } = deps;
  // Every line this app writes is built here from flat, chosen fields (never an
  // object from the request), so the wildcard redaction paths (ten times the
  // cost of the line itself, measured) are dropped; top-level names stay censored.
  const log = deps.log.child({}, { redact: { paths: REDACT_PATHS.filter((p) => !p.includes('*')), censor: '[REDACTED]' } });

  const fail = (res: ServerResponse, started: bigint, problem: HttpProblem, result: ReviewResult, extra: object = {}) => {
    const s = Number(process.hrtime.bigint() - started) / 1e9;
    metrics?.observe(undefined, undefined, result, s);
    const line = { status: problem.code, problem: problem.message, ms: +(s * 1000).toFixed(3), ...extra };
    if (problem.code >= 500) log.error(line, 'review failed');
    else log.warn(line, 'bad review request');
    // A body left unread (413, 415) is not worth draining: close the connection instead.
    if (!res.req.complete) res.setHeader('connection', 'close');
    send(res, problem.code, statusBody(problem.code, problem.reason, problem.message));
  };

  async function review(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      fail(res, started, new HttpProblem(405, 'MethodNotAllowed', `method ${req.method} not allowed; use POST`), 'bad_request');
      return;
    }
    let r: AdmissionRequest;
    try {
      checkContentType(req);
      const text = await readBody(req, MAX_REVIEW_BYTES);
      if (text.trim() === '') throw badRequest('body is empty; expected an AdmissionReview');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw badRequest('body is not valid JSON (an AdmissionReview object)');
      }
      const parsed = parseReview(body);
      if (!parsed.ok) throw badRequest(parsed.problem);
      r = parsed.request;
    } catch (err) {
      if (err instanceof HttpProblem) fail(res, started, err, 'bad_request');
      else fail(res, started, new HttpProblem(500, 'InternalError', 'internal error; see the webhook log'), 'error', { err: loggable(err) });
      return;
    }

    let decision: Decision;
    try {
      decision = validate(r, policy);
    } catch (err) {
      if (err instanceof HttpProblem) fail(res, started, err, 'bad_request', { uid: logged(r.uid) });
      else fail(res, started, new HttpProblem(500, 'InternalError', 'internal error while validating; see the webhook log'), 'error', { uid: logged(r.uid), err: loggable(err) });
      return;
    }
    const s = Number(process.hrtime.bigint() - started) / 1e9;
    metrics?.observe(r.kind.kind, r.operation, decision.allowed ? 'allowed' : 'denied', s);
    // One line per review. Never the object: only identity, decision and reason.
    log.info(
      {
        uid: logged(r.uid),
        kind: logged(r.kind.kind),
        namespace: logged(r.namespace),
        name: logged(r.name) || '(generated)',
        operation: r.operation,
        ...(r.subResource ? { subResource: logged(r.subResource) } : {}),
        ...(r.dryRun ? { dryRun: true } : {}),
        allowed: decision.allowed,
        ...(decision.allowed ? {} : { reason: decision.message }),
        ...(decision.warnings?.length ? { warnings: decision.warnings.length } : {}),
        ms: +(s * 1000).toFixed(3),
      },
      'review',
    );
    send(res, 200, reviewResponse(r.uid, decision));
  }

  // Last resort: nothing above should throw, but if it does the answer is a 500, not a hang.
  return (req, res) =>
    review(req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy();
      else fail(res, process.hrtime.bigint(), new HttpProblem(500, 'InternalError', 'internal error; see the webhook log'), 'error', { err: loggable(err) });
    });
}

function send(res: ServerResponse, code: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/** The express app: /validate (every method: non-POST is 405), and a JSON 404 for anything else. */
export function createApp(deps: WebhookDeps): express.Express {
  return buildApp(createReviewHandler(deps));
}

function buildApp(handleReview: (req: IncomingMessage, res: ServerResponse) => Promise<void>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // answers are never cached; hashing each one is wasted time
  app.all('/validate', (req: Request, res: Response) => void handleReview(req, res));
  app.use((req: Request, res: Response) => {
    send(res, 404, statusBody(404, 'NotFound', `no route for ${req.method} ${req.path}; the webhook serves POST /validate`));
  });
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) next(err);
    else send(res, 500, statusBody(500, 'InternalError', 'internal error; see the webhook log'));
  });
  return app;
}

/**
 * What the HTTPS server serves: POST /validate goes straight to the review
 * handler, everything else through the express app. Skipping express's
 * dispatch on the one hot path saves ~15 µs of a ~200 µs review (measured);
 * the handler is the same function the express app routes to.
 */
export function createListener(deps: WebhookDeps): RequestListener {
  const handleReview = createReviewHandler(deps);
  const app = buildApp(handleReview);
  return (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && (url === '/validate' || url.startsWith('/validate?'))) void handleReview(req, res);
    else app(req, res);
  };
}
