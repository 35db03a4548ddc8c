// latentd --tls-cert/--tls-key: HTTPS and WSS on one port, checked with real npm clients that trust a
// throwaway CA given to them explicitly (openssl CLI makes it, tests/node/lib/certs.mjs): the `openai` client
// (through undici's fetch with the CA), and `ws` for an LSP session over WSS. Clients that do not trust the CA,
// or speak plain HTTP to the TLS port, get nothing. Bad certificate and key files stop latentd at startup with
// a message naming the file and the fault. Every token comes from the engine (models/demo or openai-tiny).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { latentd, rpc } from './lib/lsp_client.mjs';
import { initialize, shutdown } from './lib/lsp_session.mjs';
import { makeCerts } from './lib/certs.mjs';
import { untilServing } from './lib/health.mjs';

const require = createRequire(import.meta.url);
const { default: OpenAI } = require('openai');
const WebSocket = require('ws');
const undici = require('undici');

const SOURCE = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const DEMO = path.join(SOURCE, 'models', 'demo');
const MODEL = fs.existsSync(path.join(DEMO, 'tokenizer.json')) ? DEMO : path.join(process.env.LATENT_TEST_DATA, 'openai-tiny');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-tls-'));
const token = `tls-${process.pid}`;
let certs;
let daemon;

// Resolves with {child, port, log()} once latentd reports its port.
function start(args) {
  const child = spawn(latentd, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = /listening on [\d.]+:(\d+) \(([^)]*)\)/.exec(log);
      if (m) resolve({ child, port: Number(m[1]), mode: m[2], log: () => log });
    });
    child.on('exit', (code) => reject(new Error(`latentd exited ${code}: ${log}`)));
  });
}

before(async () => {
  certs = makeCerts(tmp);
  fs.writeFileSync(path.join(tmp, 'token'), `${token}\n`);
  daemon = await start(['--model', MODEL, '--cache-mb', '64', '--tls-cert', certs.cert, '--tls-key', certs.key,
    '--token-file', path.join(tmp, 'token'), '--ui', 'off']);
});

after(() => {
  daemon?.child.removeAllListeners('exit');
  daemon?.child.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

const dispatcher = () => new undici.Agent({ connect: { ca: certs.ca } });

test('tls: latentd says it serves HTTPS and WSS', () => {
  assert.match(daemon.mode, /TLS: WSS \/lsp, HTTPS/);
});

test('tls: /health over HTTPS with the CA; refused without it; plain HTTP gets no answer', async () => {
  const base = `https://127.0.0.1:${daemon.port}`;
  const ok = await untilServing(`${base}/health`, (u) => undici.fetch(u, { dispatcher: dispatcher() }));
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).status, 'ok');
  // Node's own CA store does not hold the test CA: the handshake must fail on the certificate.
  await assert.rejects(undici.fetch(`${base}/health`), (e) => /certificate/i.test(`${e.cause?.code} ${e.cause?.message}`));
  await assert.rejects(fetch(`http://127.0.0.1:${daemon.port}/health`));
});

test('tls: the openai client completes and streams over HTTPS (token still required)', async () => {
  const opts = { baseURL: `https://127.0.0.1:${daemon.port}/v1`, maxRetries: 0,
    fetch: undici.fetch, fetchOptions: { dispatcher: dispatcher() } };
  const client = new OpenAI({ ...opts, apiKey: token });
  const req = { model: 'any', prompt: 'def add(a, b):\n', max_tokens: 8, temperature: 0 };
  const whole = await client.completions.create(req);
  assert.ok(whole.usage.completion_tokens >= 1, JSON.stringify(whole.usage));
  let streamed = '';
  let chunks = 0;
  for await (const c of await client.completions.create({ ...req, stream: true })) {
    streamed += c.choices[0]?.text ?? '';
    chunks += 1;
  }
  assert.ok(chunks >= 1);
  assert.equal(streamed, whole.choices[0].text, 'greedy: the stream and the whole answer agree');
  const wrong = new OpenAI({ ...opts, apiKey: 'wrong' });
  await assert.rejects(wrong.models.list(), (e) => e.status === 401);
});

// Opens wss://127.0.0.1:PORT/lsp; resolves with the socket or rejects with the error.
function openWss(opts) {
  const ws = new WebSocket(`wss://127.0.0.1:${daemon.port}/lsp`, opts);
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_q, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
    ws.on('open', () => resolve(ws));
  });
}

test('tls: an LSP session over WSS with the ws client trusting the CA', async () => {
  const ws = await openWss({ ca: certs.ca, headers: { Authorization: `Bearer ${token}` } });
  const reader = new (class extends rpc.AbstractMessageReader {
    listen(cb) { ws.on('message', (d) => cb(JSON.parse(d.toString('utf8')))); return { dispose() {} }; }
  })();
  const writer = new (class extends rpc.AbstractMessageWriter {
    write(m) { return new Promise((res, rej) => ws.send(JSON.stringify(m), (e) => (e ? rej(e) : res()))); }
    end() {}
  })();
  const connection = rpc.createMessageConnection(reader, writer);
  connection.listen();
  const init = await initialize(connection);
  assert.ok(init.capabilities, JSON.stringify(init));
  await shutdown(connection);
  await new Promise((r) => ws.once('close', r));
  await assert.rejects(openWss({ headers: { Authorization: `Bearer ${token}` } }), (e) => /certificate/i.test(`${e.code} ${e.message}`));
  await assert.rejects(openWss({ ca: certs.ca }), (e) => e.status === 401);
});

// latentd's exit status and last stderr line for these TLS files.
function startupError(cert, key) {
  const args = ['--listen', '127.0.0.1:0', '--no-model', '--ui', 'off'];
  if (cert) args.push('--tls-cert', cert);
  if (key) args.push('--tls-key', key);
  const r = spawnSync(latentd, args, { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, err: r.stderr.trim() };
}

test('tls: bad certificate or key files stop latentd with the file and the fault', () => {
  const missing = path.join(tmp, 'nope.pem');
  let r = startupError(missing, certs.key);
  assert.notEqual(r.status, 0);
  assert.match(r.err, new RegExp(`--tls-cert ${missing}: expected a readable PEM file, found No such file`));
  r = startupError(certs.key, certs.key);  // a key where the certificate belongs
  assert.match(r.err, /--tls-cert .*server\.key: expected a PEM certificate \(chain\), found none usable/);
  r = startupError(certs.cert, certs.cert);
  assert.match(r.err, /--tls-key .*server\.pem: expected an unencrypted PEM private key, found none usable/);
  r = startupError(certs.cert, certs.otherKey);
  assert.match(r.err, /--tls-key .*other\.key: expected the private key of --tls-cert .*server\.pem, found a key that does not match it/);
  const empty = path.join(tmp, 'empty.pem');
  fs.writeFileSync(empty, '');
  r = startupError(certs.cert, empty);
  assert.match(r.err, /--tls-key .*empty\.pem: expected PEM, found an empty file/);
  r = startupError(certs.cert, null);
  assert.match(r.err, /expected both --tls-cert and --tls-key, found only --tls-cert/);
});
