// The command line against hostile input and faults: Ctrl-C during a download, credentials in a
// URL, bad values and files that must give a message and exit 2, never a stack (docs/architecture.md §10).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../core/testing.ts';
import { tinySessionFiles } from '../core/one/testing/alf-session.ts';
import { startAlyxServer, type AlyxServer } from '../core/one/testing/alyx-server.ts';

const root = join(import.meta.dirname, '..');
let server: AlyxServer;
const home = tempDir('mtm-cli-home-');

function env(): Record<string, string> {
  return { ...(process.env as Record<string, string>), CI: 'true', HOME: home, ONE_USERNAME: server.username, ONE_PASSWORD: server.password };
}
function mtm(...args: string[]) {
  const r = spawnSync(process.execPath, ['bin/mtm.js', ...args], { cwd: root, encoding: 'utf8', env: env() });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
/** For runs that talk to the loopback server, which lives in this process: spawnSync would block it. */
function mtmAsync(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, ['bin/mtm.js', ...args], { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => res({ code, out, err }));
  });
}
const noStack = (s: string) => assert.not.match(s, /\n\s+at .+:\d+:\d+/, `stack trace printed:\n${s}`);

test.before(async () => {
  server = await startAlyxServer({ seedSessions: false });
});
test.after(async () => {
  await server.close();
});

test('Ctrl-C during a download: the run ends interrupted, exit 130, run.json says so', async () => {
  const { eid, datasets } = server.addSession({ lab: 'lab', subject: 'C1', date: '2024-06-01', number: 1, files: tinySessionFiles({ seed: 9 }) });
  // Every file answer waits a minute: the run is inside a download when Ctrl-C comes.
  server.inject({ match: '/files/lab/Subjects/C1/', delayMs: 60_000, times: Infinity });
  const out = join(tempDir('mtm-cli-run-'), 'run');
  const cache = tempDir('mtm-cli-cache-');
  const args = ['bin/mtm.js', 'run', 'graphs/bin-session.yaml', '--set', `session=${eid}`, '--set', `cacheDir=${cache}`, '--set', 'mode=remote', '--set', `source.baseUrl=${server.url}`, '--out', out];
  const child = spawn(process.execPath, args, { cwd: root, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const started = Date.now();
  while (!server.requests.some((r) => r.url.startsWith('/files/lab/Subjects/C1/'))) {
    if (child.exitCode !== null) throw new Error(`the run ended before downloading: ${err}`);
    if (Date.now() - started > 60_000) {
      child.kill('SIGKILL');
      throw new Error('no download request after 60 s');
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGINT');
  const code = await exited;
  assert.is(code, 130, err);
  const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(info.status, 'interrupted');
  noStack(err);
  assert.ok(datasets.length > 0);
  // The session cut short is interrupted, not logged or counted as a failed one.
  assert.not.match(err, /could not be loaded|skippedSession/);
  const logs = readFileSync(join(out, 'logs.jsonl'), 'utf8');
  assert.not.match(logs, /"level":50[^\n]*session/);
  assert.match(logs, /interrupted/);
});

test('credentials in the server URL never reach stderr, logs.jsonl, metrics.jsonl or run.json', async () => {
  const { eid } = server.addSession({ lab: 'lab', subject: 'C2', date: '2024-06-02', number: 1, files: tinySessionFiles({ seed: 10 }) });
  // The server's own login in the URL: it logs in with it, then every file is refused.
  const secret = server.password;
  const url = server.url.replace('http://', `http://${server.username}:${encodeURIComponent(secret)}@`);
  const out = join(tempDir('mtm-cli-run-'), 'run');
  const cache = tempDir('mtm-cli-cache-');
  // The file server refuses every file: the run fails, and its errors are where a leak would show.
  server.inject({ match: '/files/lab/Subjects/C2/', status: 404, times: Infinity });
  const r = await mtmAsync('run', 'graphs/bin-session.yaml', '--set', `session=${eid}`, '--set', `cacheDir=${cache}`, '--set', 'mode=remote', '--set', `source.baseUrl=${url}`, '--out', out);
  assert.ok(r.code !== 0, 'the run fails');
  assert.match(r.err, /HTTP 404/, 'logged in with the URL credentials, then refused the files');
  assert.not.ok(r.err.includes(secret), `stderr:\n${r.err}`);
  assert.not.ok(r.out.includes(secret), `stdout:\n${r.out}`);
  const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.ok(files.some((f) => f.name === 'run.json') && files.some((f) => f.name === 'logs.jsonl'));
  for (const f of files) {
    const text = readFileSync(join(f.parentPath, f.name), 'utf8');
    assert.not.ok(text.includes(secret), `${f.name} holds the password`);
  }
  assert.not.ok(existsSync(join(cache, '.mtm-token.json')) && readFileSync(join(cache, '.mtm-token.json'), 'utf8').includes(secret));
});

test('mtm simulate with bad sizes: a message naming the field, exit 2, no stack', () => {
  const outDir = tempDir('mtm-cli-sim-');
  for (const set of ['trials=[5,1]', 'neurons=[4,4]']) {
    const r = mtm('simulate', '--out', outDir, '--sessions', '1', '--set', set);
    assert.is(r.code, 2, `${set}: ${r.err}`);
    assert.match(r.err, new RegExp(set.split('=')[0]));
    noStack(r.err);
  }
});

test('a YAML alias bomb and an oversized graph file: a message, exit 2, no stack', () => {
  const dir = tempDir('mtm-cli-yaml-');
  const bomb = ['name: bomb', 'a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
  for (let i = 0; i < 9; i++) {
    const prev = String.fromCharCode(97 + i);
    const name = String.fromCharCode(98 + i);
    bomb.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(',')}]`);
  }
  bomb.push('nodes: {}');
  writeFileSync(join(dir, 'bomb.yaml'), bomb.join('\n') + '\n');
  for (const cmd of ['validate', 'run']) {
    const r = mtm(cmd, join(dir, 'bomb.yaml'));
    assert.is(r.code, 2, `${cmd}: ${r.err}`);
    assert.match(r.err, /alias/i);
    noStack(r.err);
  }
  writeFileSync(join(dir, 'big.yaml'), `name: big\n# ${'x'.repeat(3 * 1024 * 1024)}\nnodes: {}\n`);
  const big = mtm('validate', join(dir, 'big.yaml'));
  assert.is(big.code, 2, big.err);
  assert.match(big.err, /too large/);
  noStack(big.err);
});

test('a plugin that throws while registering: a message naming the plugin, exit 2, no stack', () => {
  const dir = join(tempDir('mtm-cli-plugin-'), 'bad-plugin');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bad-plugin', version: '1.0.0', private: true, type: 'module', mtmPlugin: './plugin.mjs' }));
  // A manifest whose container module throws when the registry loads it.
  const inversify = import.meta.resolve('inversify');
  writeFileSync(
    join(dir, 'plugin.mjs'),
    `import { ContainerModule } from ${JSON.stringify(inversify)};\n` +
      `export default { name: 'bad-plugin', version: '1.0.0', description: 'throws', stages: [], architectures: [], module: new ContainerModule(() => { throw new Error('boom while registering'); }) };\n`,
  );
  const r = mtm('stages', '--plugin', dir);
  assert.is(r.code, 2, r.err);
  assert.match(r.err, /bad-plugin/);
  assert.match(r.err, /boom while registering/);
  noStack(r.err);
});

test('a rerun into the folder of a SIGKILLed run records that attempt as killed, not running', () => {
  const out = join(tempDir('mtm-cli-run-'), 'run');
  mkdirSync(out, { recursive: true });
  // What a run killed with SIGKILL leaves: run.json still saying running.
  writeFileSync(join(out, 'run.json'), JSON.stringify({ graph: 'demo-good', status: 'running', startedAt: '2026-01-01T00:00:00.000Z' }));
  const r = mtm('run', join('test', 'fixtures', 'graphs', 'good.yaml'), '--out', out);
  assert.is(r.code, 0, r.err);
  const info = JSON.parse(readFileSync(join(out, 'run.json'), 'utf8'));
  assert.is(info.status, 'completed');
  assert.equal(info.previousAttempts.map((a: { status: string }) => a.status), ['killed']);
});

test.run();
