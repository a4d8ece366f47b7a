import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import protobuf from 'protobufjs';
import {
  PROTOBUF_MAGIC,
  decodeProtobufObject,
  encodeProtobufObject,
  isProtobufContentType,
} from '../../services/kube-sim/protobuf.ts';
import { throwsStatusError } from '../support/assert.ts';

const run = promisify(execFile);

/** Drops what Go's JSON shows for zero structs (`creationTimestamp: null`, `status: {}`). */
function withoutZeroStructs(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutZeroStructs);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === null) continue;
    if (k === 'status' && x && typeof x === 'object' && Object.keys(x).length === 0) continue;
    out[k] = withoutZeroStructs(x);
  }
  return out;
}

describe('content type', () => {
  test('recognises the protobuf media type with parameters and any case', () => {
    assert.equal(isProtobufContentType('application/vnd.kubernetes.protobuf'), true);
    assert.equal(isProtobufContentType('Application/VND.Kubernetes.Protobuf; charset=utf-8'), true);
    assert.equal(isProtobufContentType('application/json'), false);
    assert.equal(isProtobufContentType('application/vnd.kubernetes.protobuf-x'), false);
    assert.equal(isProtobufContentType(undefined), false);
  });
});

describe('decoding messages built with the same layout', () => {
  test('a Secret with every field round-trips to the JSON shape, data as base64', () => {
    const secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'db',
        generateName: 'db-',
        namespace: 'team-a',
        uid: '1b4e28ba-2fa1-11d2-883f-0016d3cca427',
        resourceVersion: '42',
        generation: 3,
        creationTimestamp: '2025-01-02T03:04:05Z',
        labels: { app: 'kreconcile' },
        annotations: { note: 'x' },
        ownerReferences: [{ apiVersion: 'stable.example.com/v1', kind: 'CronTab', name: 'ct', uid: 'u-1', controller: true, blockOwnerDeletion: false }],
        finalizers: ['example.com/keep'],
      },
      data: { password: Buffer.from([0, 1, 2, 255]).toString('base64'), empty: '' },
      stringData: { user: 'admin' },
      type: 'kubernetes.io/basic-auth',
      immutable: false,
    };
    assert.deepEqual(decodeProtobufObject(encodeProtobufObject(secret)), secret);
  });

  test('a ConfigMap keeps data and binaryData apart', () => {
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: 'b' }, binaryData: { bin: Buffer.from([0xde, 0xad]).toString('base64') }, immutable: true };
    assert.deepEqual(decodeProtobufObject(encodeProtobufObject(cm)), cm);
  });

  test('a Namespace with spec.finalizers and status.phase', () => {
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } };
    assert.deepEqual(decodeProtobufObject(encodeProtobufObject(ns)), ns);
  });

  test('a Job with resources (Quantity) and pointer fields set to zero', () => {
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j' },
      spec: {
        backoffLimit: 0,
        suspend: false,
        template: { spec: { containers: [{ name: 'c', image: 'busybox', resources: { limits: { cpu: '500m', memory: '64Mi' } }, env: [{ name: 'A', value: '1' }] }], restartPolicy: 'Never' } },
      },
    };
    assert.deepEqual(decodeProtobufObject(encodeProtobufObject(job)), job);
  });

  test('zero-valued value fields are omitted as Go omitempty does', () => {
    // Go's encoder writes every non-pointer field, empty or not.
    const meta = protobuf.parse('syntax="proto2"; message M { optional string name = 1; optional string namespace = 3; optional int64 generation = 7; }', { keepCase: true }).root.lookupType('M');
    const raw = meta.encode(meta.fromObject({ name: 'x', namespace: '', generation: 0 })).finish();
    const secretRaw = Buffer.concat([Buffer.from([0x0a, raw.length]), raw, Buffer.from('1a00', 'hex')]); // metadata=1, type=3 ""
    const envelope = protobuf.parse('syntax="proto2"; message T { optional string apiVersion = 1; optional string kind = 2; } message U { optional T typeMeta = 1; optional bytes raw = 2; }', { keepCase: true }).root.lookupType('U');
    const body = Buffer.concat([PROTOBUF_MAGIC, envelope.encode(envelope.fromObject({ typeMeta: { apiVersion: 'v1', kind: 'Secret' }, raw: secretRaw })).finish()]);
    assert.deepEqual(decodeProtobufObject(body), { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } });
  });
});

describe('bad bodies', () => {
  test('no magic prefix is a 400 naming the expected prefix', () => {
    throwsStatusError(() => decodeProtobufObject(Buffer.from('{"kind":"Secret"}')), 400, 'BadRequest', /expected prefix \[107 56 115 0\]/);
    throwsStatusError(() => decodeProtobufObject(Buffer.alloc(0)), 400, 'BadRequest', /does not appear to be a protobuf message/);
  });

  test('garbage after the prefix is a 400', () => {
    throwsStatusError(() => decodeProtobufObject(Buffer.concat([PROTOBUF_MAGIC, Buffer.from([0x0a, 0xff, 0xff, 0x01])])), 400, 'BadRequest', /unable to decode runtime.Unknown/);
    const body = encodeProtobufObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' } });
    throwsStatusError(() => decodeProtobufObject(body.subarray(0, body.length - 3)), 400, 'BadRequest', /unable to decode/);
  });

  test('an envelope without a kind is a 400', () => {
    throwsStatusError(() => decodeProtobufObject(Buffer.concat([PROTOBUF_MAGIC, Buffer.from([0x12, 0x00])])), 400, 'BadRequest', /Kind/);
  });

  test('a kind without a layout is 415 saying protobuf is not supported for it', () => {
    const envelope = protobuf.parse('syntax="proto2"; message T { optional string apiVersion = 1; optional string kind = 2; } message U { optional T typeMeta = 1; optional bytes raw = 2; }', { keepCase: true }).root.lookupType('U');
    const body = Buffer.concat([PROTOBUF_MAGIC, envelope.encode(envelope.fromObject({ typeMeta: { apiVersion: 'apps/v1', kind: 'Deployment' }, raw: Buffer.alloc(0) })).finish()]);
    throwsStatusError(() => decodeProtobufObject(body), 415, 'UnsupportedMediaType', /does not decode protobuf for apps\/v1, Kind=Deployment/);
  });
});

describe('bodies captured from the real kubectl', () => {
  let server: http.Server;
  let dir: string;
  let kubeconfig: string;
  const bodies: { url: string; contentType: string; body: Buffer }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST') {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404 }));
          return;
        }
        const body = Buffer.concat(chunks);
        bodies.push({ url: req.url ?? '', contentType: String(req.headers['content-type']), body });
        // Echo what we decoded, as kube-sim will: kubectl accepts a JSON reply.
        let reply: unknown;
        try {
          reply = decodeProtobufObject(body);
        } catch {
          reply = { apiVersion: 'v1', kind: 'Status', metadata: {} };
        }
        res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(reply));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    dir = mkdtempSync(join(tmpdir(), 'kube-sim-protobuf-'));
    kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        `clusters: [{name: capture, cluster: {server: "http://127.0.0.1:${port}"}}]`,
        'users: [{name: nobody, user: {}}]',
        'contexts: [{name: capture, context: {cluster: capture, user: nobody, namespace: default}}]',
        'current-context: capture',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'blob.bin'), Buffer.from([0xff, 0xfe, 0x00, 0x01]));
  });

  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  // Global flags first: anything after `--` belongs to the container command.
  const kubectl = (args: string[]) => run('kubectl', [`--kubeconfig=${kubeconfig}`, `--cache-dir=${join(dir, 'cache')}`, ...args], { timeout: 30_000 });

  /** What kubectl would send, as JSON: `--dry-run=client -o json` prints it without a server. */
  async function expected(args: string[]): Promise<unknown> {
    const posted = bodies.length;
    const { stdout } = await kubectl(['--dry-run=client', '--output=json', ...args]);
    assert.equal(bodies.length, posted, 'a client dry run sends nothing');
    return withoutZeroStructs(JSON.parse(stdout));
  }

  async function captured(args: string[]): Promise<{ url: string; contentType: string; body: Buffer }> {
    const before = bodies.length;
    await kubectl(args);
    assert.equal(bodies.length, before + 1, 'kubectl posted exactly once');
    return bodies[before]!;
  }

  const cases: [string, string[], RegExp][] = [
    ['secret generic with --save-config', ['create', 'secret', 'generic', 'db', '--from-literal=password=abc', '--from-literal=user=admin', '--type=kubernetes.io/basic-auth', '--save-config'], /\/api\/v1\/namespaces\/default\/secrets\?/],
    ['configmap with binary data', ['create', 'configmap', 'cm', '--from-literal=a=b', '--from-file=blob=__DIR__/blob.bin'], /\/api\/v1\/namespaces\/default\/configmaps\?/],
    ['namespace', ['create', 'namespace', 'team-a'], /\/api\/v1\/namespaces\?/],
    ['cronjob', ['create', 'cronjob', 'nightly', '--image=busybox', '--schedule=*/5 * * * *', '--', 'echo', 'hi'], /\/apis\/batch\/v1\/namespaces\/default\/cronjobs\?/],
    ['job', ['create', 'job', 'once', '--image=busybox', '--', 'true'], /\/apis\/batch\/v1\/namespaces\/default\/jobs\?/],
  ];

  for (const [name, rawArgs, url] of cases) {
    test(`kubectl create ${name}: the protobuf body decodes to what kubectl means`, async () => {
      const args = rawArgs.map((a) => a.replace('__DIR__', dir));
      const post = await captured(args);
      assert.equal(post.contentType, 'application/vnd.kubernetes.protobuf');
      assert.match(post.url, url);
      assert.ok(post.body.subarray(0, 4).equals(PROTOBUF_MAGIC));
      assert.deepEqual(withoutZeroStructs(decodeProtobufObject(post.body)), await expected(args));
    });
  }

  test('a kubectl secret decodes with the raw password bytes base64-encoded, as in JSON', async () => {
    const post = await captured(['create', 'secret', 'generic', 's2', '--from-literal=password=hunter2-but-longer']);
    const obj = decodeProtobufObject(post.body) as { data: Record<string, string> };
    assert.equal(Buffer.from(obj.data.password!, 'base64').toString(), 'hunter2-but-longer');
  });
});
