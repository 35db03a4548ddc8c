// latentd --listen over WebSocket (ws + vscode-jsonrpc's reader/writer over the socket): the same session
// as over stdio, two clients at once, the bearer token and the Origin allow-list, HTTP /health and JSON 404s.
// Completions come from latentd's scripted test backend (--test-backend), not a model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startListening, connectWebSocket, latentd } from './lib/lsp_client.mjs';
import { initialize, editAndComplete, shutdown } from './lib/lsp_session.mjs';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'latent-lsp-ws-'));
const token = `tok-${process.pid}`;
let daemon;

before(async () => {
  writeFileSync(path.join(tmp, 'token'), `${token}\n`);
  daemon = await startListening(['--test-backend', '--token-file', path.join(tmp, 'token'),
    '--allow-origin', 'http://localhost:5173']);
});

after(() => {
  daemon?.child.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

test('websocket: a session end to end with the scripted backend', async () => {
  const s = await connectWebSocket(daemon.port, { token });
  await initialize(s.connection);
  await editAndComplete(s);
  await shutdown(s.connection);
  await new Promise((r) => s.ws.once('close', r));
});

test('websocket: two clients at once, ?token= for browsers, allowed Origin', async () => {
  const [a, b] = await Promise.all([
    connectWebSocket(daemon.port, { token }),
    connectWebSocket(daemon.port, { query: `?token=${token}`, origin: 'http://localhost:5173' }),
  ]);
  await Promise.all([initialize(a.connection), initialize(b.connection)]);
  await Promise.all([editAndComplete(a), editAndComplete(b)]);
  a.ws.close();
  b.ws.close();
});

test('websocket: refused without the token, with a wrong one, or from a foreign Origin', async () => {
  await assert.rejects(connectWebSocket(daemon.port, {}), (e) => e.status === 401);
  await assert.rejects(connectWebSocket(daemon.port, { token: 'wrong' }), (e) => e.status === 401);
  await assert.rejects(connectWebSocket(daemon.port, { token, origin: 'https://evil.example' }), (e) => e.status === 403);
});

test('http: /health, JSON 404 for other routes, token required', async () => {
  const base = `http://127.0.0.1:${daemon.port}`;
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal((await health.json()).status, 'ok');
  const denied = await fetch(`${base}/v1/models`);
  assert.equal(denied.status, 401);
  const missing = await fetch(`${base}/v1/nothing`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.type, 'not_found');
});

test('latentd refuses a non-loopback --listen without --token-file', () => {
  const r = spawnSync(latentd, ['--listen', '0.0.0.0:0'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /expected --token-file/);
});
