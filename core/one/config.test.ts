import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../testing.ts';
import { describeConfig, hostKey, resolveOneConfig, PUBLIC_BASE_URL } from './config.ts';
import { OneError } from './errors.ts';

test('built-in defaults: the public IBL server and login, cache in ~/Downloads/ONE/<host> as ONE does', () => {
  const home = tempDir('mtm-home-');
  const c = resolveOneConfig({ env: {}, homeDir: home });
  assert.is(c.baseUrl, PUBLIC_BASE_URL);
  assert.is(c.username, 'intbrainlab');
  assert.is(c.password, 'international');
  assert.is(c.cacheDir, join(home, 'Downloads', 'ONE', 'openalyx.internationalbrainlab.org'));
  assert.is(c.mode, 'remote');
  assert.is(c.parallelDownloads, 4);
  assert.is(c.retries, 5);
  assert.is(c.tokenFile, join(c.cacheDir, '.mtm-token.json'));
  assert.is(c.configFile, undefined);
});

test('hostKey follows ONE: no scheme, no trailing slash, lower case, odd characters to _', () => {
  assert.is(hostKey('https://Test.Alyx.InternationalBrainLab.org/'), 'test.alyx.internationalbrainlab.org');
  assert.is(hostKey('http://127.0.0.1:8000'), '127.0.0.1_8000');
});

test('priority: config file < environment < explicit options', () => {
  const home = tempDir('mtm-home-');
  mkdirSync(join(home, '.mtm'));
  writeFileSync(join(home, '.mtm', 'one.json'), JSON.stringify({ baseUrl: 'https://file.example.org', username: 'fileuser', password: 'filepw', cacheDir: '/tmp/file-cache', parallelDownloads: 2 }));
  const fromFile = resolveOneConfig({ env: {}, homeDir: home });
  assert.is(fromFile.baseUrl, 'https://file.example.org');
  assert.is(fromFile.username, 'fileuser');
  assert.is(fromFile.password, 'filepw');
  assert.is(fromFile.cacheDir, '/tmp/file-cache');
  assert.is(fromFile.parallelDownloads, 2);
  assert.is(fromFile.configFile, join(home, '.mtm', 'one.json'));

  const env = { ONE_BASE_URL: 'https://env.example.org/', ONE_USERNAME: 'envuser', ONE_PASSWORD: 'envpw', ONE_CACHE_DIR: '/tmp/env-cache' };
  const fromEnv = resolveOneConfig({ env, homeDir: home });
  assert.is(fromEnv.baseUrl, 'https://env.example.org');
  assert.is(fromEnv.username, 'envuser');
  assert.is(fromEnv.password, 'envpw');
  assert.is(fromEnv.cacheDir, '/tmp/env-cache');
  assert.is(fromEnv.parallelDownloads, 2, 'still from the file');

  const explicit = resolveOneConfig({ env, homeDir: home, baseUrl: 'http://127.0.0.1:9', password: 'x', cacheDir: '/tmp/explicit', mode: 'local' });
  assert.is(explicit.baseUrl, 'http://127.0.0.1:9');
  assert.is(explicit.username, 'envuser');
  assert.is(explicit.password, 'x');
  assert.is(explicit.cacheDir, '/tmp/explicit');
  assert.is(explicit.mode, 'local');
});

test('a user name of ones own does not get the public password', () => {
  const c = resolveOneConfig({ env: { ONE_USERNAME: 'someone' }, homeDir: tempDir('mtm-home-') });
  assert.is(c.password, '');
});

test('an explicit config path is read; bad fields are reported with the file and field, never the value', () => {
  const dir = tempDir('mtm-cfg-');
  const file = join(dir, 'one.json');
  writeFileSync(file, JSON.stringify({ password: 12345678, parallelDownloads: 0, colour: 'blue' }));
  try {
    resolveOneConfig({ env: {}, homeDir: dir, configFile: file });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OneError);
    const msg = (e as Error).message;
    assert.ok(msg.includes(file), msg);
    assert.match(msg, /password:/);
    assert.match(msg, /parallelDownloads:/);
    assert.match(msg, /colour/);
    assert.not.match(msg, '12345678');
  }
  writeFileSync(file, '{ not json');
  assert.throws(() => resolveOneConfig({ env: {}, homeDir: dir, configFile: file }), (e: Error) => e.message.includes(file) && /not valid JSON/.test(e.message));
});

test('the password is hidden from JSON, spreads and describeConfig', () => {
  const c = resolveOneConfig({ env: { ONE_PASSWORD: 'sekret-pw' }, homeDir: tempDir('mtm-home-') });
  assert.is(c.password, 'sekret-pw');
  assert.not.ok(JSON.stringify(c).includes('sekret-pw'));
  assert.not.ok(JSON.stringify({ ...c }).includes('sekret-pw'));
  assert.not.ok(JSON.stringify(describeConfig(c)).includes('sekret-pw'));
  assert.is(describeConfig(c).password, '[set]');
});

test.run();
