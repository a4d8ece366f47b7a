// Label and field selectors as kube-apiserver parses and matches them (apimachinery's
// labels.Parse and fields.ParseSelector), for list, watch and webhook selectors.
import { StatusError } from './types.ts';

export type LabelOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';

/** One ANDed term. `k=v` is `In [v]`, `k!=v` is `NotIn [v]`, as apimachinery normalises them. */
export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

export type FieldOperator = '=' | '!=';

export interface FieldRequirement {
  field: string;
  operator: FieldOperator;
  value: string;
}

function parseError(detail: string): StatusError {
  return new StatusError(400, 'BadRequest', `unable to parse requirement: ${detail}`);
}

// ---------------------------------------------------------------- label selector lexer

type TokenKind = 'ident' | 'in' | 'notin' | '=' | '==' | '!=' | '!' | '(' | ')' | ',' | '>' | '<' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
}

const SPECIAL = new Set(['!', '=', '(', ')', ',', '<', '>']);
const WHITESPACE = /\s/;

function lex(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (WHITESPACE.test(c)) {
      i++;
      continue;
    }
    if (SPECIAL.has(c)) {
      const two = input.slice(i, i + 2);
      if (two === '==' || two === '!=') {
        tokens.push({ kind: two, text: two });
        i += 2;
      } else {
        tokens.push({ kind: c as TokenKind, text: c });
        i++;
      }
      continue;
    }
    let j = i;
    while (j < input.length && !SPECIAL.has(input[j]!) && !WHITESPACE.test(input[j]!)) j++;
    const text = input.slice(i, j);
    tokens.push({ kind: text === 'in' ? 'in' : text === 'notin' ? 'notin' : 'ident', text });
    i = j;
  }
  tokens.push({ kind: 'end', text: '' });
  return tokens;
}

// ---------------------------------------------------------------- key / value validation

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_PART_HINT =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/** Why `key` is not a qualified name (`[prefix/]name`), or undefined when it is. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined) {
    if (prefix.length === 0) return 'prefix part must be non-empty';
    if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))
      return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
  }
  if (name.length === 0) return 'name part must be non-empty';
  if (name.length > 63) return 'name part must be no more than 63 characters';
  if (!NAME_PART.test(name)) return NAME_PART_HINT;
  return undefined;
}

/** Why `value` is not a label value, or undefined when it is (the empty string is valid). */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63) return 'must be no more than 63 characters';
  if (value !== '' && !NAME_PART.test(value))
    return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
  return undefined;
}

function checkedRequirement(key: string, operator: LabelOperator, values: string[]): LabelRequirement {
  const keyProblem = labelKeyProblem(key);
  if (keyProblem) throw parseError(`key: Invalid value: ${JSON.stringify(key)}: ${keyProblem}`);
  if ((operator === 'In' || operator === 'NotIn') && values.length === 0)
    throw parseError(`values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty`);
  if (operator === 'Gt' || operator === 'Lt') {
    if (values.length !== 1 || !/^-?\d+$/.test(values[0]!))
      throw parseError(`values[0]: Invalid value: ${JSON.stringify(values[0] ?? '')}: for 'Gt', 'Lt' operators, the value must be an integer`);
  } else {
    values.forEach((v, i) => {
      const problem = labelValueProblem(v);
      if (problem) throw parseError(`values[${i}][${key}]: Invalid value: ${JSON.stringify(v)}: ${problem}`);
    });
  }
  return { key, operator, values };
}

// ---------------------------------------------------------------- label selector parser

/**
 * Parses a `labelSelector` query value. Comma = AND. The empty string selects everything
 * (returns []). Bad syntax is a 400 BadRequest `unable to parse requirement: …`.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const tokens = lex(selector);
  let pos = 0;
  const peek = (): Token => tokens[pos]!;
  const next = (): Token => tokens[pos++]!;
  // In value position keywords are plain words (`k=in` selects the value "in").
  const isWord = (t: Token): boolean => t.kind === 'ident' || t.kind === 'in' || t.kind === 'notin';

  const requirements: LabelRequirement[] = [];
  if (peek().kind === 'end') return requirements;

  for (;;) {
    const start = peek();
    if (start.kind !== 'ident' && start.kind !== '!')
      throw parseError(`found '${start.text}', expected: !, identifier, or 'end of string'`);
    requirements.push(parseRequirement());
    const sep = next();
    if (sep.kind === 'end') return requirements;
    if (sep.kind !== ',') throw parseError(`found '${sep.text}', expected: ',' or 'end of string'`);
    const after = peek();
    if (after.kind !== 'ident' && after.kind !== '!') throw parseError(`found '${after.text}', expected: identifier after ','`);
  }

  function parseRequirement(): LabelRequirement {
    let negated = false;
    if (peek().kind === '!') {
      next();
      negated = true;
    }
    const keyToken = next();
    if (keyToken.kind !== 'ident') throw parseError(`found '${keyToken.text}', expected: identifier`);
    const key = keyToken.text;
    const ahead = peek();
    if (ahead.kind === 'end' || ahead.kind === ',') return checkedRequirement(key, negated ? 'DoesNotExist' : 'Exists', []);
    if (negated) throw parseError(`invalid token: ${ahead.text}, expected ',' or 'end of string' after DoesNotExistToken`);

    const op = next();
    switch (op.kind) {
      case 'in':
      case 'notin':
        return checkedRequirement(key, op.kind === 'in' ? 'In' : 'NotIn', parseValueSet());
      case '=':
      case '==':
      case '!=':
        return checkedRequirement(key, op.kind === '!=' ? 'NotIn' : 'In', [parseExactValue()]);
      case '>':
      case '<':
        return checkedRequirement(key, op.kind === '>' ? 'Gt' : 'Lt', [parseExactValue()]);
      default:
        throw parseError(`found '${op.text}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }

  function parseExactValue(): string {
    const t = peek();
    if (t.kind === 'end' || t.kind === ',') return ''; // `k=` selects the empty value
    if (!isWord(t)) throw parseError(`found '${t.text}', expected: identifier`);
    next();
    return t.text;
  }

  function parseValueSet(): string[] {
    const open = next();
    if (open.kind !== '(') throw parseError(`found '${open.text}', expected: '('`);
    const values = new Set<string>();
    // Mirrors apimachinery: `()` and `(a,)` contribute an empty value.
    for (;;) {
      const t = peek();
      if (isWord(t)) {
        next();
        values.add(t.text);
        const after = next();
        if (after.kind === ')') return [...values].sort();
        if (after.kind !== ',') throw parseError(`found '${after.text}', expected: ',' or ')'`);
      } else if (t.kind === ',') {
        next();
        values.add('');
      } else if (t.kind === ')') {
        next();
        values.add('');
        return [...values].sort();
      } else {
        throw parseError(`found '${t.text}', expected: ',', or identifier`);
      }
    }
  }
}

export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/**
 * A metav1.LabelSelector (webhook namespaceSelector/objectSelector). `{}` and undefined select
 * everything. An invalid selector is a 400 BadRequest naming the bad part.
 */
export function labelSelectorFromObject(sel?: LabelSelectorObject | null): LabelRequirement[] {
  if (!sel) return [];
  const reqs: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(sel.matchLabels ?? {})) reqs.push(checkedRequirement(key, 'In', [String(value)]));
  for (const expr of sel.matchExpressions ?? []) {
    const values = expr.values ?? [];
    switch (expr.operator) {
      case 'In':
      case 'NotIn':
        reqs.push(checkedRequirement(expr.key, expr.operator, [...new Set(values)].sort()));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length) throw parseError(`values: Invalid value: ${JSON.stringify(values)}: values set must be empty for exists and does not exist`);
        reqs.push(checkedRequirement(expr.key, expr.operator, []));
        break;
      default:
        throw parseError(`operator: Unsupported value: ${JSON.stringify(expr.operator)}: supported values: "In", "NotIn", "Exists", "DoesNotExist"`);
    }
  }
  return reqs;
}

/** True when every requirement holds for these labels (absent labels = no labels). */
export function matchLabels(reqs: readonly LabelRequirement[], labels?: Record<string, string> | null): boolean {
  const set = labels ?? {};
  return reqs.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(set, r.key);
    const value = has ? set[r.key]! : undefined;
    switch (r.operator) {
      case 'In':
        return has && r.values.includes(value!);
      case 'NotIn':
        return !has || !r.values.includes(value!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'Gt':
      case 'Lt': {
        if (!has || !/^-?\d+$/.test(value!)) return false;
        const a = BigInt(value!);
        const b = BigInt(r.values[0]!);
        return r.operator === 'Gt' ? a > b : a < b;
      }
    }
  });
}

// ---------------------------------------------------------------- field selectors

/** Splits on commas not escaped by a backslash; keeps the escapes for the term parser. */
function splitUnescaped(s: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      current += c + s[i + 1];
      i++;
    } else if (c === sep) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(v: string, term: string): string {
  let out = '';
  for (let i = 0; i < v.length; i++) {
    const c = v[i]!;
    if (c === '\\') {
      const n = v[i + 1];
      if (n !== '\\' && n !== ',' && n !== '=') throw new StatusError(400, 'BadRequest', `invalid field selector: '${term}'; invalid escape sequence`);
      out += n;
      i++;
    } else if (c === ',' || c === '=') {
      throw new StatusError(400, 'BadRequest', `invalid field selector: '${term}'; unescaped '${c}' in value`);
    } else out += c;
  }
  return out;
}

/**
 * Parses a `fieldSelector` query value (`=`, `==`, `!=`, comma = AND). `supported` says which
 * field labels the resource accepts; others are a 400 `field label not supported: <f>`.
 */
export function parseFieldSelector(selector: string, supported: (field: string) => boolean): FieldRequirement[] {
  const reqs: FieldRequirement[] = [];
  for (const rawTerm of splitUnescaped(selector, ',')) {
    const term = rawTerm.trim();
    if (term === '') continue;
    let match: { field: string; operator: FieldOperator; value: string } | undefined;
    for (const [token, operator] of [['!=', '!='], ['==', '='], ['=', '=']] as const) {
      const at = term.indexOf(token);
      if (at >= 0) {
        match = { field: term.slice(0, at).trim(), operator, value: term.slice(at + token.length) };
        break;
      }
    }
    if (!match) throw new StatusError(400, 'BadRequest', `invalid selector: '${selector}'; can't understand '${term}'`);
    if (!supported(match.field)) throw new StatusError(400, 'BadRequest', `field label not supported: ${match.field}`);
    reqs.push({ ...match, value: unescapeFieldValue(match.value, term) });
  }
  return reqs;
}

/** Field labels whose value lives at a different path in the object. */
const FIELD_ALIASES: Record<string, string> = { source: 'source.component' };

/** The string a field selector compares for `field` in `obj`; missing values are "". */
export function fieldValue(obj: object, field: string): string {
  const path = (FIELD_ALIASES[field] ?? field).split('.');
  let cur: unknown = obj;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  if (cur === undefined || cur === null) return '';
  if (typeof cur === 'string') return cur;
  if (typeof cur === 'number' || typeof cur === 'boolean' || typeof cur === 'bigint') return String(cur);
  return '';
}

/** True when every field requirement holds for the object. */
export function matchFields(reqs: readonly FieldRequirement[], obj: object): boolean {
  return reqs.every((r) => (fieldValue(obj, r.field) === r.value) === (r.operator === '='));
}

const EVENT_FIELDS = [
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
];

const EXTRA_FIELDS: Record<string, string[]> = {
  '/Secret': ['type'],
  '/Namespace': ['status.phase'],
  '/Event': EVENT_FIELDS,
  // events.k8s.io serves the same stored objects, so it filters on the same labels.
  'events.k8s.io/Event': EVENT_FIELDS,
  'batch/Job': ['status.successful'],
  // Not in kube-apiserver 1.32; harmless for clients and handy for leader-election tests.
  'coordination.k8s.io/Lease': ['spec.holderIdentity'],
};

/** Field selector labels a built-in kind supports beyond metadata.name and metadata.namespace. */
export function fieldSelectorsFor(group: string, kind: string): string[] {
  return [...(EXTRA_FIELDS[`${group}/${kind}`] ?? [])];
}
