#!/usr/bin/env node
// Keystroke replay: a region of a real source file is typed back into latentd (stdio, as the VS Code
// extension in local mode starts it) with realistic gaps, typos and pauses, and every keystroke is handled as
// the extension handles it: didChange, the running request cancelled ($/cancelRequest), the LRU with its
// typed-ahead look-up, the adaptive debounce, then textDocument/inlineCompletion with a partialResultToken
// whose $/progress carries the streamed text. The same trace is replayed once per configuration in one run,
// so their ratios are measured under the same load:
//   new     latentd's defaults (cache-stable prompt layout, type-through)
//   today   the daemon as it was before: --prompt-layout window --no-type-through
//   stable  --no-type-through (the layout alone);  window  --prompt-layout window (type-through alone)
//   shared  --interactive-solo-tokens 0 (keystrokes share forward passes with chat and agent work, as before
//           they pre-empted it; compare shared+chat with new+chat)
// A "+chat" suffix (e.g. new+chat) serves latentd over --listen instead (the extension's remote mode: LSP over
// WebSocket) and keeps a ~2k-token streamed /v1/chat/completions request running through the whole trace (a
// new one as each ends), to measure how much chat work slows ghost text. --chat-ignore-eos 1 (the default) makes
// each chat request stream all of its 256 tokens (the demo model otherwise ends most answers at once, and the
// "chat" becomes a storm of short requests that costs HTTP parsing and prompt tokenizing, not decoding).
//
//   node bench/keystroke_replay.mjs [--model DIR] [--file PATH] [--start LINE] [--lines N] [--seed S]
//        [--configs new,today] [--out DIR] [--threads N] [--debounce-ms 120] [--max-tokens 128]
//        [--context-tokens 2048] [--budget-ms N] [--extra "latentd args"] [--chat-ignore-eos 1]
//
// Prints one JSON object (machine, load, per layout: latencies in ms at p50/p95/p99 from the keystroke and
// from the request, prefill tokens per request new/cached, decode tokens wasted on superseded requests,
// prefix-cache hit rate, latentd CPU time per keystroke) and writes it with an SVG plot to --out.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTrace } from './keystroke_replay/trace.mjs';
import { AdaptiveDebounce, CompletionCache, KEY_PREFIX_CHARS, KEY_SUFFIX_CHARS } from './keystroke_replay/extension_model.mjs';
import { plotSvg } from './keystroke_replay/plot.mjs';

import { depsRequire, lspOverWebSocket, machine, positionAt, quantile, root, sleep } from './lib/common.mjs';

const rpc = depsRequire('vscode-jsonrpc/node');

function parseArgs(argv) {
  const o = {
    model: path.join(root, 'models', 'demo'), file: path.join(root, 'tools', 'demo-model', 'train.py'),
    start: 150, lines: 12, seed: 17, configs: 'new,today', out: '/tmp/latent-bench/keystroke',
    threads: 2, debounceMs: 120, maxTokens: 128, contextTokens: 2048, budgetMs: 0, extra: '', chatIgnoreEos: 1,
    latentd: path.join(root, 'build', 'bin', 'latentd'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    if (argv[i] === '--help') {
      console.log(fs.readFileSync(new URL(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).join('\n'));
      process.exit(0);
    }
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(k in o)) throw new Error(`keystroke_replay: unknown option ${argv[i]} (expected one of ${Object.keys(o).join(', ')})`);
    o[k] = typeof o[k] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return o;
}

const dist = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), p99: quantile(xs, 0.99),
  mean: xs.length ? Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10 : null });

function cpuTicks(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return Number(f[11]) + Number(f[12]);  // utime + stime (fields 14, 15)
  } catch { return NaN; }
}

const CONFIGS = {
  new: [],
  today: ['--prompt-layout', 'window', '--no-type-through'],
  stable: ['--no-type-through'],
  window: ['--prompt-layout', 'window'],
  shared: ['--interactive-solo-tokens', '0'],
};

// Streams chat completions of a ~2k-token prompt one after another until stop() (HTTP API, agent priority).
function backgroundChat(port, text, ignoreEos) {
  let stopped = false;
  const stats = { requests: 0, chunks: 0 };  // chunks: streamed deltas (about one token each)
  const controller = new AbortController();
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, { method: 'POST', signal: controller.signal,
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: `Explain this code:\n${text}` }], max_tokens: 256,
            temperature: 0, stream: true, ignore_eos: ignoreEos }) });
        stats.requests++;
        const decoder = new TextDecoder();
        for await (const chunk of res.body) stats.chunks += (decoder.decode(chunk, { stream: true }).match(/"delta"/g) ?? []).length;
      } catch (e) {
        if (!stopped) throw e;
      }
    }
  })();
  return { stats, stop: async () => { stopped = true; controller.abort(); await loop.catch(() => {}); } };
}

async function replay(opts, config, trace) {
  const [layout, withChat] = config.endsWith('+chat') ? [config.slice(0, -5), true] : [config, false];
  if (!CONFIGS[layout]) throw new Error(`keystroke_replay: expected a configuration among ${Object.keys(CONFIGS)}, found ${layout}`);
  const args = [...(withChat ? ['--listen', '127.0.0.1:0'] : ['--stdio']), '--model', opts.model, ...CONFIGS[layout],
    '--context-tokens', String(opts.contextTokens),
    ...(opts.budgetMs > 0 ? ['--completion-budget-ms', String(opts.budgetMs)] : []),
    ...opts.extra.split(' ').filter(Boolean)];
  const child = spawn(opts.latentd, args, { stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LATENT_THREADS: String(opts.threads) } });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  let conn, chat, port;
  if (withChat) {
    port = await new Promise((resolve, reject) => {
      child.stderr.on('data', () => { const m = /listening on [\d.]+:(\d+)/.exec(stderr); if (m) resolve(Number(m[1])); });
      child.on('exit', (code) => reject(new Error(`latentd exited ${code}: ${stderr}`)));
    });
    ({ conn } = await lspOverWebSocket(`ws://127.0.0.1:${port}/lsp`));
  } else {
    conn = rpc.createMessageConnection(new rpc.StreamMessageReader(child.stdout), new rpc.StreamMessageWriter(child.stdin));
  }
  conn.onError(() => {});
  const usage = new Map();  // partialResultToken -> latent/usage
  conn.onNotification('latent/usage', (u) => { if (typeof u.partialResultToken === 'string') usage.set(u.partialResultToken, u); });
  const ready = new Promise((resolve) => conn.onNotification('latent/status', (s) => { if (s.state !== 'loading') resolve(s); }));
  conn.listen();
  const workspace = path.dirname(trace.path);
  await conn.sendRequest('initialize', {
    processId: process.pid, rootUri: null, workspaceFolders: [{ uri: `file://${workspace}`, name: 'ws' }],
    capabilities: { general: { positionEncodings: ['utf-16'] } },
    initializationOptions: { maxTokens: opts.maxTokens, client: 'latent-bench', latent: { usage: true } },
  });
  await conn.sendNotification('initialized', {});
  const status = await ready;
  if (status.state !== 'ready') throw new Error(`latentd: expected state ready, found ${JSON.stringify(status)}`);

  let text = trace.initialText;
  let cursor = trace.cursor;
  let version = 1;
  await conn.sendNotification('textDocument/didOpen', { textDocument: { uri: trace.uri, languageId: trace.languageId, version, text } });
  // Warm-up: one completion at the starting point (the first request of a session pays for loading pages).
  await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri: trace.uri },
    position: positionAt(text, cursor), context: { triggerKind: 1 }, latent: { maxTokens: opts.maxTokens } });
  await sleep(500);

  if (withChat) {
    chat = backgroundChat(port, trace.initialText.slice(0, 7000), Boolean(opts.chatIgnoreEos));
    await sleep(1000);  // the first chat request is prefilling or decoding when the trace starts
  }
  const debounce = new AdaptiveDebounce({ baseMs: opts.debounceMs });
  const cache = new CompletionCache(128);
  const keys = [];          // per keystroke
  let inflight;             // { cts, rec }
  let seq = 0;
  const t0 = performance.now();
  const cpu0 = cpuTicks(child.pid);
  const pending = [];

  const cancelInflight = () => { inflight?.cts.cancel(); inflight = undefined; };

  for (const ev of trace.events) {
    await sleep(t0 + ev.t - performance.now());
    const at = performance.now();
    // The editor applies the keystroke and the language client sends didChange.
    let range, newText;
    if (ev.kind === 'insert') {
      range = { start: positionAt(text, cursor), end: positionAt(text, cursor) };
      newText = ev.text;
      text = text.slice(0, cursor) + ev.text + text.slice(cursor);
      cursor += ev.text.length;
    } else {
      range = { start: positionAt(text, cursor - 1), end: positionAt(text, cursor) };
      newText = '';
      text = text.slice(0, cursor - 1) + text.slice(cursor);
      cursor -= 1;
    }
    void conn.sendNotification('textDocument/didChange', { textDocument: { uri: trace.uri, version: ++version },
      contentChanges: [{ range, text: newText }] });
    debounce.keystroke(Date.now());
    cancelInflight();
    // VS Code asks the provider for items at the new position.
    const rec = { at: at - t0, kind: ev.kind, served: 'none' };
    keys.push(rec);
    const prefix = text.slice(Math.max(0, cursor - KEY_PREFIX_CHARS), cursor);
    const suffix = text.slice(cursor, cursor + KEY_SUFFIX_CHARS);
    const hit = cache.get(trace.languageId, prefix, suffix);
    if (hit !== undefined) {
      rec.served = 'client-cache';
      continue;
    }
    const cts = new rpc.CancellationTokenSource();
    inflight = { cts, rec };
    const pos = positionAt(text, cursor);
    pending.push((async () => {
      const delay = debounce.delayMs();
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        cts.token.onCancellationRequested(() => { clearTimeout(timer); resolve(); });
      });
      if (cts.token.isCancellationRequested) { rec.served = 'debounced-away'; return; }
      const token = `bench-${++seq}`;
      rec.token = token;
      rec.sent = performance.now() - t0;
      const sub = conn.onProgress(new rpc.ProgressType(), token, (v) => {
        const t = v?.items?.[0]?.insertText ?? '';
        if (t && rec.first === undefined) rec.first = performance.now() - t0;
      });
      try {
        const res = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri: trace.uri }, position: pos,
          context: { triggerKind: 2 }, latent: { maxTokens: opts.maxTokens }, partialResultToken: token }, cts.token);
        rec.done = performance.now() - t0;
        const final = res?.items?.[0]?.insertText ?? '';
        if (final && rec.first === undefined) rec.first = rec.done;
        rec.text = final;
        rec.served = 'model';
        if (final) {
          debounce.latency(rec.first - rec.sent);
          cache.put(trace.languageId, prefix, suffix, final);
        }
      } catch (e) {
        rec.served = e?.code === -32800 ? 'cancelled' : 'error';
        if (rec.served === 'error') rec.error = e.message;
      } finally {
        sub.dispose();
      }
    })());
  }
  await Promise.all(pending);
  const cpu1 = cpuTicks(child.pid);
  if (chat) await chat.stop();
  const wall = performance.now() - t0;
  await sleep(300);  // the last latent/usage notifications
  await conn.sendRequest('shutdown');
  await conn.sendNotification('exit');
  if (withChat) child.kill('SIGTERM');  // --listen serves until stopped
  await new Promise((r) => child.on('exit', r));
  if (text !== trace.finalText) throw new Error('replay: the document does not match the file after the trace');

  const reqs = keys.filter((k) => k.token);
  const all = reqs.map((k) => usage.get(k.token)).filter(Boolean);
  const typedThrough = reqs.filter((k) => k.first !== undefined && usage.get(k.token)?.finishReason === 'type_through').length;
  const us = all.filter((u) => u.finishReason !== 'type_through');  // requests that ran the model
  // Requests that reached the model (a request superseded while queued costs nothing and reports no cache use).
  const ran = us.filter((u) => u.forwardTokens > 0);
  const newTok = ran.map((u) => u.promptTokens - u.cachedTokens);
  const wasted = us.filter((u) => u.finishReason === 'superseded' || u.finishReason === 'cancelled')
    .reduce((a, u) => a + u.completionTokens, 0);
  const firstFromKey = reqs.filter((k) => k.first !== undefined).map((k) => k.first - k.at);
  const firstFromReq = reqs.filter((k) => k.first !== undefined).map((k) => k.first - k.sent);
  const doneFromKey = reqs.filter((k) => k.served === 'model').map((k) => k.done - k.at);
  const count = (s) => keys.filter((k) => k.served === s).length;
  const promptSum = ran.reduce((a, u) => a + u.promptTokens, 0);
  const cachedSum = ran.reduce((a, u) => a + u.cachedTokens, 0);
  return {
    layout: config,
    background_chat: chat ? chat.stats : null,
    keystrokes: keys.length,
    wall_s: Math.round(wall) / 1000,
    served: { model: count('model'), cancelled: count('cancelled'), debounced_away: count('debounced-away'),
      client_cache: count('client-cache'), error: count('error') },
    keystroke_to_first_token_ms: dist(firstFromKey),
    request_to_first_token_ms: dist(firstFromReq),
    keystroke_to_complete_ms: dist(doneFromKey),
    engine_ttft_ms: dist(us.filter((u) => u.ttftMs > 0).map((u) => u.ttftMs)),
    requests_run: ran.length,
    requests_superseded_while_queued: us.length - ran.length,
    prompt_tokens: dist(ran.map((u) => u.promptTokens)),
    new_prefill_tokens: dist(newTok),
    cached_prefill_tokens: dist(ran.map((u) => u.cachedTokens)),
    prefix_cache_hit_rate: { requests: ran.length ? ran.filter((u) => u.cachedTokens > 0).length / ran.length : null,
      tokens: promptSum ? cachedSum / promptSum : null },
    decode_tokens_wasted_on_superseded: wasted,
    decode_tokens_total: us.reduce((a, u) => a + u.completionTokens, 0),
    // A suggestion shown for the keystroke without a model step: the extension's cache, or the daemon's
    // type-through (the generation that predicted what was typed); as a fraction of keystrokes that got one.
    served_without_model_step: { client_cache: count('client-cache'), type_through: typedThrough,
      fraction_of_served: (count('client-cache') + typedThrough) /
        Math.max(1, count('client-cache') + keys.filter((k) => k.first !== undefined).length) },
    latentd_cpu_ms_per_keystroke: Math.round(((cpu1 - cpu0) * 1000 / 100) / keys.length * 10) / 10,
    usage_reports: us.length,
    errors: keys.filter((k) => k.error).slice(0, 3).map((k) => k.error),
    samples: { first_from_key: firstFromKey.map(Math.round), new_prefill: newTok },
    stderr_tail: stderr.split('\n').slice(-5).join('\n'),
  };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const text = fs.readFileSync(opts.file, 'utf8');
  const trace = makeTrace({ text, uri: `file://${opts.file}`, languageId: path.extname(opts.file) === '.py' ? 'python' : 'cpp',
    startLine: opts.start, nLines: opts.lines, seed: opts.seed });
  trace.path = opts.file;
  trace.finalText = text;
  const runs = [];
  const load = [os.loadavg()[0]];
  for (const layout of opts.configs.split(',')) {
    runs.push(await replay(opts, layout, trace));
    load.push(os.loadavg()[0]);
  }
  const out = {
    bench: 'keystroke_replay',
    date: new Date().toISOString(),
    machine: machine(),
    load_average_1m: load.map((x) => Math.round(x * 100) / 100),
    model: path.basename(opts.model),
    threads: opts.threads,
    trace: { file: path.relative(root, opts.file), start_line: opts.start + 1, lines: opts.lines, seed: opts.seed,
      keystrokes: trace.events.length, duration_s: Math.round(trace.events.at(-1).t / 100) / 10 },
    settings: { debounce_ms: opts.debounceMs, max_tokens: opts.maxTokens, context_tokens: opts.contextTokens, budget_ms: opts.budgetMs,
      extra: opts.extra, chat_ignore_eos: Boolean(opts.chatIgnoreEos) },
    runs,
  };
  const ratio = (a, b) => {
    const r = (x, y) => (x && y ? Math.round((x / y) * 100) / 100 : null);
    return { of: `${a.layout}/${b.layout}`,
      keystroke_to_first_token_p50: r(a.keystroke_to_first_token_ms.p50, b.keystroke_to_first_token_ms.p50),
      keystroke_to_first_token_p95: r(a.keystroke_to_first_token_ms.p95, b.keystroke_to_first_token_ms.p95),
      request_to_first_token_p95: r(a.request_to_first_token_ms.p95, b.request_to_first_token_ms.p95),
      new_prefill_tokens_p50: r(a.new_prefill_tokens.p50, b.new_prefill_tokens.p50),
      cpu_per_keystroke: r(a.latentd_cpu_ms_per_keystroke, b.latentd_cpu_ms_per_keystroke) };
  };
  if (runs.length === 2) out.ratio = ratio(runs[0], runs[1]);
  // More runs: each against the first (e.g. new,new+chat,shared+chat: the chat runs against no chat).
  if (runs.length > 2) out.ratios = runs.slice(1).map((b) => ratio(b, runs[0]));
  fs.mkdirSync(opts.out, { recursive: true });
  const base = path.join(opts.out, `keystroke_${path.basename(opts.model)}`);
  fs.writeFileSync(`${base}.json`, JSON.stringify(out, null, 2));
  fs.writeFileSync(`${base}.svg`, plotSvg(out));
  const brief = JSON.parse(JSON.stringify(out));
  for (const run of brief.runs) delete run.samples;
  console.log(JSON.stringify(brief, null, 2));
  console.error(`wrote ${base}.json and ${base}.svg`);
}

main().catch((e) => { console.error(e); process.exit(1); });
