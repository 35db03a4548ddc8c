// latentd --users: per-user tokens made by `latent user add` (only hashes on disk, file 0600), scopes checked
// on every route and LSP method (401 without a known token, alike for every user; 403 for a missing scope),
// the file re-read on SIGHUP, per-user /metrics, a per-user connection limit that one user's 1,000 connections
// hit while another user is served, tokens in URLs refused over plain HTTP on a non-loopback address, and two
// users editing the same path without cancelling each other. Real clients: `openai`, `ws`, vscode-jsonrpc.
// The engine runs models/demo (else tests/data/openai-tiny).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bin, latentd, connectWebSocket, rpc, until } from './lib/lsp_client.mjs';
import { initialize, shutdown } from './lib/lsp_session.mjs';
import { untilServing } from './lib/health.mjs';

const require = createRequire(import.meta.url);
const { default: OpenAI } = require('openai');
const WebSocket = require('ws');

const SOURCE = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(SOURCE, 'models', 'demo');
const MODEL = fs.existsSync(path.join(DEMO, 'tokenizer.json')) ? DEMO : path.join(process.env.LATENT_TEST_DATA, 'openai-tiny');
const LIMIT = 4;  // --max-connections-per-user

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-users-'));
const usersFile = path.join(tmp, 'users.jsonl');
const wideFile = path.join(tmp, 'wide.jsonl');  // the same users, for the non-loopback daemon
const tokens = {};
let daemon;

function addUser(name, scopes) {
  tokens[name] = execFileSync(path.join(bin, 'latent'), ['user', 'add', name, '--scopes', scopes, '--users', usersFile],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

// latentd on `listen` with ARGS; resolves with {child, port, log()} once it listens.
function start(listen, args) {
  const child = spawn(latentd, ['--listen', listen, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  return new Promise((resolve, reject) => {
    child.stderr.on('data', () => {
      const m = /listening on [^ ]+:(\d+) /.exec(log);
      if (m) resolve({ child, port: Number(m[1]), log: () => log });
    });
    child.on('exit', (code) => reject(new Error(`latentd exited ${code}: ${log}`)));
  });
}

before(async () => {
  addUser('ada', 'complete,chat');
  addUser('bob', 'complete');
  addUser('carol', 'chat');
  addUser('root', 'admin');
  addUser('dave', 'complete');
  fs.copyFileSync(usersFile, wideFile);
  daemon = await start('127.0.0.1:0', ['--model', MODEL, '--cache-mb', '64', '--users', usersFile,
    '--max-connections-per-user', String(LIMIT), '--ui', 'off']);
  await untilServing(`http://127.0.0.1:${daemon.port}/health`);  // /health is 503 "loading" until the model serves
});

after(() => {
  daemon?.child.removeAllListeners('exit');
  daemon?.child.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const base = () => `http://127.0.0.1:${daemon.port}`;
const get = (p, token, headers = {}) =>
  fetch(`${base()}${p}`, { headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers } });
const post = (p, token, body) => fetch(`${base()}${p}`, {
  method: 'POST', body: JSON.stringify(body),
  headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
});
const client = (name) => new OpenAI({ baseURL: `${base()}/v1`, apiKey: tokens[name], maxRetries: 0 });

test('users: `latent user add` stores only hashes, in a 0600 file, and prints each token once', () => {
  assert.equal(fs.statSync(usersFile).mode & 0o777, 0o600);
  const text = fs.readFileSync(usersFile, 'utf8');
  const lines = text.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.user), ['ada', 'bob', 'carol', 'root', 'dave']);
  for (const l of lines) {
    assert.match(tokens[l.user], /^lat_[0-9a-f]{64}$/);
    assert.ok(!text.includes(tokens[l.user]), 'no plain token in the file');
    assert.match(l.token_sha256, /^[0-9a-f]{64}$/);
  }
  assert.deepEqual(lines[0].scopes, ['complete', 'chat']);
  const again = spawnResult(['user', 'add', 'ada', '--scopes', 'chat', '--users', usersFile]);
  assert.notEqual(again.status, 0);
  assert.match(again.stderr, /expected a new user, found 'ada' there already/);
  assert.match(spawnResult(['user', 'add', 'eve', '--scopes', 'root', '--users', usersFile]).stderr,
    /--scopes: expected scopes among complete, chat, agent, admin, found 'root'/);
});

function spawnResult(args) {
  try {
    return { status: 0, stdout: execFileSync(path.join(bin, 'latent'), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    return { status: e.status, stderr: e.stderr };
  }
}

test('users: 401 without a token or with an unknown one, the same answer either way; /health is free', async () => {
  assert.equal((await get('/health')).status, 200);
  const none = await post('/v1/completions', null, { prompt: 'x', max_tokens: 1 });
  assert.equal(none.status, 401);
  const unknown = await post('/v1/completions', 'lat_' + '0'.repeat(64), { prompt: 'x', max_tokens: 1 });
  const wrongish = await post('/v1/completions', tokens.ada.slice(0, -1) + 'x', { prompt: 'x', max_tokens: 1 });
  assert.equal(unknown.status, 401);
  assert.equal(wrongish.status, 401);
  const [u, w] = [await unknown.json(), await wrongish.json()];
  assert.deepEqual(u, w, 'a near-miss of a real token is answered exactly as a made-up one');
  assert.ok(!JSON.stringify(u).includes('ada'));
  await assert.rejects(connectWebSocket(daemon.port, { token: 'nobody' }), (e) => e.status === 401);
});

test('users: each route checks its scope (403 names it), and a user with it is served', async () => {
  const req = { model: 'any', prompt: 'def f(x):\n', max_tokens: 4, temperature: 0 };
  const done = await client('ada').completions.create(req);
  assert.ok(done.usage.completion_tokens >= 1);
  const chat = await client('ada').chat.completions.create({ model: 'any', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] });
  assert.ok(chat.usage.completion_tokens >= 1);
  await assert.rejects(client('bob').chat.completions.create({ model: 'any', max_tokens: 3, messages: [{ role: 'user', content: 'hi' }] }),
    (e) => e.status === 403 && /'chat' scope for POST \/v1\/chat\/completions/.test(e.message));
  await assert.rejects(client('carol').completions.create(req), (e) => e.status === 403 && /'complete' scope/.test(e.message));
  const infill = await post('/infill', tokens.carol, { input_prefix: 'a', input_suffix: '', n_predict: 1 });
  assert.equal(infill.status, 403);
  assert.equal((await get('/metrics', tokens.ada)).status, 403);
  assert.equal((await get('/dashboard', tokens.ada)).status, 403);
  assert.equal((await get('/v1/models', tokens.carol)).status, 200, 'no scope needed to list models');
  const metrics = await (await get('/metrics', tokens.root)).text();
  // Per-user accounting: ada's requests and tokens, under her name only.
  assert.match(metrics, /latent_user_requests_total\{user="ada",endpoint="\/v1\/completions",status="200"\} 1/);
  assert.match(metrics, /latent_user_requests_total\{user="ada",endpoint="\/v1\/chat\/completions",status="200"\} 1/);
  const completionTokens = Number(/latent_user_tokens_total\{user="ada",kind="completion"\} (\d+)/.exec(metrics)?.[1]);
  assert.equal(completionTokens, done.usage.completion_tokens + chat.usage.completion_tokens);
  assert.match(metrics, /latent_user_request_seconds_count\{user="ada"\} 2/);
  assert.ok(!/user="bob".*status="200"/.test(metrics), 'bob made no successful request');
});

test('users: LSP methods check scopes too (-32004), per connection', async () => {
  const carol = await connectWebSocket(daemon.port, { token: tokens.carol });
  await initialize(carol.connection);
  const uri = 'file:///tmp/latent-users/scoped.py';
  await carol.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: 'x = 1\n' } });
  await assert.rejects(carol.connection.sendRequest('textDocument/inlineCompletion',
    { textDocument: { uri }, position: { line: 1, character: 0 }, context: { triggerKind: 1 } }),
  (e) => e.code === -32004 && /'complete' scope/.test(e.message));
  await assert.rejects(carol.connection.sendRequest('latent/agent/start', { prompt: 'hi' }),
    (e) => e.code === -32004 && /'agent' scope/.test(e.message));
  await shutdown(carol.connection);
});

test('users: two users editing the same path do not cancel each other', async () => {
  const uri = 'file:///tmp/latent-users/shared.py';
  const text = 'def mean(values):\n    total = 0\n    for v in values:\n        ';
  const clients = [];
  for (const name of ['ada', 'bob']) {
    const c = await connectWebSocket(daemon.port, { token: tokens[name] });
    const usage = [];
    c.connection.onNotification('latent/usage', (u) => usage.push(u));
    await initialize(c.connection, { latent: { usage: true } });
    await c.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text } });
    clients.push({ ...c, usage, name });
  }
  const [a, b] = clients;
  const params = (token) => ({ textDocument: { uri }, position: { line: 3, character: 8 }, context: { triggerKind: 1 },
    latent: { maxTokens: 64 }, partialResultToken: token });
  let aStreaming;
  const aStarted = new Promise((resolve) => { aStreaming = resolve; });
  a.connection.onProgress(new rpc.ProgressType(), 'ada-1', () => aStreaming());
  const aResult = a.connection.sendRequest('textDocument/inlineCompletion', params('ada-1'));
  await Promise.race([aStarted, aResult]);  // ada's completion is decoding (or done) when bob asks
  const bResult = b.connection.sendRequest('textDocument/inlineCompletion', params('bob-1'));
  const [ra, rb] = await Promise.all([aResult, bResult]);  // a RequestCancelled would reject
  assert.ok(Array.isArray(ra.items) && Array.isArray(rb.items));
  await until(() => a.usage.length >= 1 && b.usage.length >= 1, 60_000, 'latent/usage from both');
  for (const c of clients) assert.notEqual(c.usage[0].finishReason, 'superseded', `${c.name}: ${JSON.stringify(c.usage[0])}`);
  for (const c of clients) await shutdown(c.connection);
  // LSP completions count per user as well (recorded before latent/usage is sent).
  const metrics = await (await get('/metrics', tokens.root)).text();
  assert.match(metrics, /latent_user_requests_total\{user="bob",endpoint="lsp\/inlineCompletion",status="200"\} \d+/);
});

// Opens ws://.../lsp as `token`; resolves with {ws} or {status} of the refusal.
function tryWebSocket(token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${daemon.port}/lsp`, { headers: { Authorization: `Bearer ${token}` } });
    ws.on('unexpected-response', (_q, res) => { resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] }); ws.terminate(); });
    ws.on('error', (e) => resolve({ error: e.message }));
    ws.on('open', () => resolve({ ws }));
  });
}

test('users: one user opening 1,000 connections is bounded; another user does not notice', async () => {
  const held = [];
  const refused = [];
  for (let i = 0; i < 1000; i += 100) {
    const batch = await Promise.all(Array.from({ length: 100 }, () => tryWebSocket(tokens.dave)));
    for (const r of batch) (r.ws ? held : refused).push(r);
  }
  try {
    assert.equal(held.length, LIMIT, `dave holds exactly --max-connections-per-user sessions`);
    assert.equal(refused.length, 1000 - LIMIT);
    assert.ok(refused.every((r) => r.status === 429 && r.retryAfter === '1'), JSON.stringify(refused.find((r) => r.status !== 429)));
    // Meanwhile ada: a WebSocket session and the HTTP API as usual.
    const ada = await connectWebSocket(daemon.port, { token: tokens.ada });
    await initialize(ada.connection);
    await shutdown(ada.connection);
    const r = await client('ada').completions.create({ model: 'any', prompt: 'x = ', max_tokens: 2, temperature: 0 });
    assert.ok(r.usage.completion_tokens >= 1);
  } finally {
    for (const h of held) h.ws.close();
  }
  // Once dave's sessions have ended on the server, he gets a connection again (each end gives its slot back).
  const t0 = Date.now();
  for (;;) {
    const again = await tryWebSocket(tokens.dave);
    if (again.ws) { again.ws.close(); break; }
    assert.equal(again.status, 429);
    assert.ok(Date.now() - t0 < 60_000, 'dave never got a slot back after closing his sessions');
    await new Promise((r) => setTimeout(r, 20));
  }
});

test('users: a user removed from the file is refused after SIGHUP; a bad file keeps the users loaded', async () => {
  assert.equal((await get('/v1/models', tokens.bob)).status, 200);
  const kept = fs.readFileSync(usersFile, 'utf8').split('\n').filter((l) => l && JSON.parse(l).user !== 'bob');
  fs.writeFileSync(usersFile, kept.join('\n') + '\n');
  const seen = daemon.log().length;
  daemon.child.kill('SIGHUP');
  await until(() => /users: reloaded 4 from/.test(daemon.log().slice(seen)), 60_000, 'the reload log line');
  assert.equal((await get('/v1/models', tokens.bob)).status, 401);
  assert.equal((await get('/v1/models', tokens.ada)).status, 200);
  fs.writeFileSync(usersFile, 'not json\n');
  const seen2 = daemon.log().length;
  daemon.child.kill('SIGHUP');
  await until(() => /reload on SIGHUP failed, keeping the previous users: .*line 1: expected a JSON object/.test(daemon.log().slice(seen2)),
    60_000, 'the failed reload log line');
  assert.equal((await get('/v1/models', tokens.ada)).status, 200);
  assert.equal(daemon.child.exitCode, null, 'latentd still runs');
});

test('users: a token in the URL is refused over plain HTTP on a non-loopback address', async () => {
  const wide = await start('0.0.0.0:0', ['--no-model', '--users', wideFile, '--ui', 'off']);
  try {
    const url = `http://127.0.0.1:${wide.port}`;
    const inUrl = await fetch(`${url}/v1/models?token=${tokens.ada}`);
    assert.equal(inUrl.status, 401);
    assert.equal((await inUrl.json()).error.type, 'token_in_url_refused');
    assert.equal((await fetch(`${url}/v1/models`, { headers: { Authorization: `Bearer ${tokens.ada}` } })).status, 200);
  } finally {
    wide.child.removeAllListeners('exit');
    wide.child.kill('SIGKILL');
  }
  // On loopback the URL form stays allowed (browsers cannot set headers on a WebSocket).
  assert.equal((await fetch(`${base()}/v1/models?token=${tokens.ada}`)).status, 200);
});

test('users: over the request quota, 429 with Retry-After; other users keep theirs', async () => {
  // One request per minute per user (the unit test, UserQuotas.*, checks the arithmetic with a manual clock).
  const q = await start('127.0.0.1:0', ['--no-model', '--users', wideFile, '--requests-per-minute', '1', '--ui', 'off']);
  try {
    const call = (name) => fetch(`http://127.0.0.1:${q.port}/v1/completions`, {
      method: 'POST', body: JSON.stringify({ prompt: 'x', max_tokens: 1 }),
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${tokens[name]}` },
    });
    assert.notEqual((await call('ada')).status, 429, 'the first request is within the quota');
    const over = await call('ada');
    assert.equal(over.status, 429);
    assert.equal((await over.json()).error.type, 'rate_limited');
    assert.ok(Number(over.headers.get('retry-after')) >= 1, over.headers.get('retry-after'));
    assert.notEqual((await call('bob')).status, 429, 'bob has a quota of his own');
    assert.equal((await fetch(`http://127.0.0.1:${q.port}/v1/models`, { headers: { Authorization: `Bearer ${tokens.ada}` } })).status, 200,
      'listing models takes no quota');
  } finally {
    q.child.removeAllListeners('exit');
    q.child.kill('SIGKILL');
  }
});
