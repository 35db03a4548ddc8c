// The extension's remote-mode pieces against a real `latentd --listen` on loopback: its WebSocket transport
// (editors/vscode/src/websocket.ts, bearer token) and its stream readers (protocol.ts, stream.ts), bundled
// with esbuild from the extension's sources. latentd runs its scripted test backend, so this checks the
// protocol path, not a model. Skips with latentd's reason when this latentd cannot listen yet.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const bin = process.env.LATENT_BIN_DIR ?? path.join(root, 'build/bin');
const ext = path.join(root, 'editors/vscode');
const requireExt = createRequire(path.join(ext, 'node_modules', '/'));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'latent-vscode-remote-'));
let daemon; let url = ''; let why = ''; let mod; let rpc;
const token = 'e2e-token-' + process.pid;

before(async () => {
  // Bundle the extension's transport + readers (they import no `vscode`).
  const esbuild = requireExt('esbuild');
  const entry = path.join(tmp, 'entry.ts');
  writeFileSync(entry, ['websocket', 'protocol', 'stream']
    .map((m) => `export * from ${JSON.stringify(path.join(ext, 'src', m))};`).join('\n'));
  await esbuild.build({ entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', outfile: path.join(tmp, 'remote.cjs'),
    logLevel: 'error', nodePaths: [path.join(ext, 'node_modules')] });
  const req = createRequire(path.join(tmp, '/'));
  mod = req('./remote.cjs');
  rpc = requireExt('vscode-jsonrpc/node');

  writeFileSync(path.join(tmp, 'token'), token + '\n');
  daemon = spawn(path.join(bin, 'latentd'), ['--listen', '127.0.0.1:0', '--token-file', path.join(tmp, 'token'),
    '--test-backend'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise((resolve) => {
    daemon.stderr.on('data', (d) => {
      err += d;
      const m = /listening on ([\d.]+):(\d+)/.exec(err);
      if (m && !url) { url = `ws://${m[1]}:${m[2]}/lsp`; resolve(); }
    });
    daemon.on('exit', (code) => { why = `latentd --listen exited ${code}: ${err.trim().split('\n').pop()}`; resolve(); });
    setTimeout(() => { why ||= 'latentd --listen did not report its port within 120 s'; resolve(); }, 120_000).unref();
  });
});

after(() => {
  daemon?.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

test('remote: token, initialize, streamed inline completion over the extension transport', async (t) => {
  if (!url) return t.skip(`cannot test remote mode: ${why}`);
  const { reader, writer } = await mod.connectWebSocket(url, token);
  const conn = rpc.createMessageConnection(reader, writer);
  const asm = new mod.StreamAssembler();
  const chunks = [];
  conn.onProgress(new rpc.ProgressType(), 'latent-1', (v) => {
    const c = mod.readChunk(v);
    chunks.push(c);
    if (c) asm.push(c);
  });
  const statuses = [];
  conn.onNotification('latent/status', (p) => statuses.push(mod.readStatus(p)));
  conn.listen();
  // Token-by-token streaming of the scripted text: with the syntax check on (the default) partial results are
  // whole checked lines only (docs/lsp.md), so this transport test turns it off.
  const init = await conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {},
    initializationOptions: { latent: { syntaxCheck: 'off' } } });
  assert.ok(init.capabilities.inlineCompletionProvider, 'expected inlineCompletionProvider');
  await conn.sendNotification('initialized', {});
  const uri = 'file:///tmp/remote-test.py';
  await conn.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text: 'def add(a, b):\n    return ' },
  });
  const result = await conn.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: { line: 1, character: 11 }, context: { triggerKind: 2 },
    partialResultToken: 'latent-1', latent: { maxTokens: 16 },
  });
  const final = asm.finish(mod.resultText(result));
  t.diagnostic(`streamed ${chunks.length} chunks, final ${JSON.stringify(final)}`);
  assert.ok(chunks.length >= 2, `expected streamed chunks, found ${chunks.length}`);
  assert.ok(chunks.every((c) => c && c.kind === 'full'), 'latentd streams whole-text snapshots');
  assert.ok(final.trim().length > 0, 'expected completion text');
  assert.ok(final.startsWith(chunks[0].text.trimEnd()), 'the final text extends the first snapshot');
  assert.deepEqual(statuses.at(-1)?.state, 'ready');
  const audit = await conn.sendRequest('latent/explainContext', { textDocument: { uri }, position: { line: 1, character: 11 } });
  assert.equal(typeof audit.prompt, 'string');
  conn.dispose();
  writer.end();
});

test('remote: a wrong token is refused with 401 and a hint', async (t) => {
  if (!url) return t.skip(`cannot test remote mode: ${why}`);
  await assert.rejects(mod.connectWebSocket(url, 'wrong'), /found HTTP 401 \(is the token right/);
  await assert.rejects(mod.connectWebSocket(url, undefined), /found HTTP 401/);
});
