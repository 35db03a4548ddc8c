// A client that vanishes stops its work: latentd on a real model (models/demo, else tests/data/openai-tiny),
// a completion in flight, then the client goes without a word - stdin closed (stdio), the TCP socket destroyed
// without a WebSocket close frame - and the engine ends the request as cancelled. Observed through events, never
// the clock: over WebSocket /metrics (lsp completions by outcome, in flight, cache blocks held by requests), over
// stdio latentd's log (the session's cancel and the engine's "completion cancelled" line, written before it
// exits). That the cancel takes effect at the engine's next step, between prefill chunks too, is
// Scheduler.CancelStopsTheRequestAtTheNextStep; HTTP disconnects are in openai_api.test.mjs.
//
// A completion can end on its own (end of sequence, end of block) before the disconnect reaches the daemon;
// such an attempt proves nothing and is repeated (a long maxTokens makes it rare). Every attempt must still
// leave nothing in flight and no block held.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { rpc, startStdio, startListening, connectWebSocket, until } from './lib/lsp_client.mjs';
import { initialize } from './lib/lsp_session.mjs';
import { metrics } from './lib/storm.mjs';

const source = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const model = [path.join(source, 'models', 'demo'),
  path.join(process.env.LATENT_TEST_DATA ?? path.join(source, 'tests', 'data'), 'openai-tiny')]
  .find((d) => fs.existsSync(path.join(d, 'tokenizer.json')));
const skip = model ? false : 'no model';
// No time budget and no context sizing by time: a loaded machine must not end the completion for them.
const daemonArgs = ['--model', model, '--cache-mb', '64', '--context-tokens', '512', '--completion-budget-ms',
  '3600000', '--no-time-sizing'];
const maxTokens = 1500;
const attempts = 5;
const uri = 'file:///tmp/latent-disconnect/main.py';
const text = 'import math\n\n\ndef mean(values):\n    """The arithmetic mean of values."""\n    ';
const position = { line: 5, character: 4 };

async function openDocument(connection) {
  await initialize(connection, { maxTokens });
  await connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text } });
}

// Sends a streamed completion; resolves at its first partial result (the request is decoding) with the
// request's promise, or with `ended` when it ended before streaming anything.
function streamedCompletion(connection, token) {
  return new Promise((resolve) => {
    const sub = connection.onProgress(new rpc.ProgressType(), token, () => { sub.dispose(); resolve({ pending }); });
    const pending = connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri }, position, context: { triggerKind: 1 }, partialResultToken: token });
    pending.then(() => { sub.dispose(); resolve({ ended: true }); }, () => { sub.dispose(); resolve({ ended: true }); });
  });
}

test('stdio: closing stdin mid-stream cancels the completion before latentd exits', { skip }, async (t) => {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const s = startStdio([...daemonArgs, '--log-level', 'debug']);
    try {
      await openDocument(s.connection);
      const first = await streamedCompletion(s.connection, `stdio-${attempt}`);
      s.child.stdin.end();  // the editor is gone: no shutdown, no exit notification
      assert.equal(await s.exited, 1, 'exit without shutdown is an error exit');
      const log = s.stderr();
      const cancelled = /completion cancelled: (\d+) prompt tokens \(\d+ cached\), (\d+) fed, (\d+) generated/.exec(log);
      if (first.ended || !/connection closed: cancelling 1 request\(s\) in flight/.test(log)) {
        t.diagnostic(`attempt ${attempt}: the completion ended on its own before stdin closed; again`);
        assert.equal(cancelled, null, `nothing was in flight, yet a completion was cancelled:\n${log}`);
        continue;
      }
      assert.ok(cancelled, `expected the engine to end the request as cancelled before exit; latentd log:\n${log}`);
      const generated = Number(cancelled[3]);
      assert.ok(generated >= 1 && generated < maxTokens, `generated ${generated} of ${maxTokens} tokens despite the disconnect`);
      t.diagnostic(`attempt ${attempt}: ${cancelled[0]}`);
      return;
    } finally {
      s.child.kill('SIGKILL');
    }
  }
  assert.fail(`in ${attempts} attempts no completion was still running when stdin closed`);
});

let daemon;
before(async () => {
  if (model) daemon = await startListening(daemonArgs);
});
after(() => daemon?.child.kill('SIGKILL'));

const cancelledKey = 'latent_lsp_completions_total{outcome="cancelled"}';
const completedKey = 'latent_lsp_completions_total{outcome="completed"}';
const errorKey = 'latent_lsp_completions_total{outcome="error"}';
const ended = (m) => (m[cancelledKey] ?? 0) + (m[completedKey] ?? 0) + (m[errorKey] ?? 0);

// Waits until every completion submitted so far has ended and no cache block is held by a request.
async function settledAfter(before, what) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics(daemon.port);
    if (ended(m) > ended(before) && m.latent_lsp_completions_in_flight === 0 &&
        m['latent_kv_cache_blocks{state="requests"}'] === 0) return m;
    if (Date.now() - t0 > 120_000) assert.fail(`timed out waiting for ${what}; last /metrics: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// One WebSocket disconnect without a close frame (ws.terminate() destroys the socket) at the moment `cut`
// picks (`cut` returns the state it cut in); returns whether the request was cut in `want` and got cancelled.
async function websocketAttempt(t, attempt, want, cut) {
  const before = await metrics(daemon.port);
  const s = await connectWebSocket(daemon.port);
  await openDocument(s.connection);
  const state = await cut(s, attempt);
  s.ws.terminate();
  const m = await settledAfter(before, 'the disconnected completion to end');
  const cancelled = (m[cancelledKey] ?? 0) - (before[cancelledKey] ?? 0);
  const generated = m.latent_lsp_completion_tokens_total - (before.latent_lsp_completion_tokens_total ?? 0);
  assert.equal(ended(m) - ended(before), 1, 'exactly the one completion ended');
  assert.equal((m[errorKey] ?? 0) - (before[errorKey] ?? 0), 0, 'no error');
  t.diagnostic(`attempt ${attempt} (${state}): cancelled ${cancelled}, ${generated} tokens generated`);
  if (cancelled === 1) assert.ok(generated < maxTokens, `generated ${generated} of ${maxTokens} tokens despite the disconnect`);
  return cancelled === 1 && state === want;
}

test('websocket: a socket dropped without a close frame mid-stream cancels the completion (in /metrics)', { skip },
  async (t) => {
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const ok = await websocketAttempt(t, attempt, 'mid-stream', async (s) => {
        const first = await streamedCompletion(s.connection, `ws-${attempt}`);
        return first.ended ? 'ended before streaming' : 'mid-stream';
      });
      if (ok) return;
    }
    assert.fail(`in ${attempts} attempts no completion was still running when the socket dropped`);
  });

test('websocket: a socket dropped once the completion reached the engine, before its first streamed token, cancels it', { skip },
  async (t) => {
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const ok = await websocketAttempt(t, attempt, 'before its first streamed token', async (s) => {
        let partials = 0;
        s.connection.onProgress(new rpc.ProgressType(), `pre-${attempt}`, () => { partials++; });
        s.connection.sendRequest('textDocument/inlineCompletion', {
          textDocument: { uri }, position, context: { triggerKind: 1 }, partialResultToken: `pre-${attempt}` })
          .catch(() => {});
        // Submitted to the engine: /metrics counts it in flight.
        const t0 = Date.now();
        for (;;) {
          const m = await metrics(daemon.port);
          if (m.latent_lsp_completions_in_flight >= 1) break;
          if (Date.now() - t0 > 120_000) assert.fail('timed out waiting for the completion to reach the engine');
          await new Promise((r) => setTimeout(r, 5));
        }
        return partials === 0 ? 'before its first streamed token' : 'already streaming';
      });
      if (ok) return;
    }
    assert.fail(`in ${attempts} attempts no completion was still before its first token when the socket dropped`);
  });

test('after the disconnects the daemon still completes', { skip }, async () => {
  const s = await connectWebSocket(daemon.port);
  await initialize(s.connection, { maxTokens: 8 });
  await s.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version: 1, text } });
  const r = await s.connection.sendRequest('textDocument/inlineCompletion', {
    textDocument: { uri }, position, context: { triggerKind: 1 } });
  assert.ok(Array.isArray(r.items));
  s.ws.close();
  await until(() => s.ws.readyState === s.ws.CLOSED, 60_000, 'the socket to close');
});
