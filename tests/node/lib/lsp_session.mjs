// One LSP session script shared by the stdio and WebSocket tests: initialize, open a file, change it
// incrementally (UTF-16 positions over non-ASCII text), a streamed completion with its final result, a
// cancelled one, garbage, and the daemon still serving afterwards.
import assert from 'node:assert/strict';
import { rpc, until } from './lsp_client.mjs';

const uri = 'file:///tmp/latent-node-test/main.py';

export async function initialize(connection, initializationOptions = undefined) {
  const init = await connection.sendRequest('initialize', {
    processId: process.pid, rootUri: null, capabilities: { general: { positionEncodings: ['utf-16'] } },
    // The protocol's own streaming, token by token: with the syntax check on (latentd's default), partial
    // results are whole checked lines (lsp/syntax_check.h), which tests/lsp/syntax_completion_test.cpp covers.
    // A caller's options are kept; its latent.syntaxCheck wins.
    initializationOptions: {
      ...(initializationOptions ?? {}),
      latent: { syntaxCheck: 'off', ...(initializationOptions?.latent ?? {}) },
    },
  });
  assert.equal(init.capabilities.inlineCompletionProvider, true);
  assert.equal(init.capabilities.positionEncoding, 'utf-16');
  assert.equal(init.capabilities.textDocumentSync.change, 2);
  await connection.sendNotification('initialized', {});
  return init;
}

export async function editAndComplete({ connection, received, raw }) {
  await connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text: 'name = "héllo 😀"\n\ndef add(a, b):\n    pass\n' },
  });
  // Replace the emoji (UTF-16 columns 14..16) and then "pass" with "return ".
  await connection.sendNotification('textDocument/didChange', {
    textDocument: { uri, version: 2 },
    contentChanges: [
      { range: { start: { line: 0, character: 14 }, end: { line: 0, character: 16 } }, text: 'wörld' },
      { range: { start: { line: 3, character: 4 }, end: { line: 3, character: 8 } }, text: 'return ' },
    ],
  });
  const audit = await connection.sendRequest('latent/explainContext', {
    textDocument: { uri }, position: { line: 3, character: 11 },
  });
  assert.equal(audit.prefix, 'name = "héllo wörld"\n\ndef add(a, b):\n    return ');
  assert.ok(audit.prompt.includes('<｜fim▁hole｜>'));

  // A streamed completion: partial results on the token, then the final InlineCompletionList.
  const partials = [];
  const progress = new rpc.ProgressType();
  const sub = connection.onProgress(progress, 'tok-1', (v) => partials.push(v.items[0]?.insertText ?? ''));
  const result = await connection.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: { line: 3, character: 11 }, context: { triggerKind: 1 }, partialResultToken: 'tok-1',
  });
  sub.dispose();
  assert.equal(result.items.length, 1);
  assert.equal(result.items[0].insertText, 'a + b');
  assert.deepEqual(result.items[0].range.start, { line: 3, character: 11 });
  assert.ok(partials.length >= 2, `expected streamed partial results, got ${JSON.stringify(partials)}`);
  assert.equal(partials.at(-1), 'a + b');
  assert.ok(partials[0].length < 'a + b'.length, 'the first partial result came before the end');

  // Cancelled while it decodes (at its first streamed text, sent as latent/partialCompletion since this
  // request has no partialResultToken): RequestCancelled. The scripted backend holds a completion whose prompt
  // has its hold marker after the first piece until it is cancelled, so the cancel never races the clock.
  const heldUri = uri.replace('main.py', 'held.py');
  await connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri: heldUri, languageId: 'python', version: 1, text: '# latent-test: hold after the first piece\nx = ' },
  });
  const source = new rpc.CancellationTokenSource();
  const seen = [];
  const onPartial = connection.onNotification('latent/partialCompletion', (p) => {
    seen.push(p);
    source.cancel();
  });
  const pending = connection.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri: heldUri }, position: { line: 1, character: 4 }, context: { triggerKind: 2 },
  }, source.token);
  await assert.rejects(pending, (e) => e.code === -32800 && /cancelled/.test(e.message));
  onPartial.dispose();
  assert.ok(seen.length >= 1 && typeof seen[0].text === 'string' && seen[0].uri === heldUri, JSON.stringify(seen));

  // Garbage, an unknown method, bad params: errors, and the daemon keeps serving.
  const before = received.length;
  raw('{this is not json');
  await until(() => received.slice(before).some((m) => m.error?.code === -32700), undefined, 'the -32700 answer');
  await assert.rejects(connection.sendRequest('latent/noSuchMethod', {}), (e) => e.code === -32601);
  await assert.rejects(connection.sendRequest('textDocument/inlineCompletion', { textDocument: 3 }), (e) => e.code === -32602);
  const again = await connection.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position: { line: 3, character: 11 }, context: { triggerKind: 1 },
  });
  assert.equal(again.items[0].insertText, 'a + b');
}

export async function shutdown(connection) {
  assert.equal(await connection.sendRequest('shutdown'), null);
  await connection.sendNotification('exit');
}
