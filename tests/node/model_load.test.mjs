// latentd loads its model on a thread of its own and answers at once: a checkpoint whose config.json and
// tokenizer are fine but whose weights do not match (num_hidden_layers one more than the file holds) starts,
// answers initialize, and then reports the failed load everywhere: latent/status {state: "error", phase:
// "failed", message naming the missing tensor, expected vs found}, GET /health 503 "error", completions 503 model_load_failed and
// LSP completions an error with the same reason. The daemon stays up. (The phases of a load that succeeds, held
// by a hook, are tests/server/model_loader_test.cpp; a GPU's upload phase cannot run here.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startListening, connectWebSocket, until } from './lib/lsp_client.mjs';
import { initialize } from './lib/lsp_session.mjs';

const data = process.env.LATENT_TEST_DATA ?? path.resolve(import.meta.dirname, '../data');
const tiny = path.join(data, 'openai-tiny');

test('a model that fails to load: latentd serves, and says why in latent/status, /health and every request', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-bad-load-'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) {
    fs.copyFileSync(path.join(tiny, f), path.join(dir, f));
  }
  const config = JSON.parse(fs.readFileSync(path.join(tiny, 'config.json'), 'utf8'));
  // The layer the file lacks (or, with an MTP module, the layer after it): "NAME: expected ..., found none".
  const missing = /model\.layers\.\d+\.[\w.]+: expected .*found none/;
  config.num_hidden_layers += 1;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const daemon = await startListening(['--model', dir, '--cache-mb', '8', '--ui', 'off']);
  try {
    const base = `http://127.0.0.1:${daemon.port}`;
    const c = await connectWebSocket(daemon.port);
    const statuses = [];
    c.connection.onNotification('latent/status', (s) => statuses.push(s));
    const init = await initialize(c.connection);
    assert.ok(init.capabilities.experimental.latent.contextLength > 0, 'known from config.json before the weights');
    await until(() => statuses.some((s) => s.state === 'error'), 120_000, 'latent/status "error"');
    const failed = statuses.find((s) => s.state === 'error');
    assert.equal(failed.phase, 'failed');
    assert.match(failed.message, /the model failed to load/);
    assert.match(failed.message, missing);
    for (const s of statuses.slice(0, statuses.indexOf(failed))) assert.equal(s.state, 'loading', JSON.stringify(statuses));

    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    const h = await health.json();
    assert.equal(h.status, 'error');
    assert.equal(h.model.phase, 'failed');
    assert.equal(health.headers.get('retry-after'), null, 'a failed load does not get better by retrying');

    const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'def f(x):\n', max_tokens: 4 }) });
    assert.equal(res.status, 503);
    const err = (await res.json()).error;
    assert.equal(err.code, 'model_load_failed');
    assert.match(err.message, missing);

    const uri = 'file:///tmp/latent-bad-load/f.py';
    await c.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: 'def f(x):\n    ' } });
    await assert.rejects(c.connection.sendRequest('textDocument/inlineCompletion', { textDocument: { uri },
      position: { line: 1, character: 4 }, context: { triggerKind: 1 } }), (e) => /the model failed to load/.test(e.message) && missing.test(e.message));
    assert.equal(daemon.child.exitCode, null, 'latentd is still running');
    c.ws.close();
  } finally {
    daemon.child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
