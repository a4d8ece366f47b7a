import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import {
  applyDefaults,
  findUnknownFields,
  invalidError,
  pruneDefaultValidate,
  strictDecodingError,
  unknownFieldWarnings,
} from '../../services/kube-sim/schema.ts';
import type { JSONSchemaProps, KubeObject } from '../../services/kube-sim/types.ts';

const crd = parse(readFileSync(new URL('../../infra/k8s/crontab-crd.yaml', import.meta.url), 'utf8'));
const schema: JSONSchemaProps = crd.spec.versions[0].schema.openAPIV3Schema;

function cronTab(spec: Record<string, unknown>, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'stable.example.com/v1', kind: 'CronTab', metadata: { name: 'ct', namespace: 'default', labels: { a: 'b' } }, spec, ...extra };
}

const run = (obj: KubeObject, s: JSONSchemaProps = schema) => pruneDefaultValidate(obj, s, { fieldValidation: 'Strict' });

describe('the CronTab schema (infra/k8s/crontab-crd.yaml)', () => {
  test('a valid CronTab passes, gets replicas defaulted, keeps metadata untouched', () => {
    const input = cronTab({ cronSpec: '*/5 * * * *', image: 'busybox' });
    const { object, causes, unknownFields } = run(input);
    assert.deepEqual(causes, []);
    assert.deepEqual(unknownFields, []);
    assert.deepEqual(object.spec, { cronSpec: '*/5 * * * *', image: 'busybox', replicas: 1 });
    assert.deepEqual(object.metadata, input.metadata);
    assert.equal((input.spec as Record<string, unknown>).replicas, undefined, 'input not mutated');
  });

  test('replicas below the minimum: the exact cause and 422 message of the contract', () => {
    const { causes } = run(cronTab({ cronSpec: '* * * * *', image: 'i', replicas: 0 }));
    assert.deepEqual(causes, [{ reason: 'FieldValueInvalid', message: 'Invalid value: 0: spec.replicas in body should be greater than or equal to 1', field: 'spec.replicas' }]);
    const err = invalidError('CronTab', 'stable.example.com', 'ct', causes);
    assert.deepEqual(err.toStatus(), {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'CronTab.stable.example.com "ct" is invalid: spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1',
      reason: 'Invalid',
      details: {
        name: 'ct',
        group: 'stable.example.com',
        kind: 'CronTab',
        causes: [{ reason: 'FieldValueInvalid', message: 'Invalid value: 0: spec.replicas in body should be greater than or equal to 1', field: 'spec.replicas' }],
      },
      code: 422,
    });
  });

  test('missing required fields, an unsupported enum value and a wrong type', () => {
    const { causes } = run(cronTab({ replicas: 'string', concurrencyPolicy: 'Sometimes' }));
    assert.deepEqual(causes, [
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.cronSpec' },
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.image' },
      { reason: 'FieldValueTypeInvalid', message: 'Invalid value: "string": spec.replicas in body must be of type integer: "string"', field: 'spec.replicas' },
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"', field: 'spec.concurrencyPolicy' },
    ]);
    const err = invalidError('CronTab', 'stable.example.com', 'ct', causes);
    assert.equal(
      err.message,
      'CronTab.stable.example.com "ct" is invalid: [spec.cronSpec: Required value, spec.image: Required value, spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string", spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"]',
    );
    assert.equal(err.code, 422);
  });

  test('unknown fields are pruned and listed without a leading dot; status and conditions are walked', () => {
    const { object, unknownFields, causes } = run(
      cronTab({ cronSpec: '* * * * *', image: 'i', bogus: 1, nested: { x: 1 } }, { extra: true, status: { conditions: [{ type: 'Ready', status: 'True', color: 'red' }] } }),
    );
    assert.deepEqual(unknownFields, ['spec.bogus', 'spec.nested', 'extra', 'status.conditions[0].color']);
    assert.deepEqual(causes, []);
    assert.deepEqual(object.spec, { cronSpec: '* * * * *', image: 'i', replicas: 1 });
    assert.deepEqual(object.status, { conditions: [{ type: 'Ready', status: 'True' }] });
    assert.ok(!('extra' in object));
    assert.deepEqual(unknownFieldWarnings(unknownFields.slice(0, 1)), ['unknown field "spec.bogus"']);
    assert.equal(strictDecodingError(['spec.bogus', 'extra']).message, 'strict decoding error: unknown field "spec.bogus", unknown field "extra"');
    assert.equal(strictDecodingError(['spec.bogus']).code, 400);
  });

  test('a bad date-time and a bad enum inside a list item are named by index', () => {
    const { causes } = run(cronTab({ cronSpec: 'c', image: 'i' }, { status: { lastScheduleTime: 'yesterday', conditions: [{ type: 'Ready', status: 'Maybe' }] } }));
    assert.deepEqual(causes, [
      { reason: 'FieldValueTypeInvalid', message: 'Invalid value: "yesterday": status.lastScheduleTime in body must be of type date-time: "yesterday"', field: 'status.lastScheduleTime' },
      { reason: 'FieldValueNotSupported', message: 'Unsupported value: "Maybe": supported values: "True", "False", "Unknown"', field: 'status.conditions[0].status' },
    ]);
    assert.deepEqual(run(cronTab({ cronSpec: 'c', image: 'i' }, { status: { lastScheduleTime: '2025-01-02T03:04:05Z' } })).causes, []);
  });

  test('a null spec field without a default is dropped; with a default it is defaulted', () => {
    const { object, causes } = run(cronTab({ cronSpec: 'c', image: 'i', replicas: null, timeZone: null }));
    assert.deepEqual(causes, []);
    assert.deepEqual(object.spec, { cronSpec: 'c', image: 'i', replicas: 1 });
  });

  test('applyDefaults on read fills defaults and copies', () => {
    const stored = cronTab({ cronSpec: 'c', image: 'i' });
    const read = applyDefaults(stored, schema);
    assert.equal((read.spec as Record<string, unknown>).replicas, 1);
    assert.equal((stored.spec as Record<string, unknown>).replicas, undefined);
  });
});

describe('schema keywords', () => {
  const s: JSONSchemaProps = {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$' },
          ratio: { type: 'number', minimum: 0, maximum: 1, exclusiveMaximum: true },
          count: { type: 'integer', minimum: 0, exclusiveMinimum: true, maximum: 10 },
          port: { 'x-kubernetes-int-or-string': true },
          maybe: { type: 'string', nullable: true },
          tags: { type: 'array', minItems: 1, maxItems: 2, items: { type: 'string' } },
          labels: { type: 'object', additionalProperties: { type: 'string' } },
          free: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, properties: { known: { type: 'integer', default: 7 } } },
          nested: { type: 'object', default: {}, properties: { deep: { type: 'string', default: 'd' } } },
          items: { type: 'array', items: { type: 'object', properties: { on: { type: 'boolean', default: true } } } },
          level: { type: 'integer', enum: [1, 2] },
        },
      },
    },
  };
  const obj = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'x/v1', kind: 'X', metadata: { name: 'x' }, spec });
  const messages = (spec: Record<string, unknown>) => run(obj(spec), s).causes.map((c) => `${c.field}: ${c.message}`);

  test('strings: maxLength (Too long), minLength, pattern', () => {
    assert.deepEqual(messages({ name: 'abcdef' }), ['spec.name: Too long: may not be more than 4 bytes']);
    assert.deepEqual(messages({ name: 'a' }), ['spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long']);
    assert.deepEqual(messages({ name: 'AB' }), ["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"]);
    assert.equal(run(obj({ name: 'abcdef' }), s).causes[0]!.reason, 'FieldValueTooLong');
  });

  test('numbers: inclusive and exclusive bounds, integer vs number', () => {
    assert.deepEqual(messages({ ratio: 1 }), ['spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1']);
    assert.deepEqual(messages({ ratio: -0.5 }), ['spec.ratio: Invalid value: -0.5: spec.ratio in body should be greater than or equal to 0']);
    assert.deepEqual(messages({ count: 0 }), ['spec.count: Invalid value: 0: spec.count in body should be greater than 0']);
    assert.deepEqual(messages({ count: 11 }), ['spec.count: Invalid value: 11: spec.count in body should be less than or equal to 10']);
    assert.deepEqual(messages({ count: 1.5 }), ['spec.count: Invalid value: "number": spec.count in body must be of type integer: "number"']);
    assert.deepEqual(messages({ ratio: 0, count: 10 }), []);
  });

  test('int-or-string and nullable', () => {
    assert.deepEqual(messages({ port: 80 }), []);
    assert.deepEqual(messages({ port: 'http' }), []);
    assert.deepEqual(messages({ port: true }), ['spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"']);
    assert.deepEqual(run(obj({ maybe: null }), s).object.spec, { maybe: null, nested: { deep: 'd' } });
  });

  test('arrays: minItems, maxItems (Too many), item types', () => {
    assert.deepEqual(messages({ tags: [] }), ['spec.tags: Invalid value: []: spec.tags in body should have at least 1 items']);
    assert.deepEqual(messages({ tags: ['a', 'b', 'c'] }), ['spec.tags: Too many: 3: must have at most 2 items']);
    assert.deepEqual(messages({ tags: ['a', 1] }), ['spec.tags[1]: Invalid value: "integer": spec.tags[1] in body must be of type string: "integer"']);
  });

  test('maps (additionalProperties) keep their keys and validate values', () => {
    const r = run(obj({ labels: { a: 'x', b: 2 } }), s);
    assert.deepEqual(r.unknownFields, []);
    assert.deepEqual(r.causes.map((c) => c.field), ['spec.labels.b']);
  });

  test('preserve-unknown-fields keeps unknown keys and still defaults known ones', () => {
    const r = run(obj({ free: { anything: { goes: [1] } } }), s);
    assert.deepEqual(r.unknownFields, []);
    assert.deepEqual((r.object.spec as Record<string, unknown>).free, { anything: { goes: [1] }, known: 7 });
  });

  test('defaults apply inside defaults and inside list items', () => {
    const r = run(obj({ items: [{}, { on: false }] }), s);
    assert.deepEqual(r.object.spec, { items: [{ on: true }, { on: false }], nested: { deep: 'd' } });
  });

  test('non-string enums are listed as JSON', () => {
    assert.deepEqual(messages({ level: 3 }), ['spec.level: Unsupported value: 3: supported values: "1", "2"']);
  });

  test('a wrong type stops checks below it', () => {
    assert.deepEqual(messages({ tags: 'a' }), ['spec.tags: Invalid value: "string": spec.tags in body must be of type array: "string"']);
  });
});

describe('invalidError', () => {
  test('core kinds have no group; duplicate messages collapse', () => {
    const cause = { reason: 'FieldValueInvalid', message: 'Invalid value: "x": bad', field: 'data' };
    const err = invalidError('Secret', '', 's', [cause, cause]);
    assert.equal(err.message, 'Secret "s" is invalid: data: Invalid value: "x": bad');
    assert.deepEqual(err.details, { name: 's', kind: 'Secret', causes: [cause, cause] });
  });
});

describe('findUnknownFields (built-in schemas)', () => {
  const secretSchema: JSONSchemaProps = {
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object', properties: { name: { type: 'string' }, labels: { type: 'object', additionalProperties: { type: 'string' } } } },
      data: { type: 'object', additionalProperties: { type: 'string', format: 'byte' } },
      type: { type: 'string' },
      raw: { type: 'object' },
    },
  };

  test('lists unknown top-level and metadata fields; free-form objects accept anything', () => {
    const obj = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', labels: { a: 'b' }, colour: 'x' }, data: { k: 'dg==' }, typo: 'Opaque', raw: { whatever: 1 } };
    assert.deepEqual(findUnknownFields(obj, secretSchema), ['metadata.colour', 'typo']);
  });

  test('a clean object has none', () => {
    assert.deepEqual(findUnknownFields({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, type: 'Opaque' }, secretSchema), []);
  });
});
