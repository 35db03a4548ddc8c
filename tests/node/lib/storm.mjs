// A cancellation storm against latentd --listen with a real model: CLIENTS WebSocket clients, each sending
// REQUESTS inline completions on its own document, of which a share `cancelShare` is cancelled at a random point
// or superseded: cancelled right after it is sent (queued or mid-prefill), cancelled at its k-th streamed
// partial result (mid-decode), or superseded by an edit plus a newer request for the same document. The rest run
// to the end. Every request must end with a result or a cancellation error; afterwards /metrics must show no
// cache block held by a request. Used by tests/node/cancel_storm.test.mjs (small) and bench/cancel_storm.mjs.
// A deadlock is detected, not assumed: with a deadline, storm() rejects with a StormHang naming every client
// that has not finished (and its stage) and every request that has not ended by then.
import fs from 'node:fs';
import { rpc, connectWebSocket } from './lsp_client.mjs';
import { initialize } from './lsp_session.mjs';

// Deterministic per-client randomness (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The daemon's /metrics as {"name{labels}": value}.
export async function metrics(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

// A file long enough that its prompt takes several prefill chunks.
function documentText(client, edit) {
  let s = `# client ${client}, edit ${edit}\nimport math\n\n`;
  for (let f = 0; f < 24; f++) {
    s += `def helper_${f}(values, scale=${f + 1}):\n    total = 0\n    for v in values:\n        total += v * scale\n` +
         `    return total / max(len(values), 1)\n\n`;
  }
  return `${s}def mean(values):\n    `;
}

const CANCELLED = new Set([-32800, -32802]);  // RequestCancelled, ServerCancelled

// What has not ended yet: each client's stage and each request in flight ("client C request R (kind)").
class Tracker {
  constructor(clients) { this.stages = Array(clients).fill('connecting'); this.open = new Set(); }
  stage(client, what) { this.stages[client] = what; }
  unfinished() {
    return { clients: this.stages.flatMap((stage, client) => (stage === 'done' ? [] : [{ client, stage }])),
             requests: [...this.open] };
  }
}

// Thrown by storm() when the deadline passes first; `unfinished` says who hangs.
export class StormHang extends Error {
  constructor(deadline, unfinished) {
    super(`cancellation storm: ${unfinished.clients.length} client(s) and ${unfinished.requests.length} ` +
          `request(s) had not finished at the deadline (${deadline}): ${JSON.stringify(unfinished)}`);
    this.unfinished = unfinished;
  }
}

async function runClient(port, client, requests, cancelShare, seed, counts, tracker) {
  const random = rng(seed + client * 7919);
  const s = await connectWebSocket(port);
  tracker.stage(client, 'initializing');
  await initialize(s.connection);
  tracker.stage(client, 'requests');
  const uri = `file:///tmp/latent-storm/client${client}.py`;
  let version = 1;
  let text = documentText(client, 0);
  await s.connection.sendNotification('textDocument/didOpen', {
    textDocument: { uri, languageId: 'python', version, text },
  });
  const pending = [];
  let r = 0;
  const settle = (promise, kind) => {
    const name = `client ${client} request ${r} (${kind})`;
    tracker.open.add(name);
    pending.push(promise.finally(() => tracker.open.delete(name)).then(
      () => { counts.completed++; counts[kind]++; },
      (e) => {
        if (e instanceof rpc.ResponseError && CANCELLED.has(e.code)) { counts.cancelled++; counts[kind]++; return; }
        counts.errors.push(`${kind}: ${e.code ?? ''} ${e.message}`);
      }));
  };
  for (; r < requests; r++) {
    const lines = text.split('\n');
    const position = { line: lines.length - 1, character: lines.at(-1).length };
    const params = { textDocument: { uri }, position, context: { triggerKind: 2 } };
    const roll = random();
    if (roll >= cancelShare) {  // runs to the end
      settle(s.connection.sendRequest('textDocument/inlineCompletion', params), 'full');
      await pending.at(-1);
      continue;
    }
    const how = Math.floor(random() * 3);
    if (how === 0) {  // cancelled at once: still queued, or in its first prefill chunk
      const source = new rpc.CancellationTokenSource();
      settle(s.connection.sendRequest('textDocument/inlineCompletion', params, source.token), 'early');
      source.cancel();
      await pending.at(-1);
    } else if (how === 1) {  // cancelled at its k-th streamed partial result (mid-decode)
      const source = new rpc.CancellationTokenSource();
      const token = `storm-${client}-${r}`;
      const k = 1 + Math.floor(random() * 3);
      let seen = 0;
      const sub = s.connection.onProgress(new rpc.ProgressType(), token, () => { if (++seen === k) source.cancel(); });
      settle(s.connection.sendRequest('textDocument/inlineCompletion', { ...params, partialResultToken: token },
        source.token), 'stream');
      await pending.at(-1);
      sub.dispose();
    } else {  // superseded: the user keeps typing; the next request replaces this one (not awaited here)
      settle(s.connection.sendRequest('textDocument/inlineCompletion', params), 'superseded');
      const extra = ' x';
      await s.connection.sendNotification('textDocument/didChange', {
        textDocument: { uri, version: ++version },
        contentChanges: [{ range: { start: position, end: position }, text: extra }],
      });
      text += extra;
    }
  }
  tracker.stage(client, 'awaiting the last requests');
  await Promise.all(pending);
  tracker.stage(client, 'closing');
  s.ws.close();
  await new Promise((resolve) => s.ws.once('close', resolve));
  tracker.stage(client, 'done');
}

// Runs the storm; resolves with counts ({completed, cancelled, errors, full, early, stream, superseded}).
// A hang bound: deadlineMs > 0, or `deadline`, a promise (an event: the test of the bound itself); if the storm
// has not ended when either comes, rejects with a StormHang saying which clients and requests are unfinished.
export async function storm(port, { clients, requests, cancelShare = 0.9, seed = 1, deadlineMs = 0, deadline }) {
  const counts = { completed: 0, cancelled: 0, errors: [], full: 0, early: 0, stream: 0, superseded: 0 };
  const tracker = new Tracker(clients);
  const run = Promise.all(Array.from({ length: clients },
    (_, c) => runClient(port, c, requests, cancelShare, seed, counts, tracker)));
  const bounds = [];
  let timer;
  if (deadlineMs > 0) bounds.push(new Promise((resolve) => { timer = setTimeout(resolve, deadlineMs, `${deadlineMs} ms`); }));
  if (deadline) bounds.push(deadline.then(() => 'the caller\'s event'));
  if (bounds.length === 0) { await run; return counts; }
  const hang = Promise.race(bounds).then((what) => { throw new StormHang(what, tracker.unfinished()); });
  try {
    await Promise.race([run, hang]);
  } finally {
    clearTimeout(timer);
  }
  return counts;
}

// Waits (polling /metrics) until no cache block is held by a request and nothing is in flight; returns the
// last metrics seen.
export async function settled(port, ms = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics(port);
    if (m['latent_kv_cache_blocks{state="requests"}'] === 0) return m;
    if (Date.now() - t0 > ms) return m;
    await new Promise((r) => setTimeout(r, 50));
  }
}
