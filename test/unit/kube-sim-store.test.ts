import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { objectKey, Store, type StoreEvent } from '../../services/kube-sim/store.ts';
import { StatusError, type KubeObject } from '../../services/kube-sim/types.ts';

function obj(namespace: string, name: string, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { namespace, name }, ...extra };
}

function put(s: Store, namespace: string, name: string, extra: Record<string, unknown> = {}): StoreEvent {
  return s.commit('secrets', objectKey(namespace, name), obj(namespace, name, extra));
}

describe('Store', () => {
  test('every commit takes the next global revision and sets it on the object', () => {
    const s = new Store();
    const a = put(s, 'default', 'a');
    const b = s.commit('configmaps', 'default/b', obj('default', 'b'));
    const a2 = put(s, 'default', 'a', { data: {} });
    assert.deepEqual([a.rv, b.rv, a2.rv], [1, 2, 3]);
    assert.equal(a2.object.metadata.resourceVersion, '3');
    assert.equal(a2.type, 'MODIFIED');
    assert.equal(a2.prev, a.object);
    const d = s.commit('secrets', 'default/a', undefined);
    assert.equal(d.type, 'DELETED');
    assert.equal(d.object.metadata.resourceVersion, '4');
    assert.equal(s.get('secrets', 'default/a'), undefined);
  });

  test('range walks keys in etcd order, within a namespace, from a key', () => {
    const s = new Store();
    for (const [ns, n] of [['b', 'x'], ['a', 'z'], ['a-b', 'y'], ['a', 'y']]) put(s, ns, n);
    assert.deepEqual([...s.range('secrets')].map(([k]) => k), ['a-b/y', 'a/y', 'a/z', 'b/x']);
    assert.deepEqual([...s.range('secrets', { namespace: 'a' })].map(([k]) => k), ['a/y', 'a/z']);
    assert.deepEqual([...s.range('secrets', { namespace: 'a', from: 'a/y\u0000' })].map(([k]) => k), ['a/z']);
    assert.equal(s.count('secrets', 'a'), 2);
    assert.equal(s.count('secrets'), 4);
  });

  test('range at an older revision shows the state of that revision', () => {
    const s = new Store();
    put(s, 'ns', 'a', { v: 1 });
    put(s, 'ns', 'c', { v: 1 });
    const snapshot = s.currentRevision;
    put(s, 'ns', 'b', { v: 1 }); // created after
    put(s, 'ns', 'a', { v: 2 }); // modified after
    s.commit('secrets', 'ns/c', undefined); // deleted after
    const then = [...s.range('secrets', { atRevision: snapshot })].map(([k, o]) => `${k}=${o.v}`);
    assert.deepEqual(then, ['ns/a=1', 'ns/c=1']);
    assert.equal(s.countAt('secrets', 'ns', snapshot), 2);
    assert.equal(s.countAt('secrets', 'ns'), 2);
    const now = [...s.range('secrets')].map(([k, o]) => `${k}=${o.v}`);
    assert.deepEqual(now, ['ns/a=2', 'ns/b=1']);
  });

  test('history is bounded; older revisions are 410 Expired', () => {
    const s = new Store({ historyLimit: 3 });
    for (let i = 0; i < 5; i++) put(s, 'ns', `o${i}`);
    assert.equal(s.historyLength, 3);
    assert.deepEqual(s.eventsSince(2).map((e) => e.rv), [3, 4, 5]);
    assert.throws(
      () => s.eventsSince(1),
      (err: unknown) => err instanceof StatusError && err.code === 410 && err.message === 'too old resource version: 1 (5)',
    );
    assert.throws(() => [...s.range('secrets', { atRevision: 1 })], (err: unknown) => err instanceof StatusError && err.code === 410);
  });

  test('compact drops history up to now', () => {
    const s = new Store();
    put(s, 'ns', 'a');
    put(s, 'ns', 'b');
    s.compact();
    assert.equal(s.historyLength, 0);
    assert.deepEqual(s.eventsSince(2), []);
    assert.throws(() => s.eventsSince(1), (err: unknown) => err instanceof StatusError && err.code === 410);
  });

  test('listeners run synchronously, in order, per bucket and globally', () => {
    const s = new Store();
    const seen: string[] = [];
    const off = s.subscribe('secrets', (e) => seen.push(`secrets:${e.rv}`));
    s.subscribeAll((e) => seen.push(`all:${e.rv}`));
    put(s, 'ns', 'a');
    s.commit('configmaps', 'ns/b', obj('ns', 'b'));
    off();
    put(s, 'ns', 'c');
    assert.deepEqual(seen, ['secrets:1', 'all:1', 'all:2', 'all:3']);
  });

  test('100,000 objects: a page of 500 from the middle is fast', () => {
    const s = new Store({ historyLimit: 1000 });
    for (let i = 0; i < 100_000; i++) put(s, 'load', `s-${String(i).padStart(6, '0')}`);
    const t0 = performance.now();
    let n = 0;
    for (const [k] of s.range('secrets', { namespace: 'load', from: 'load/s-050000' })) {
      if (++n === 500) {
        assert.equal(k, 'load/s-050499');
        break;
      }
    }
    const ms = performance.now() - t0;
    assert.ok(ms < 50, `page took ${ms} ms`);
  });
});
