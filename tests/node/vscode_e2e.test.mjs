// End-to-end: the packaged extension in code-server, driven by headless Chromium (scripts/e2e-vscode). It
// types in a workspace file, waits for ghost text that latentd produced with its default model, presses Tab
// and checks that the text landed in the file. Screenshots: build/test-artifacts/vscode-e2e/*.png.
// Before the browser starts, latentd is probed over stdio with a real JSON-RPC client: when it cannot serve
// inline completions (no model, no --stdio serving, no inlineCompletionProvider) the test skips and says why;
// it never fakes the ghost text. LATENT_E2E=0 skips it too (scripts/setup then skips the heavy install).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const bin = process.env.LATENT_BIN_DIR ?? path.join(root, 'build/bin');
const latentd = path.join(bin, 'latentd');
const model = process.env.LATENT_E2E_MODEL ?? '';
const require = createRequire(path.join(process.env.NODE_PATH ?? path.join(root, 'deps/node_modules'), '/'));
const rpc = require('vscode-jsonrpc/node');

// Why latentd cannot serve an inline completion over stdio, or '' when it can.
async function probe() {
  const args = ['--stdio', ...(model ? ['--model', model] : [])];
  const child = spawn(latentd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});  // EPIPE when latentd exits early; the exit code tells why
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const timeout = (ms) => new Promise((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
  // A latentd that cannot serve usually exits at once: say so rather than report a broken pipe.
  const early = await Promise.race([exited, timeout(500)]);
  if (early !== 'timeout') return `latentd --stdio exited ${early}: ${stderr.trim().split('\n').pop()}`;
  const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(child.stdin));
  conn.onError(() => {});
  conn.listen();
  try {
    const init = conn.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    const r = await Promise.race([init.then((v) => ({ v }), (e) => ({ e })), exited.then((code) => ({ code })), timeout(120_000)]);
    if (r === 'timeout') return 'latentd --stdio did not answer initialize within 120 s';
    if ('code' in r) return `latentd --stdio exited ${r.code} before initialize: ${stderr.trim().split('\n').pop()}`;
    if ('e' in r) {
      const code = await Promise.race([exited, timeout(2000)]);
      if (code !== 'timeout') return `latentd --stdio exited ${code} before initialize: ${stderr.trim().split('\n').pop()}`;
      return `latentd refused initialize: ${r.e.message}`;
    }
    if (!r.v?.capabilities?.inlineCompletionProvider) {
      return 'latentd does not advertise inlineCompletionProvider yet';
    }
    if (/no model/i.test(stderr)) return `latentd reports no model: ${stderr.trim().split('\n').pop()}`;
    return '';
  } finally {
    try { conn.dispose(); } catch { /* closed */ }
    child.kill('SIGKILL');
  }
}

test('ghost text from latentd is shown in code-server and accepted with Tab', { timeout: 600_000 }, async (t) => {
  if (process.env.LATENT_E2E === '0') return t.skip('LATENT_E2E=0');
  assert.ok(existsSync(latentd), `expected latentd at ${latentd}, found none`);
  const why = await probe();
  if (why) return t.skip(`cannot run end to end: ${why}`);
  const out = path.join(bin, '../test-artifacts/vscode-e2e');
  const r = spawnSync(path.join(root, 'scripts/e2e-vscode'), ['--server', latentd, '--out', out,
    ...(model ? ['--model', model] : [])], { encoding: 'utf8', timeout: 540_000 });
  process.stderr.write(r.stderr ?? '');
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let res;
  try { res = JSON.parse(line); } catch { assert.fail(`expected a JSON result from scripts/e2e-vscode, found ${line || r.error}`); }
  t.diagnostic(`ghost text ${JSON.stringify(res.ghost)} after ${res.ghostMs} ms; screenshots: ${res.screenshots?.join(', ')}`);
  assert.equal(res.ok, true, `${res.reason}\n--- extension log ---\n${res.log}`);
  assert.ok(res.inserted && res.inserted.trim().length > 0, 'expected Tab to insert text');
  assert.equal(r.status, 0);
});
