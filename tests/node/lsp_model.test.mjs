// latentd --stdio with a real model behind the LSP: the FIM prompt is tokenized and decoded by the engine,
// and the streamed text is what the model generates. Uses models/demo when it exists (a trained model),
// else tests/data/openai-tiny (random weights and a real tokenizer: meaningless text, but every token comes
// from the engine), or LATENT_LSP_TEST_MODEL. Skips when none exists.
//
// latent/status contract (docs/lsp.md): after `initialized`, zero or more {state: "loading", progress} with
// progress non-decreasing in [0, 1], then exactly one {state: "ready"}. Completions are served throughout: one
// is sent at once (before or after "ready", whichever the page cache makes it) and one after "ready"; both are
// greedy on the same document, so both must stream and give the same text. Nothing here waits on time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startStdio, rpc } from './lib/lsp_client.mjs';
import { initialize, shutdown } from './lib/lsp_session.mjs';

const source = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const candidates = [process.env.LATENT_LSP_TEST_MODEL, path.join(source, 'models', 'demo'),
  path.join(process.env.LATENT_TEST_DATA ?? path.join(source, 'tests', 'data'), 'openai-tiny')].filter(Boolean);
const model = candidates.find((d) => fs.existsSync(path.join(d, 'tokenizer.json')));

const uri = 'file:///tmp/latent-model-test/stats.py';

// One streamed completion at the end of the document; resolves with {partials, final, ms}.
async function complete(connection, token) {
  const partials = [];
  const sub = connection.onProgress(new rpc.ProgressType(), token, (v) => partials.push(v.items[0]?.insertText ?? ''));
  const t0 = Date.now();
  try {
    const result = await connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri }, position: { line: 3, character: 8 }, context: { triggerKind: 1 }, partialResultToken: token,
    });
    assert.ok(Array.isArray(result.items), `expected an InlineCompletionList, found ${JSON.stringify(result)}`);
    return { partials, final: result.items[0]?.insertText ?? '', ms: Date.now() - t0 };
  } finally {
    sub.dispose();
  }
}

function checkStreamed({ partials, final }) {
  assert.ok(partials.length >= 1, 'the engine streamed text before the answer');
  for (const p of partials) assert.equal(typeof p, 'string');
  // The final text is the post-processed whole; streamed text grows toward it.
  if (final) assert.ok(partials.some((p) => final.startsWith(p) || p.startsWith(final)), JSON.stringify({ partials, final }));
}

// Checks the whole sequence of latent/status notifications a session received.
function checkStatusSequence(statuses) {
  assert.ok(statuses.length >= 1, 'expected at least one latent/status');
  const readyAt = statuses.findIndex((s) => s.state === 'ready');
  assert.equal(readyAt, statuses.length - 1, `expected loading* then one ready, found ${JSON.stringify(statuses.map((s) => s.state))}`);
  let last = 0;
  for (const s of statuses.slice(0, readyAt)) {
    assert.equal(s.state, 'loading', `expected only "loading" before "ready", found ${JSON.stringify(s)}`);
    assert.equal(typeof s.progress, 'number', `expected a numeric progress, found ${JSON.stringify(s)}`);
    assert.ok(s.progress >= 0 && s.progress <= 1, `expected progress in [0, 1], found ${s.progress}`);
    assert.ok(s.progress >= last, `expected non-decreasing progress, found ${s.progress} after ${last}`);
    last = s.progress;
  }
}

test('stdio + model: completions stream engine text before and after "ready"; status is loading* then one ready',
  { skip: model ? false : 'no model with a tokenizer' }, async (t) => {
    const s = startStdio(['--model', model, '--cache-mb', '64']);
    try {
      let readySeen = false;
      const ready = new Promise((resolve, reject) => s.connection.onNotification('latent/status', (st) => {
        if (st.state === 'ready') { readySeen = true; resolve(st); }
        if (st.state === 'error') reject(new Error(`latentd reports an error: ${JSON.stringify(st)}`));
      }));
      const init = await initialize(s.connection);
      assert.equal(init.capabilities.experimental.latent.model, path.basename(model));
      await s.connection.sendNotification('textDocument/didOpen', {
        textDocument: { uri, languageId: 'python', version: 1, text: 'def mean(values):\n    total = 0\n    for v in values:\n        ' },
      });
      // Sent without waiting for "ready": it is answered either way.
      const early = await complete(s.connection, 'm-1');
      const earlyWhen = readySeen ? 'after' : 'before';
      await ready;
      const late = await complete(s.connection, 'm-2');
      t.diagnostic(`model ${path.basename(model)}: first completion answered ${earlyWhen} "ready" (${early.partials.length} partials, ` +
        `${early.ms} ms), second after (${late.partials.length} partials, ${late.ms} ms), final ${JSON.stringify(late.final)}`);
      checkStreamed(early);
      checkStreamed(late);
      assert.equal(early.final, late.final, 'greedy completions of one document agree whether served while loading or ready');
      await shutdown(s.connection);
      assert.equal(await s.exited, 0, s.stderr());
      await s.closed;  // every message latentd wrote has been read
      const statuses = s.received.filter((m) => m.method === 'latent/status').map((m) => m.params);
      t.diagnostic(`statuses: ${statuses.map((st) => (st.state === 'loading' ? `loading ${st.progress.toFixed(2)}` : st.state)).join(', ')}`);
      checkStatusSequence(statuses);
    } finally {
      s.child.kill('SIGKILL');
    }
  });
