// Validating admission webhooks as kube-apiserver dispatches them (contract §8):
// ValidatingWebhookConfiguration rules and selectors pick the webhooks, every matching one
// gets an AdmissionReview v1 POST in parallel, and their answers become a denial
// (the webhook's code and message), a call failure (failurePolicy decides) or warnings.
//
// Local deviations, on purpose:
// - `http://` URLs are accepted (a real apiserver insists on https), for tests and local runs.
// - `clientConfig.service` is not resolved (there is no cluster DNS here): it is a call
//   failure naming the `https://<name>.<namespace>.svc:<port><path>` it would have called.
// - `matchConditions` are real CEL (@marcbachmann/cel-js) over `object`, `oldObject`,
//   `request` and `namespaceObject`; `authorizer` is not available and fails evaluation.
// - Equivalent matchPolicy needs the caller's `equivalents`/`convert`; without them it
//   behaves like Exact.
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { evaluate as evaluateCel } from '@marcbachmann/cel-js';
import type { Logger } from 'pino';
import type { Admission, AdmissionAttributes } from './api.ts';
import { labelSelectorFromObject, matchLabels, type LabelSelectorObject } from './selectors.ts';
import { StatusError, type KubeObject, type ResourceInfo } from './types.ts';

export interface AdmissionDispatcherOptions {
  /** Every stored ValidatingWebhookConfiguration. */
  listConfigurations: () => KubeObject[];
  getNamespace: (name: string) => KubeObject | undefined;
  log?: Logger;
  /** Other resources serving the same objects (e.g. core and events.k8s.io Events), for matchPolicy Equivalent. */
  equivalents?: (r: ResourceInfo) => ResourceInfo[];
  /** The object as `to` serves it, for a webhook matched through an equivalent resource. */
  convert?: (obj: KubeObject, to: ResourceInfo) => KubeObject;
}

type Obj = Record<string, any>;

interface Webhook {
  name: string;
  clientConfig?: { url?: string; caBundle?: string; service?: { namespace?: string; name?: string; path?: string; port?: number } };
  rules?: Rule[];
  failurePolicy?: 'Ignore' | 'Fail';
  matchPolicy?: 'Exact' | 'Equivalent';
  namespaceSelector?: LabelSelectorObject;
  objectSelector?: LabelSelectorObject;
  sideEffects?: string;
  timeoutSeconds?: number;
  admissionReviewVersions?: string[];
  matchConditions?: { name: string; expression: string }[];
}

interface Rule {
  operations?: string[];
  apiGroups?: string[];
  apiVersions?: string[];
  resources?: string[];
  scope?: '*' | 'Cluster' | 'Namespaced';
}

/** Warnings the webhooks gave along with a rejection: send them as `Warning` headers on the error. */
export function admissionWarnings(err: unknown): string[] {
  const w = (err as { warnings?: unknown } | null)?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}

/** A webhook that could not give an answer: failurePolicy decides what that means. */
class CallError extends Error {
  constructor(readonly webhook: string, reason: string) {
    super(`failed calling webhook ${JSON.stringify(webhook)}: ${reason}`);
  }
}

/** Requests on webhook configurations themselves never go to webhooks, so a bad webhook cannot lock itself in. */
const EXEMPT_RESOURCES = new Set([
  'validatingwebhookconfigurations',
  'mutatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
]);

const DEFAULT_TIMEOUT_SECONDS = 10;
const MAX_RESPONSE_BYTES = 3 * 1024 * 1024;

function ruleMatches(rule: Rule, r: ResourceInfo, subResource: string, operation: string): boolean {
  const has = (list: string[] | undefined, v: string) => (list ?? []).some((x) => x === '*' || x === v);
  if (!has(rule.operations, operation)) return false;
  if (!has(rule.apiGroups, r.group)) return false;
  if (!has(rule.apiVersions, r.version)) return false;
  const resourceMatch = (rule.resources ?? []).some((entry) => {
    const slash = entry.indexOf('/');
    const res = slash < 0 ? entry : entry.slice(0, slash);
    const sub = slash < 0 ? '' : entry.slice(slash + 1);
    return (res === '*' || res === r.resource) && (sub === '*' || sub === subResource);
  });
  if (!resourceMatch) return false;
  const scope = rule.scope ?? '*';
  if (scope === 'Namespaced') return r.namespaced;
  if (scope === 'Cluster') return !r.namespaced;
  return true;
}

function labelsOf(o: KubeObject | null | undefined): Record<string, string> | undefined {
  return o?.metadata?.labels;
}

function isNamespaceResource(r: ResourceInfo): boolean {
  return r.group === '' && r.resource === 'namespaces';
}

/** Webhook selectors are validated when the configuration is stored; a broken one here matches nothing. */
function selectorMatches(sel: LabelSelectorObject | undefined, labels: Record<string, string> | undefined): boolean {
  if (!sel) return true;
  try {
    return matchLabels(labelSelectorFromObject(sel), labels);
  } catch {
    return false;
  }
}

function gvk(r: ResourceInfo) {
  return { group: r.group, version: r.version, kind: r.kind };
}
function gvr(r: ResourceInfo) {
  return { group: r.group, version: r.version, resource: r.resource };
}

export class AdmissionDispatcher implements Admission {
  constructor(private readonly opts: AdmissionDispatcherOptions) {}

  /** Resolves with the webhooks' warnings when every matching webhook allows; throws StatusError otherwise. */
  async validate(attrs: AdmissionAttributes): Promise<{ warnings: string[] }> {
    if (attrs.resource.group === 'admissionregistration.k8s.io' && EXEMPT_RESOURCES.has(attrs.resource.resource)) return { warnings: [] };
    const invocations = this.matching(attrs);
    if (invocations.length === 0) return { warnings: [] };

    const results = await Promise.all(invocations.map((inv) => this.invoke(inv, attrs).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    )));
    const warnings: string[] = [];
    let firstError: unknown;
    for (const [i, r] of results.entries()) {
      if (r.ok) {
        warnings.push(...r.value);
        continue;
      }
      const hook = invocations[i]!.webhook;
      if (r.error instanceof CallError) {
        if ((hook.failurePolicy ?? 'Fail') === 'Ignore') {
          this.opts.log?.warn({ webhook: hook.name, err: r.error.message }, 'failed calling webhook, failing open');
          continue;
        }
        this.opts.log?.warn({ webhook: hook.name, err: r.error.message }, 'failed calling webhook, failing closed');
        firstError ??= new StatusError(500, 'InternalError', `Internal error occurred: ${r.error.message}`, { causes: [{ message: r.error.message }] });
        continue;
      }
      if (r.error instanceof Denial) {
        warnings.push(...r.error.warnings);
        firstError ??= r.error.status;
        continue;
      }
      firstError ??= r.error;
    }
    if (firstError) {
      // Warnings reach the client with a denial too (Warning headers on the error response).
      if (firstError instanceof StatusError) Object.assign(firstError, { warnings });
      throw firstError;
    }
    return { warnings };
  }

  /** The webhooks this request goes to, in configuration-name order, with the resource each matched through. */
  private matching(attrs: AdmissionAttributes): Invocation[] {
    const configs = [...this.opts.listConfigurations()].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
    const out: Invocation[] = [];
    for (const config of configs) {
      for (const webhook of ((config as Obj).webhooks ?? []) as Webhook[]) {
        const matchedAs = this.matchedResource(webhook, attrs);
        if (!matchedAs) continue;
        if (!this.namespaceMatches(webhook, attrs)) continue;
        // As kube-apiserver's object matcher: an absent object (oldObject on CREATE, object on DELETE) matches nothing.
        const objectMatches = (o: KubeObject | null | undefined) => !!o && selectorMatches(webhook.objectSelector, labelsOf(o));
        if (webhook.objectSelector && Object.keys(webhook.objectSelector).length && !objectMatches(attrs.object) && !objectMatches(attrs.oldObject)) continue;
        out.push({ webhook, matchedAs });
      }
    }
    return out;
  }

  private matchedResource(webhook: Webhook, attrs: AdmissionAttributes): ResourceInfo | undefined {
    const rules = webhook.rules ?? [];
    const direct = (r: ResourceInfo) => rules.some((rule) => ruleMatches(rule, r, attrs.subResource, attrs.operation));
    if (direct(attrs.resource)) return attrs.resource;
    if ((webhook.matchPolicy ?? 'Equivalent') !== 'Equivalent' || !this.opts.equivalents) return undefined;
    return this.opts.equivalents(attrs.resource).find(direct);
  }

  private namespaceMatches(webhook: Webhook, attrs: AdmissionAttributes): boolean {
    const sel = webhook.namespaceSelector;
    if (!sel || (!sel.matchLabels && !sel.matchExpressions)) return true;
    if (isNamespaceResource(attrs.resource)) {
      // A Namespace is judged by its own labels.
      return selectorMatches(sel, labelsOf(attrs.object ?? attrs.oldObject));
    }
    if (!attrs.resource.namespaced) return true;
    return selectorMatches(sel, labelsOf(this.opts.getNamespace(attrs.namespace)));
  }

  private async invoke(inv: Invocation, attrs: AdmissionAttributes): Promise<string[]> {
    const { webhook, matchedAs } = inv;
    const convert = (o: KubeObject | null) => (o && matchedAs !== attrs.resource && this.opts.convert ? this.opts.convert(o, matchedAs) : o);
    const uid = randomUUID();
    const request: Obj = {
      uid,
      kind: gvk(matchedAs),
      resource: gvr(matchedAs),
      requestKind: gvk(attrs.resource),
      requestResource: gvr(attrs.resource),
      name: attrs.name,
      namespace: attrs.namespace,
      operation: attrs.operation,
      userInfo: attrs.userInfo,
      object: convert(attrs.object),
      oldObject: convert(attrs.oldObject),
      dryRun: attrs.dryRun,
      options: attrs.options,
    };
    if (attrs.subResource) {
      request.subResource = attrs.subResource;
      request.requestSubResource = attrs.subResource;
    }
    if (!request.name) delete request.name;
    if (!request.namespace) delete request.namespace;

    if (attrs.dryRun && webhook.sideEffects !== 'None' && webhook.sideEffects !== 'NoneOnDryRun') {
      throw new StatusError(400, 'BadRequest', `admission webhook ${JSON.stringify(webhook.name)} does not support dry run`);
    }
    if (webhook.matchConditions?.length && !this.conditionsHold(webhook, request, attrs)) return [];

    const review = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
    const response = await this.post(webhook, review);
    return this.interpret(webhook, uid, response);
  }

  /** All matchConditions true → call; any false → skip; an evaluation error is a call failure. */
  private conditionsHold(webhook: Webhook, request: Obj, attrs: AdmissionAttributes): boolean {
    const namespaceObject = attrs.resource.namespaced ? this.opts.getNamespace(attrs.namespace) ?? null : null;
    const activation = { object: request.object, oldObject: request.oldObject, request, namespaceObject };
    for (const c of webhook.matchConditions ?? []) {
      let result: unknown;
      try {
        result = evaluateCel(c.expression, activation);
      } catch (err) {
        const why = (err as Error).message.split('\n')[0];
        throw new CallError(webhook.name, `failed evaluating match conditions: matchCondition ${JSON.stringify(c.name)}: ${why}`);
      }
      if (typeof result !== 'boolean') {
        throw new CallError(webhook.name, `failed evaluating match conditions: matchCondition ${JSON.stringify(c.name)} must evaluate to bool`);
      }
      if (!result) return false;
    }
    return true;
  }

  private post(webhook: Webhook, review: unknown): Promise<unknown> {
    const timeoutSeconds = webhook.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
    const cc = webhook.clientConfig ?? {};
    let base: string;
    if (cc.url) {
      base = cc.url;
    } else if (cc.service) {
      const s = cc.service;
      const url = `https://${s.name}.${s.namespace}.svc:${s.port ?? 443}${s.path ?? ''}${withTimeout('', timeoutSeconds)}`;
      return Promise.reject(new CallError(webhook.name, `failed to call webhook: Post ${JSON.stringify(url)}: dial tcp: lookup ${s.name}.${s.namespace}.svc: no such host`));
    } else {
      return Promise.reject(new CallError(webhook.name, 'failed to call webhook: no clientConfig url or service'));
    }
    const target = withTimeout(base, timeoutSeconds);
    const failed = (why: string) => new CallError(webhook.name, `failed to call webhook: Post ${JSON.stringify(target)}: ${why}`);

    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return Promise.reject(failed('invalid URL'));
    }
    const body = Buffer.from(JSON.stringify(review));
    const options: https.RequestOptions = {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json, */*', 'Content-Length': body.length },
      agent: false, // one connection per call: nothing pooled outlives the request
    };
    if (url.protocol === 'https:' && cc.caBundle) options.ca = Buffer.from(cc.caBundle, 'base64').toString('utf8');
    const transport = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!transport) return Promise.reject(failed(`unsupported protocol scheme "${url.protocol.replace(/:$/, '')}"`));

    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const req = transport.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy();
            finish(() => reject(failed('response body too large')));
            return;
          }
          chunks.push(c);
        });
        res.on('error', (err) => finish(() => reject(failed(goError(err, url)))));
        res.on('end', () => finish(() => {
          const text = Buffer.concat(chunks).toString('utf8');
          const code = res.statusCode ?? 0;
          if (code < 200 || code > 299) {
            reject(new CallError(webhook.name, `failed to call webhook: ${httpFailure(code, text)}`));
            return;
          }
          try {
            resolve(JSON.parse(text));
          } catch (err) {
            reject(new CallError(webhook.name, `failed to call webhook: couldn't get version/kind; json parse error: ${(err as Error).message}`));
          }
        }));
      });
      const timer = setTimeout(() => {
        finish(() => reject(failed('context deadline exceeded')));
        req.destroy();
      }, timeoutSeconds * 1000);
      req.on('error', (err) => finish(() => reject(failed(goError(err, url)))));
      req.end(body);
    });
  }

  private interpret(webhook: Webhook, uid: string, body: unknown): string[] {
    const invalid = (why: string) => new CallError(webhook.name, `received invalid webhook response: ${why}`);
    const b = (body ?? {}) as Obj;
    if (b.apiVersion !== 'admission.k8s.io/v1' || b.kind !== 'AdmissionReview') {
      throw invalid(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${b.apiVersion ?? ''}, Kind=${b.kind ?? ''}`);
    }
    const response = b.response as Obj | undefined;
    if (!response || typeof response !== 'object') throw invalid('webhook response was absent');
    if (response.uid !== uid) throw invalid(`expected response.uid=${JSON.stringify(uid)}, got ${JSON.stringify(response.uid ?? '')}`);
    if (response.patch !== undefined || response.patchType !== undefined) throw invalid('validating webhooks may not return patches');
    const warnings = Array.isArray(response.warnings) ? response.warnings.filter((w: unknown): w is string => typeof w === 'string') : [];
    if (response.allowed === true) return warnings;
    throw new Denial(denialStatus(webhook.name, response.status), warnings);
  }
}

interface Invocation {
  webhook: Webhook;
  /** The resource the webhook's rules matched: the request's own, or an equivalent one. */
  matchedAs: ResourceInfo;
}

class Denial extends Error {
  constructor(readonly status: StatusError, readonly warnings: string[]) {
    super(status.message);
  }
}

/** How kube-apiserver turns a webhook's rejection into the client's Status (webhook/errors.ToStatusErr). */
export function denialStatus(webhookName: string, status: unknown): StatusError {
  const s = (status && typeof status === 'object' ? status : {}) as Obj;
  const deniedBy = `admission webhook ${JSON.stringify(webhookName)} denied the request`;
  const code = typeof s.code === 'number' && s.code >= 400 ? s.code : 400;
  const reason = typeof s.reason === 'string' ? s.reason : '';
  let message: string;
  if (typeof s.message === 'string' && s.message) message = `${deniedBy}: ${s.message}`;
  else if (reason) message = `${deniedBy}: ${reason}`;
  else message = `${deniedBy} without explanation`;
  const details = s.details && typeof s.details === 'object' ? s.details : undefined;
  return new StatusError(code, reason, message, details);
}

function withTimeout(url: string, timeoutSeconds: number): string {
  return `${url}${url.includes('?') ? '&' : '?'}timeout=${timeoutSeconds}s`;
}

/** Node's socket errors in the words Go's net package uses, which clients and people recognise. */
function goError(err: NodeJS.ErrnoException, url: URL): string {
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const hostPort = `${url.hostname.replace(/^\[|\]$/g, '')}:${port}`;
  switch (err.code) {
    case 'ECONNREFUSED': return `dial tcp ${hostPort}: connect: connection refused`;
    case 'ENOTFOUND': return `dial tcp: lookup ${url.hostname}: no such host`;
    case 'ECONNRESET': return 'read: connection reset by peer';
    case 'EHOSTUNREACH': return `dial tcp ${hostPort}: connect: no route to host`;
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return 'tls: failed to verify certificate: x509: certificate signed by unknown authority';
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `tls: failed to verify certificate: x509: certificate is not valid for ${url.hostname}`;
    case 'CERT_HAS_EXPIRED':
      return 'tls: failed to verify certificate: x509: certificate has expired or is not yet valid';
    default: return err.message;
  }
}

/** client-go's words for a non-2xx answer that is not a Status. */
function httpFailure(code: number, body: string): string {
  try {
    const s = JSON.parse(body) as Obj;
    if (s?.kind === 'Status' && typeof s.message === 'string') return s.message;
  } catch {
    // not JSON: fall through
  }
  const text = body.trim().slice(0, 256);
  if (code >= 500 && text) return `an error on the server (${JSON.stringify(text)}) has prevented the request from succeeding`;
  return `the server responded with the status code ${code} but did not return more information`;
}
