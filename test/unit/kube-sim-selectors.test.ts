import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  fieldSelectorsFor,
  labelSelectorFromObject,
  matchFields,
  matchLabels,
  parseFieldSelector,
  parseLabelSelector,
} from '../../services/kube-sim/selectors.ts';
import { StatusError } from '../../services/kube-sim/types.ts';

function badRequest(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof StatusError);
    assert.equal(err.code, 400);
    assert.equal(err.reason, 'BadRequest');
    assert.match(err.message, message);
    return true;
  });
}

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'frontend', 'app.kubernetes.io/name': 'kreconcile', n: '7' };

  // [selector, matches `labels`]
  const table: [string, boolean][] = [
    ['', true],
    ['app=web', true],
    ['app==web', true],
    ['app = web', true],
    ['app=db', false],
    ['app!=db', true],
    ['app!=web', false],
    ['missing!=x', true], // != matches an absent key
    ['app in (web,db)', true],
    ['app in (db, cache)', false],
    ['app notin (db)', true],
    ['app notin (web)', false],
    ['missing notin (x)', true], // notin matches an absent key
    ['missing in (x)', false],
    ['app', true],
    ['missing', false],
    ['!missing', true],
    ['!app', false],
    ['app.kubernetes.io/name=kreconcile', true],
    ['app=web,tier=frontend', true],
    ['app=web,tier=backend', false],
    ['app=web, !missing, tier in (frontend)', true],
    ['n>5', true],
    ['n<5', false],
    ['app>5', false], // non-integer label value never satisfies gt/lt
    ['missing=', false],
    ['app=in', false], // keywords are plain values in value position
  ];
  for (const [selector, expected] of table) {
    test(`${JSON.stringify(selector)} ${expected ? 'matches' : 'does not match'}`, () => {
      assert.equal(matchLabels(parseLabelSelector(selector), labels), expected);
    });
  }

  test('`k=` selects an empty value, and absent labels behave like an empty set', () => {
    assert.equal(matchLabels(parseLabelSelector('k='), { k: '' }), true);
    assert.equal(matchLabels(parseLabelSelector('k!=v'), undefined), true);
    assert.equal(matchLabels(parseLabelSelector('k'), undefined), false);
  });

  test('parses to normalised requirements', () => {
    assert.deepEqual(parseLabelSelector('a=1,b!=2,c in (z,y),!d,e'), [
      { key: 'a', operator: 'In', values: ['1'] },
      { key: 'b', operator: 'NotIn', values: ['2'] },
      { key: 'c', operator: 'In', values: ['y', 'z'] },
      { key: 'd', operator: 'DoesNotExist', values: [] },
      { key: 'e', operator: 'Exists', values: [] },
    ]);
  });

  const bad: [string, RegExp][] = [
    ['a=b=c', /^unable to parse requirement: found '=', expected: ',' or 'end of string'$/],
    ['a in b', /found 'b', expected: '\('/],
    ['a in (b', /found '', expected: ',' or '\)'/],
    ['a,', /found '', expected: identifier after ','/],
    ['=a', /found '=', expected: !, identifier/],
    ['!a=b', /after DoesNotExistToken/],
    ['a (b)', /found '\(', expected: in, notin/],
    ['-a=b', /key: Invalid value: "-a"/],
    ['a=b c', /found 'c', expected: ',' or 'end of string'/],
    ['a=-b', /values\[0\]\[a\]: Invalid value: "-b"/],
    ['a>b', /must be an integer/],
    [`a=${'x'.repeat(64)}`, /no more than 63 characters/],
    ['Example.com/a=b', /prefix part/],
  ];
  for (const [selector, message] of bad) {
    test(`${JSON.stringify(selector)} is a 400 naming the problem`, () => {
      badRequest(() => parseLabelSelector(selector), message);
      badRequest(() => parseLabelSelector(selector), /^unable to parse requirement: /);
    });
  }
});

describe('label selectors from objects (webhook namespaceSelector/objectSelector)', () => {
  test('undefined and {} select everything', () => {
    assert.deepEqual(labelSelectorFromObject(undefined), []);
    assert.deepEqual(labelSelectorFromObject({}), []);
    assert.equal(matchLabels(labelSelectorFromObject({}), undefined), true);
  });

  test('matchLabels and matchExpressions are ANDed', () => {
    const reqs = labelSelectorFromObject({
      matchLabels: { team: 'a' },
      matchExpressions: [
        { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-public'] },
        { key: 'skip', operator: 'DoesNotExist' },
      ],
    });
    assert.equal(matchLabels(reqs, { team: 'a', 'kubernetes.io/metadata.name': 'default' }), true);
    assert.equal(matchLabels(reqs, { team: 'a', 'kubernetes.io/metadata.name': 'kube-system' }), false);
    assert.equal(matchLabels(reqs, { team: 'a', skip: '' }), false);
    assert.equal(matchLabels(reqs, { team: 'b' }), false);
  });

  test('an unknown operator or a value set on Exists is refused', () => {
    badRequest(() => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Equals', values: ['x'] }] }), /Unsupported value: "Equals"/);
    badRequest(() => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] }), /must be empty/);
    badRequest(() => labelSelectorFromObject({ matchExpressions: [{ key: 'a', operator: 'In', values: [] }] }), /can't be empty/);
  });
});

describe('field selectors', () => {
  const secretFields = new Set(['metadata.name', 'metadata.namespace', ...fieldSelectorsFor('', 'Secret')]);
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, type: 'Opaque' };

  test('=, == and != with comma AND', () => {
    const sup = (f: string) => secretFields.has(f);
    assert.equal(matchFields(parseFieldSelector('metadata.name=db', sup), secret), true);
    assert.equal(matchFields(parseFieldSelector('metadata.name==db,type=Opaque', sup), secret), true);
    assert.equal(matchFields(parseFieldSelector('metadata.name=db,type!=Opaque', sup), secret), false);
    assert.equal(matchFields(parseFieldSelector('metadata.namespace!=kube-system', sup), secret), true);
    assert.equal(matchFields(parseFieldSelector('', sup), secret), true);
    assert.deepEqual(parseFieldSelector('metadata.name==db', sup), [{ field: 'metadata.name', operator: '=', value: 'db' }]);
  });

  test('a missing value compares as the empty string', () => {
    const sup = () => true;
    assert.equal(matchFields(parseFieldSelector('spec.holderIdentity=', sup), { spec: {} }), true);
    assert.equal(matchFields(parseFieldSelector('spec.holderIdentity!=', sup), { spec: { holderIdentity: 'a' } }), true);
  });

  test('escaped commas and equals signs are part of the value', () => {
    const reqs = parseFieldSelector('metadata.name=a\\,b\\=c', () => true);
    assert.deepEqual(reqs, [{ field: 'metadata.name', operator: '=', value: 'a,b=c' }]);
  });

  test('an unsupported field is a 400 naming it', () => {
    badRequest(() => parseFieldSelector('spec.foo=bar', (f) => secretFields.has(f)), /^field label not supported: spec.foo$/);
  });

  test('a term without an operator is a 400', () => {
    badRequest(() => parseFieldSelector('metadata.name', () => true), /can't understand 'metadata.name'/);
  });

  test('Event fields, with `source` meaning source.component', () => {
    const labels = fieldSelectorsFor('', 'Event');
    assert.deepEqual(fieldSelectorsFor('events.k8s.io', 'Event'), labels);
    const sup = (f: string) => labels.includes(f) || f === 'metadata.name';
    const ev = {
      metadata: { name: 'db.1', namespace: 'default' },
      involvedObject: { kind: 'Secret', name: 'db', namespace: 'default', uid: 'u1' },
      reason: 'WeakPassword',
      type: 'Warning',
      source: { component: 'kreconcile-worker' },
      reportingComponent: 'kreconcile-worker',
    };
    const sel = 'involvedObject.kind=Secret,involvedObject.name=db,reason=WeakPassword,source=kreconcile-worker,type=Warning';
    assert.equal(matchFields(parseFieldSelector(sel, sup), ev), true);
    assert.equal(matchFields(parseFieldSelector('involvedObject.uid=u2', sup), ev), false);
    assert.equal(matchFields(parseFieldSelector('involvedObject.fieldPath=', sup), ev), true);
  });

  test('kinds without extra labels get none, and the list is a copy', () => {
    assert.deepEqual(fieldSelectorsFor('stable.example.com', 'CronTab'), []);
    fieldSelectorsFor('', 'Secret').push('x');
    assert.deepEqual(fieldSelectorsFor('', 'Secret'), ['type']);
  });
});
