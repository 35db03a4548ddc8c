// A small cancellation storm (the benchmark, bench/cancel_storm.mjs, runs 8 x 1000): WebSocket clients send
// completions on a real model (models/demo, else tests/data/openai-tiny) and cancel or supersede 90% of them at
// random points (queued, mid-prefill, mid-decode). No deadlock (every request ends), every end is a result or a
// cancellation, afterwards /metrics shows no cache block held by a request, a second storm does not grow the
// RSS by 5% or more, and the daemon still completes. A hang is detected, not waited out: each round has a
// deadline (StormHang names the clients and requests left), and a second test checks that a server which never
// answers is reported that way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { startListening, connectWebSocket } from './lib/lsp_client.mjs';
import { initialize } from './lib/lsp_session.mjs';
import { storm, settled, metrics, rssKiB, StormHang } from './lib/storm.mjs';

const { WebSocketServer } = createRequire(import.meta.url)('ws');
// Below ctest's 600 s for the file, so that a deadlock fails with the names of what hangs.
const ROUND_DEADLINE_MS = 240_000;

const source = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const model = [path.join(source, 'models', 'demo'),
  path.join(process.env.LATENT_TEST_DATA ?? path.join(source, 'tests', 'data'), 'openai-tiny')]
  .find((d) => fs.existsSync(path.join(d, 'tokenizer.json')));

let daemon;
before(async () => {
  if (model) daemon = await startListening(['--model', model, '--cache-mb', '16', '--context-tokens', '512']);
});
after(() => daemon?.child.kill('SIGKILL'));

test('cancellation storm: 4 clients x 30 requests, 90% cancelled or superseded', { skip: model ? false : 'no model' },
  async (t) => {
    const round = async (seed) => {
      const counts = await storm(daemon.port, { clients: 4, requests: 30, cancelShare: 0.9, seed,
                                                 deadlineMs: ROUND_DEADLINE_MS });
      assert.deepEqual(counts.errors, [], 'every request ends with a result or a cancellation');
      assert.equal(counts.completed + counts.cancelled, 4 * 30);
      const m = await settled(daemon.port);
      assert.equal(m['latent_kv_cache_blocks{state="requests"}'], 0, 'no cache block held by a request');
      assert.equal(m['latent_kv_cache_blocks{state="free"}'] + m['latent_kv_cache_blocks{state="prefix_cache"}'],
        m['latent_kv_cache_blocks{state="total"}']);
      return counts;
    };
    const first = await round(1);
    const rss1 = rssKiB(daemon.child.pid);
    const second = await round(2);
    const rss2 = rssKiB(daemon.child.pid);
    t.diagnostic(`round 1 ${JSON.stringify(first)}; round 2 ${JSON.stringify(second)}; RSS ${rss1} -> ${rss2} KiB`);
    // Round 1 warms the allocator and the cache; a second storm of the same size must not grow the daemon.
    assert.ok((rss2 - rss1) / rss1 < 0.05, `RSS drift ${rss1} -> ${rss2} KiB is 5% or more`);
    assert.ok(first.early + second.early > 0 && first.stream + second.stream > 0 && first.superseded + second.superseded > 0,
      'every way of cancelling happened');
    // Still serving: a completion after the storm runs to its end.
    const s = await connectWebSocket(daemon.port);
    await initialize(s.connection);
    const uri = 'file:///tmp/latent-storm/after.py';
    await s.connection.sendNotification('textDocument/didOpen', {
      textDocument: { uri, languageId: 'python', version: 1, text: 'def add(a, b):\n    ' } });
    const r = await s.connection.sendRequest('textDocument/inlineCompletion', {
      textDocument: { uri }, position: { line: 1, character: 4 }, context: { triggerKind: 1 } });
    assert.ok(Array.isArray(r.items));
    s.ws.close();
    const m = await metrics(daemon.port);
    assert.ok(m.latent_scheduler_steps > 0);
  });

// The hang bound itself: a WebSocket LSP server that initializes and then never answers a completion. The storm
// must reject with a StormHang that names every client (waiting on its requests) and the request left open.
test('a storm that cannot end is reported with the clients and requests that hang', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  let completionsSeen = 0;
  const seenAll = new Promise((resolve) => {
    server.on('connection', (ws) => ws.on('message', (data) => {
      const msg = JSON.parse(data.toString());
      if (msg.method === 'initialize') {
        ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { capabilities: {
          inlineCompletionProvider: true, positionEncoding: 'utf-16', textDocumentSync: { change: 2 } } } }));
      } else if (msg.method === 'textDocument/inlineCompletion' && ++completionsSeen === 2) {
        resolve();  // both clients' first request arrived; neither is ever answered
      }
    }));
  });
  try {
    // cancelShare 0: every request runs to its end, so each client waits on its first one forever. The deadline
    // is an event (both first requests reached the server), not a time.
    const e = await storm(server.address().port, { clients: 2, requests: 3, cancelShare: 0, deadline: seenAll }).then(() => assert.fail('the storm ended against a server that never answers'),
      (err) => err);
    assert.ok(e instanceof StormHang, `expected a StormHang, found ${e}`);
    assert.deepEqual(e.unfinished.clients, [{ client: 0, stage: 'requests' }, { client: 1, stage: 'requests' }]);
    assert.deepEqual(e.unfinished.requests.sort(),
      ['client 0 request 0 (full)', 'client 1 request 0 (full)']);
    assert.match(e.message, /2 client\(s\) and 2 request\(s\) had not finished at the deadline/);
  } finally {
    for (const ws of server.clients) ws.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});
