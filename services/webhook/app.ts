// The webhook's HTTP layer, without port, TLS or environment (server.ts and
// main.ts add those): parse the review, call the validator for its kind, answer.
// It must never take the cluster down with it: every path ends in an answer,
// bad input is a 4xx naming the problem, a bug is a 500 with a logged reason.
import express, { type NextFunction, type Request, type Response } from 'express';
import { defaultPasswordPolicy, type PasswordPolicy } from '../common/password-policy.ts';
import { REDACT_PATHS, type Logger } from '../common/logger.ts';
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
const VALIDATORS: Record<string, Validator> = {
  '/Secret': validateSecret,
  'stable.example.com/CronTab': (request) => validateCronTab(request),
};

export function validate(request: AdmissionRequest, policy: PasswordPolicy): Decision {
  if (request.operation === 'DELETE' || request.operation === 'CONNECT') return { allowed: true };
  const validator = VALIDATORS[`${request.kind.group}/${request.kind.kind}`];
  if (!validator) return { allowed: true };
  // A CREATE or UPDATE always carries the object; without it there is nothing to judge.
  if (request.object === null || typeof request.object !== 'object') {
    throw new BadReview(`request.object is missing for ${request.operation}`);
  }
  return validator(request, policy);
}

class BadReview extends Error {}

/** An error for the log: message and stack only; enumerable extras (a parser's raw body) could hold a Secret. */
function loggable(err: unknown): { message: string; stack?: string } {
  return err instanceof Error ? { message: err.message, stack: err.stack } : { message: String(err) };
}

export function createApp(deps: WebhookDeps): express.Express {
  const policy = deps.policy ?? defaultPasswordPolicy;
  const { metrics } = deps;
  // Every line this app writes is built here from flat, chosen fields (never an
  // object from the request), so the wildcard redaction paths (ten times the
  // cost of the line itself, measured) are dropped; top-level names stay censored.
  const log = deps.log.child({}, { redact: { paths: REDACT_PATHS.filter((p) => !p.includes('*')), censor: '[REDACTED]' } });
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false); // answers are never cached; hashing each one is wasted time

  const started = (res: Response): bigint => res.locals.started as bigint;
  const seconds = (res: Response) => Number(process.hrtime.bigint() - started(res)) / 1e9;

  const fail = (res: Response, code: number, reason: string, message: string, result: ReviewResult, extra: object = {}) => {
    const s = seconds(res);
    metrics?.observe(undefined, undefined, result, s);
    const line = { status: code, problem: message, ms: +(s * 1000).toFixed(3), ...extra };
    if (code >= 500) log.error(line, 'review failed');
    else log.warn(line, 'bad review request');
    res.status(code).json(statusBody(code, reason, message));
  };

  const review = app.route('/validate');
  review.post(
    (req: Request, res: Response, next: NextFunction) => {
      res.locals.started = process.hrtime.bigint();
      if (!req.headers['content-type'] || !req.is('application/json')) {
        fail(res, 415, 'UnsupportedMediaType', 'content type must be application/json', 'bad_request');
        return;
      }
      next();
    },
    express.json({ limit: MAX_REVIEW_BYTES, strict: true }),
    (req: Request, res: Response) => {
      if (req.body === undefined) {
        fail(res, 400, 'BadRequest', 'body is empty; expected an AdmissionReview', 'bad_request');
        return;
      }
      const parsed = parseReview(req.body);
      if (!parsed.ok) {
        fail(res, 400, 'BadRequest', parsed.problem, 'bad_request');
        return;
      }
      const r = parsed.request;
      let decision: Decision;
      try {
        decision = validate(r, policy);
      } catch (err) {
        if (err instanceof BadReview) fail(res, 400, 'BadRequest', err.message, 'bad_request', { uid: r.uid });
        else fail(res, 500, 'InternalError', 'internal error while validating; see the webhook log', 'error', { uid: r.uid, err: loggable(err) });
        return;
      }
      const s = seconds(res);
      metrics?.observe(r.kind.kind, r.operation, decision.allowed ? 'allowed' : 'denied', s);
      // One line per review. Never the object: only identity, decision and reason.
      log.info(
        {
          uid: r.uid,
          kind: r.kind.kind,
          namespace: r.namespace,
          name: r.name || '(generated)',
          operation: r.operation,
          ...(r.subResource ? { subResource: r.subResource } : {}),
          ...(r.dryRun ? { dryRun: true } : {}),
          allowed: decision.allowed,
          ...(decision.allowed ? {} : { reason: decision.message }),
          ...(decision.warnings?.length ? { warnings: decision.warnings.length } : {}),
          ms: +(s * 1000).toFixed(3),
        },
        'review',
      );
      const answer = JSON.stringify(reviewResponse(r.uid, decision));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer);
    },
  );
  review.all((req: Request, res: Response) => {
    res.locals.started = process.hrtime.bigint();
    res.setHeader('allow', 'POST');
    fail(res, 405, 'MethodNotAllowed', `method ${req.method} not allowed; use POST`, 'bad_request');
  });

  app.use((req: Request, res: Response) => {
    res.status(404).json(statusBody(404, 'NotFound', `no route for ${req.method} ${req.path}; the webhook serves POST /validate`));
  });

  // Errors from the body parser carry a status and a type; anything else is a bug.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    res.locals.started ??= process.hrtime.bigint();
    const type = (err as { type?: string }).type;
    switch (type) {
      case 'entity.too.large':
        fail(res, 413, 'RequestEntityTooLarge', `request entity too large: limit is ${MAX_REVIEW_BYTES} bytes`, 'bad_request');
        return;
      case 'entity.parse.failed':
        fail(res, 400, 'BadRequest', 'body is not valid JSON (an AdmissionReview object)', 'bad_request');
        return;
      case 'charset.unsupported':
      case 'encoding.unsupported':
        fail(res, 415, 'UnsupportedMediaType', (err as Error).message, 'bad_request');
        return;
      case 'request.aborted':
      case 'request.size.invalid':
      case 'stream.encoding.set':
        fail(res, 400, 'BadRequest', (err as Error).message, 'bad_request');
        return;
      default:
        fail(res, 500, 'InternalError', 'internal error; see the webhook log', 'error', { err: loggable(err) });
    }
  });
  return app;
}
