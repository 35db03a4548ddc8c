// Scale-out behind a real load balancer: latentd replicas behind Debian's nginx with the shipped config
// (tools/deploy/nginx/*.conf), started by scripts/team-demo's own code (tools/deploy/team_demo.mjs). Shows that
// a workspace key always lands on the same replica, that keys spread over all replicas, that a replica that
// stops moves only its own workspaces, that an editor's WebSocket goes where its key does and speaks LSP
// through nginx, and that round-robin (the comparison) does not keep a workspace in place. Also: the shipped
// nginx site and systemd unit parse, and scripts/team-demo starts, prints its URL and stops everything.
// Replicas run latentd's scripted backend (--test-backend): this tests routing, not a model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { latentd, connectWebSocket } from './lib/lsp_client.mjs';
import { initialize, editAndComplete, shutdown } from './lib/lsp_session.mjs';
import { makeCerts } from './lib/certs.mjs';
import { findNginx, startTeam } from '../../tools/deploy/team_demo.mjs';

const SOURCE = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const ARGS = ['--test-backend', '--ui', 'off'];
// Workspace keys as the extension makes them: a hash of a workspace folder's URI (editors/vscode/src/workspace_key.ts).
const KEYS = Array.from({ length: 40 }, (_, i) =>
  createHash('sha256').update(`file:///home/dev${i % 7}/project-${i}`).digest('hex').slice(0, 32));

let team;
before(async () => {
  assert.ok(findNginx(), 'expected nginx (Debian package; scripts/setup installs it), found none');
  team = await startTeam({ replicas: 3, balance: 'hash', latentd, latentdArgs: ARGS });
});
after(async () => { await team?.stop(); });

// Which replica answers GET /health through nginx for this key (header, or ?workspace= as a browser sends it).
async function replicaOf(url, key, { query = false } = {}) {
  const res = await fetch(`${url}/health${query ? `?workspace=${key}` : ''}`,
    { headers: query ? {} : { 'X-Latent-Workspace': key } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(res.headers.get('x-latent-replica'), body.replica, 'the header and /health name the same replica');
  return body.replica;
}

async function placement(url) {
  const where = new Map();
  for (const k of KEYS) where.set(k, await replicaOf(url, k));
  return where;
}

let first;  // key -> replica with every replica up

test('hash: the same workspace key always lands on the same replica, and keys spread over all of them', async () => {
  first = await placement(team.url);
  for (let round = 0; round < 2; ++round) assert.deepEqual(await placement(team.url), first);
  const ids = team.replicas.map((r) => r.id).sort();
  assert.deepEqual([...new Set(first.values())].sort(), ids, 'every replica holds some workspaces');
  // A browser's WebSocket cannot set headers: ?workspace= is the same key.
  for (const k of KEYS.slice(0, 6)) assert.equal(await replicaOf(team.url, k, { query: true }), first.get(k));
});

test('hash: an editor\'s WebSocket lands on its key\'s replica and speaks LSP through nginx', async () => {
  // One workspace per replica.
  const byReplica = new Map();
  for (const [k, r] of first) if (!byReplica.has(r)) byReplica.set(r, k);
  for (const [replica, key] of byReplica) {
    const s = await connectWebSocket(team.nginx.port, { headers: { 'X-Latent-Workspace': key } });
    try {
      assert.equal(s.upgradeHeaders['x-latent-replica'], replica);
      await initialize(s.connection);
      await editAndComplete(s);  // streamed partial results, a cancel, garbage: all through nginx
      await shutdown(s.connection);
    } finally {
      s.ws.close();
    }
  }
});

test('hash: a replica that stops moves only its own workspaces', async () => {
  const victim = team.replicas[0];
  const own = KEYS.filter((k) => first.get(k) === victim.id);
  assert.ok(own.length > 0);
  await victim.stop();  // resolves when the process has exited
  const after = await placement(team.url);
  const alive = new Set(team.replicas.slice(1).map((r) => r.id));
  for (const k of KEYS) {
    if (first.get(k) === victim.id) assert.ok(alive.has(after.get(k)), `${k} moved to a live replica, found ${after.get(k)}`);
    else assert.equal(after.get(k), first.get(k), `${k} stayed where it was`);
  }
  // And the moved ones stay put too.
  assert.deepEqual(await placement(team.url), after);
});

test('round-robin (the comparison): one workspace visits every replica', async () => {
  const rr = await startTeam({ replicas: 2, balance: 'round-robin', latentd, latentdArgs: ARGS });
  try {
    const seen = new Set();
    for (let i = 0; i < 4; ++i) seen.add(await replicaOf(rr.url, KEYS[0]));
    assert.deepEqual([...seen].sort(), rr.replicas.map((r) => r.id).sort());
  } finally {
    await rr.stop();
  }
});

test('the shipped nginx site (TLS, both upstreams) passes nginx -t', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-nginx-site-'));
  try {
    const certs = makeCerts(dir);
    const site = fs.readFileSync(path.join(SOURCE, 'tools/deploy/nginx/latent-site.conf'), 'utf8')
      .replaceAll('/etc/nginx/latent/', `${SOURCE}/tools/deploy/nginx/`)
      .replaceAll('/etc/ssl/latent/fullchain.pem', certs.cert)
      .replaceAll('/etc/ssl/latent/privkey.pem', certs.key)
      .replaceAll('/var/log/nginx/', `${dir}/`);
    fs.writeFileSync(path.join(dir, 'site.conf'), site);
    fs.writeFileSync(path.join(dir, 'nginx.conf'), `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\n` +
      `events {}\nhttp {\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n` +
      `  include ${dir}/site.conf;\n}\n`);
    const r = spawnSync(findNginx(), ['-t', '-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')],
      { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /test is successful/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('the shipped systemd unit parses (systemd-analyze verify says nothing)', (t) => {
  const analyze = spawnSync('systemd-analyze', ['--version']);
  if (analyze.error) return t.skip('systemd-analyze is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-unit-'));
  try {
    const unit = path.join(dir, 'latentd@8741.service');
    fs.writeFileSync(unit, fs.readFileSync(path.join(SOURCE, 'tools/deploy/latentd@.service'), 'utf8')
      .replace('/usr/local/bin/latentd', latentd));
    const r = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.split('\n').filter((l) => l.includes(unit)).join('\n'), '');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('scripts/team-demo: --help, then starts, prints its URL and stops everything on Ctrl-C', async () => {
  const script = path.join(SOURCE, 'scripts/team-demo');
  const help = spawnSync(script, ['--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Usage: scripts\/team-demo/);
  const bad = spawnSync(script, ['--balance', 'random', '--port', '0'], { encoding: 'utf8', env: { ...process.env, LATENT_RUN_NO_BUILD: '1' } });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /expected balance hash or round-robin, found 'random'/);

  const demo = spawn(script, ['--port', '0', '--json', '--latentd', latentd, '--', ...ARGS],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LATENT_RUN_NO_BUILD: '1' } });
  const exited = new Promise((resolve) => demo.on('exit', (code, signal) => resolve({ code, signal })));
  let out = '', err = '';
  demo.stderr.on('data', (d) => { err += d; });
  const ready = await new Promise((resolve, reject) => {
    demo.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]));
    });
    exited.then((e) => reject(new Error(`team-demo exited (${e.code ?? e.signal}) before it was ready: ${err}`)));
  });
  assert.equal(ready.replicas.length, 2);
  assert.equal(ready.balance, 'hash');
  const ids = new Set();
  for (const k of KEYS) ids.add(await replicaOf(ready.url, k));
  assert.equal(ids.size, 2);
  demo.kill('SIGINT');
  assert.deepEqual(await exited, { code: 0, signal: null });
  for (const pid of [ready.nginx.pid, ...ready.replicas.map((r) => r.pid)]) {
    assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is gone`);
  }
  assert.equal(fs.existsSync(ready.dir), false, 'its temp dir is removed');
});
