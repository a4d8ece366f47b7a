import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, schemas } from '../../services/common/config.ts';

const options = {
  port: { env: 'T_PORT', flag: 'port', help: 'port', schema: schemas.port(8443) },
  resync: { env: 'T_RESYNC', flag: 'resync', help: 'resync', schema: schemas.seconds(600) },
  mode: { env: 'T_MODE', flag: 'mode', help: 'mode', schema: schemas.string('audit') },
  keys: { env: 'T_KEYS', help: 'keys', schema: schemas.list(['password']) },
};

describe('loadConfig', () => {
  test('applies defaults when nothing is set', () => {
    const c = loadConfig(options, {}, []);
    assert.deepEqual({ ...c }, { port: 8443, resync: 600, mode: 'audit', keys: ['password'] });
  });

  test('reads the environment, and flags override it', () => {
    const c = loadConfig(options, { T_PORT: '9000', T_RESYNC: '5m', T_KEYS: 'password, pass' }, ['--port', '9100']);
    assert.equal(c.port, 9100);
    assert.equal(c.resync, 300);
    assert.deepEqual(c.keys, ['password', 'pass']);
  });

  test('reports every bad value at once, naming where it came from', () => {
    assert.throws(
      () => loadConfig(options, { T_PORT: 'abc', T_RESYNC: 'soon' }, []),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.equal(err.problems.length, 2);
        assert.match(err.problems[0]!, /^T_PORT: .*got "abc"/);
        assert.match(err.problems[1]!, /^T_RESYNC: must be a duration/);
        return true;
      },
    );
  });

  test('an unknown flag, a stray argument and a flag without its value are reported with the bad values, all at once', () => {
    assert.throws(
      () => loadConfig(options, { T_RESYNC: 'soon' }, ['--port', '99999', '--bogus', 'x', '--mode']),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(err.problems.slice(0, 3), ["unknown option '--bogus'", "unexpected argument 'x'", "option '--mode' needs a value"]);
        assert.match(err.problems.join('\n'), /--port: .*got "99999"/);
        assert.match(err.problems.join('\n'), /T_RESYNC: must be a duration/);
        return true;
      },
    );
    // A flag left without its value must not swallow the next one.
    assert.throws(() => loadConfig(options, {}, ['--mode', '--port=9000']), /option '--mode' needs a value \(one starting with '-' is written --mode=--port=9000\)/);
    assert.equal(loadConfig(options, {}, ['--mode=-x']).mode, '-x');
  });

  test('the result is frozen', () => {
    const c = loadConfig(options, {}, []);
    assert.ok(Object.isFrozen(c));
  });
});
