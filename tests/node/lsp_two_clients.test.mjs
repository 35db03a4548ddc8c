// Two clients of one latentd (WebSocket, the demo model behind both) editing the same path: each one's
// completions are keyed by its own connection, so one never supersedes the other's in the engine. The first
// client's completion is still decoding (its first text has streamed) when the second one asks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startListening, connectWebSocket, rpc, until } from './lib/lsp_client.mjs';
import { initialize, shutdown } from './lib/lsp_session.mjs';

const source = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const model = [process.env.LATENT_LSP_TEST_MODEL, path.join(source, 'models', 'demo')].filter(Boolean)
  .find((d) => fs.existsSync(path.join(d, 'tokenizer.json')));

test('two connections editing the same path do not cancel each other', { skip: model ? false : 'no model' }, async () => {
  const daemon = await startListening(['--model', model, '--cache-mb', '64']);
  try {
    const uri = 'file:///tmp/latent-two-clients/shared.py';
    const text = 'def mean(values):\n    total = 0\n    for v in values:\n        ';
    const clients = [];
    for (const name of ['a', 'b']) {
      const c = await connectWebSocket(daemon.port);
      const usage = [];
      c.connection.onNotification('latent/usage', (u) => usage.push(u));
      await initialize(c.connection, { latent: { usage: true } });
      await c.connection.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'python', version: 1, text } });
      clients.push({ ...c, usage, name });
    }
    const [a, b] = clients;
    const params = (token) => ({ textDocument: { uri }, position: { line: 3, character: 8 }, context: { triggerKind: 1 },
      latent: { maxTokens: 256 }, partialResultToken: token });
    let aStreaming;
    const aStarted = new Promise((resolve) => { aStreaming = resolve; });
    a.connection.onProgress(new rpc.ProgressType(), 'a-1', () => aStreaming());
    const aResult = a.connection.sendRequest('textDocument/inlineCompletion', params('a-1'));
    await Promise.race([aStarted, aResult]);
    const bResult = b.connection.sendRequest('textDocument/inlineCompletion', params('b-1'));
    const [ra, rb] = await Promise.all([aResult, bResult]);  // a RequestCancelled would reject
    assert.ok(Array.isArray(ra.items) && Array.isArray(rb.items));
    await until(() => a.usage.length >= 1 && b.usage.length >= 1, 20000, 'latent/usage from both');
    for (const c of clients) {
      // The engine's account (initializationOptions.latent.usage): prompt, cache reuse, work done.
      const u = c.usage[0];
      assert.equal(u.partialResultToken, `${c.name}-1`);
      assert.ok(u.promptTokens > 10 && u.cachedTokens <= u.promptTokens, JSON.stringify(u));
      assert.ok(u.completionTokens >= 1 && u.forwardTokens >= u.promptTokens - u.cachedTokens, JSON.stringify(u));
      // ('cancelled' is fine: the daemon stops decoding itself once the suggestion's block has ended.)
      assert.notEqual(c.usage[0].finishReason, 'superseded', `${c.name}: ${JSON.stringify(c.usage[0])}`);
    }
    for (const c of clients) await shutdown(c.connection);
  } finally {
    daemon.child.kill('SIGKILL');
  }
});
