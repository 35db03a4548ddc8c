// latentd --stdio driven by a real LSP client (vscode-jsonrpc): lifecycle, incremental sync with UTF-16
// positions, streamed and cancelled completions, garbage. Completions come from latentd's scripted test
// backend (--test-backend): this checks the protocol path, not a model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startStdio, until } from './lib/lsp_client.mjs';
import { initialize, editAndComplete, shutdown } from './lib/lsp_session.mjs';

test('stdio: a session end to end with the scripted backend', async () => {
  const s = startStdio(['--test-backend']);
  try {
    await initialize(s.connection);
    await editAndComplete(s);
    await shutdown(s.connection);
    assert.equal(await s.exited, 0, s.stderr());
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('stdio: without a model, completions say that no model is loaded', async () => {
  const s = startStdio(['--no-model']);
  try {
    await initialize(s.connection);
    await s.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri: 'file:///tmp/x.py', languageId: 'python', version: 1, text: 'x = ' },
    });
    await assert.rejects(s.connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri: 'file:///tmp/x.py' }, position: { line: 0, character: 4 }, context: { triggerKind: 1 },
    }), (e) => e.code === -32803 && /no model is loaded/.test(e.message));
    await shutdown(s.connection);
    assert.equal(await s.exited, 0);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('stdio: exit without shutdown exits 1; an oversized message is refused and serving goes on', async () => {
  const s = startStdio(['--max-message-bytes', '4096']);
  try {
    await initialize(s.connection);
    const before = s.received.length;
    s.raw(JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'x', params: { pad: 'y'.repeat(10000) } }));
    await until(() => s.received.slice(before).some((m) => m.error?.code === -32600), 120_000, 'the -32600 answer');
    assert.ok(s.received.slice(before).some((m) => /message too large/.test(m.error?.message ?? '')));
    await assert.rejects(s.connection.sendRequest('nope'), (e) => e.code === -32601);
    await s.connection.sendNotification('exit');
    assert.equal(await s.exited, 1);
  } finally {
    s.child.kill('SIGKILL');
  }
});
