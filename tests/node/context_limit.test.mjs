// Honest limits: with a latent cache that holds fewer tokens than the model's max_position_embeddings (4096 for
// the demo model), /v1/models and the LSP initialize result advertise what the cache holds, and a request
// longer than that is refused with a clear error before anything is decoded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startListening, connectWebSocket } from './lib/lsp_client.mjs';
import { initialize, shutdown } from './lib/lsp_session.mjs';

const source = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const model = path.join(source, 'models', 'demo');

test('the advertised context length is what the cache holds', { skip: fs.existsSync(path.join(model, 'tokenizer.json')) ? false : 'no demo model' }, async () => {
  const daemon = await startListening(['--model', model, '--cache-mb', '1']);
  try {
    const base = `http://127.0.0.1:${daemon.port}`;
    const models = await (await fetch(`${base}/v1/models`)).json();
    const n = models.data[0].max_model_len;
    assert.ok(n > 0 && n < 4096, `expected the 1 MiB cache's length (< max_position_embeddings 4096), found ${n}`);

    const res = await fetch(`${base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: 'def f(x):\n', max_tokens: n, temperature: 0 }) });
    assert.equal(res.status, 400);
    const err = await res.json();
    assert.equal(err.error.code, 'context_length_exceeded', JSON.stringify(err));

    const c = await connectWebSocket(daemon.port);
    const init = await initialize(c.connection);
    assert.equal(init.capabilities.experimental.latent.contextLength, n);
    const uri = 'file:///tmp/latent-limit/f.py';
    await c.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text: 'def f(x):\n    ' } });
    // Within the limit (latentd fitted its context budget to the cache): a completion.
    const ok = await c.connection.sendRequest('textDocument/inlineCompletion', { textDocument: { uri },
      position: { line: 1, character: 4 }, context: { triggerKind: 1 }, latent: { maxTokens: 16 } });
    assert.ok(Array.isArray(ok.items));
    // Beyond it: an error that names the limit, before decoding.
    await assert.rejects(c.connection.sendRequest('textDocument/inlineCompletion', { textDocument: { uri },
      position: { line: 1, character: 4 }, context: { triggerKind: 1 }, latent: { maxTokens: 4096 } }),
    (e) => new RegExp(`prompt \\+ maxTokens <= ${n} tokens`).test(e.message));
    await shutdown(c.connection);
  } finally {
    daemon.child.kill('SIGKILL');
  }
});
