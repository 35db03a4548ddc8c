#!/usr/bin/env node
// Team load on loopback: simulated editors and chat users against latentd replicas behind nginx, once with
// consistent hashing on the workspace key and once with round-robin, each on fresh replicas (cold caches), in
// one run, so that the two are measured under the same machine load.
//
//   node bench/team_load.mjs [--editors 4] [--users 2] [--chat 2] [--duration-s 40] [--replicas 2]
//        [--modes hash,round-robin] [--seed 17] [--threads 1] [--model DIR] [--out DIR] [--help]
//
// Each editor is one VS Code window on its own workspace (its X-Latent-Workspace key, as the extension makes
// it) typing a replayed trace (bench/keystroke_replay/trace.mjs: a region of one of this repository's source
// files typed back with realistic gaps and typos) over WebSocket LSP through nginx, handled as the extension
// handles keys (bench/keystroke_replay/extension_model.mjs: didChange, cancel, LRU, adaptive debounce, a
// streamed textDocument/inlineCompletion). Halfway through, each editor reconnects (a window reload, a network
// blip): the new connection is routed again. Each chat user asks streamed /v1/chat/completions questions about
// one editor's workspace (the same file excerpt each time, so the same long prompt prefix) with think time in
// between. Users own editors and chats in turn (editor i and chat i belong to user i mod --users), with their
// own tokens (latent user add).
//
// Prints one JSON object: the machine, the load average, and per mode: time to first token (p50/p95) for
// completions and chat, the prefix-cache hit rate from each replica's /metrics (prompt tokens reused / prompt
// tokens, LSP and HTTP), per-user latencies and their spread (max/min of the users' p50 and p95), and where the
// connections and chats landed. Also written to --out.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTrace, mulberry32 } from './keystroke_replay/trace.mjs';
import { AdaptiveDebounce, CompletionCache, KEY_PREFIX_CHARS, KEY_SUFFIX_CHARS } from './keystroke_replay/extension_model.mjs';
import { startTeam } from '../tools/deploy/team_demo.mjs';

import { depsRequire, lspOverWebSocket, machine, positionAt, quantile, root, sleep } from './lib/common.mjs';

const rpc = depsRequire('vscode-jsonrpc/node');

const HELP = `Usage: node bench/team_load.mjs [options]
  --editors N       simulated editors (1-32, default 4), each on its own workspace
  --users N         users owning them in turn (1-16, default 2), each with a token
  --chat N          chat users asking about a workspace (0-16, default 2)
  --duration-s S    seconds of load per mode (5-600, default 40)
  --replicas N      latentd replicas behind nginx (1-8, default 2)
  --modes LIST      hash,round-robin (default both, in that order)
  --seed S          typing traces and chat timing (default 17)
  --threads N       LATENT_THREADS per replica (default 1)
  --model DIR       default: models/demo
  --out DIR         default: /tmp/latent-bench/team
Needs nginx (scripts/setup) and a build (build/bin). Prints JSON.
`;

function parseArgs(argv) {
  const o = { editors: 4, users: 2, chat: 2, durationS: 40, replicas: 2, modes: 'hash,round-robin', seed: 17,
    threads: 1, model: path.join(root, 'models', 'demo'), out: '/tmp/latent-bench/team',
    bin: path.join(root, 'build', 'bin') };
  const bounds = { editors: [1, 32], users: [1, 16], chat: [0, 16], durationS: [5, 600], replicas: [1, 8], threads: [1, 64] };
  for (let i = 0; i < argv.length; i += 1) {
    if (argv[i] === '--help' || argv[i] === '-h') { process.stdout.write(HELP); process.exit(0); }
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(k in o) || i + 1 >= argv.length) throw new Error(`team_load: expected an option from --help with a value, found ${argv[i]}`);
    const v = argv[++i];
    if (typeof o[k] === 'number') {
      o[k] = Number(v);
      const [lo, hi] = bounds[k] ?? [-Infinity, Infinity];
      if (!Number.isInteger(o[k]) || o[k] < lo || o[k] > hi) throw new Error(`team_load: --${argv[i - 1].slice(2)}: expected an integer in [${lo}, ${hi}], found '${v}'`);
    } else o[k] = v;
  }
  for (const m of o.modes.split(',')) {
    if (m !== 'hash' && m !== 'round-robin') throw new Error(`team_load: --modes: expected hash and/or round-robin, found '${m}'`);
  }
  return o;
}

const dist = (xs) => ({ n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95) });
const round3 = (x) => (x === null || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

const load = () => Math.round(os.loadavg()[0] * 100) / 100;

// The extension's key (editors/vscode/src/workspace_key.ts) for one workspace folder.
const workspaceKey = (uri) => createHash('sha256').update(`latent-workspace\n${uri}`).digest('hex').slice(0, 32);

// Source files of this repository to type in, one per editor in turn (long enough for a trace).
const SOURCES = ['tools/demo-model/train.py', 'bench/keystroke_replay.mjs', 'tools/deploy/team_demo.mjs',
  'server/net_server.cpp', 'lsp/context_builder.cpp', 'engine/scheduler.cpp', 'bench/syntax_bench.py', 'server/users.cpp'];
const LANG = { '.py': 'python', '.mjs': 'javascript', '.cpp': 'cpp' };

function makeEditors(o) {
  const editors = [];
  for (let i = 0; i < o.editors; ++i) {
    const rel = SOURCES[i % SOURCES.length];
    const text = fs.readFileSync(path.join(root, rel), 'utf8');
    const nLines = text.split('\n').length;
    // Lines enough for the duration at ~7 keys a second; a start that differs per editor of the same file.
    const lines = Math.min(nLines - 20, Math.ceil((o.durationS * 7) / 30) + 2);
    const start = Math.min(nLines - lines - 1, 20 + 37 * Math.floor(i / SOURCES.length));
    const folder = `file:///home/dev${i}/project`;
    const trace = makeTrace({ text, uri: `${folder}/${path.basename(rel)}`, languageId: LANG[path.extname(rel)],
      startLine: start, nLines: lines, seed: o.seed + i });
    trace.events = trace.events.filter((e) => e.t < o.durationS * 1000);
    editors.push({ index: i, user: `user${i % o.users}`, folder, key: workspaceKey(folder), trace, file: rel, text });
  }
  return editors;
}

// LSP over WebSocket through nginx, as the extension's remote mode connects.
const lspConnect = (url, token, key) => lspOverWebSocket(`${url.replace('http', 'ws')}/lsp`,
  { Authorization: `Bearer ${token}`, 'X-Latent-Workspace': key });

async function openSession(url, token, ed, text, maxTokens) {
  const s = await lspConnect(url, token, ed.key);
  const ready = new Promise((resolve) => s.conn.onNotification('latent/status', (st) => { if (st.state !== 'loading') resolve(st); }));
  s.conn.listen();
  await s.conn.sendRequest('initialize', { processId: process.pid, rootUri: null, workspaceFolders: null,
    capabilities: { general: { positionEncodings: ['utf-16'] } },
    initializationOptions: { maxTokens, client: 'latent-team-load' } });
  await s.conn.sendNotification('initialized', {});
  const st = await ready;
  if (st.state !== 'ready') throw new Error(`latentd: expected state ready, found ${JSON.stringify(st)}`);
  await s.conn.sendNotification('textDocument/didOpen', { textDocument: { uri: ed.trace.uri, languageId: ed.trace.languageId, version: 1, text } });
  return s;
}

// One editor: types its trace from t0, reconnecting at half time; returns per-request records.
async function runEditor(url, tokens, ed, t0, o) {
  const maxTokens = 48;
  let text = ed.trace.initialText;
  let cursor = ed.trace.cursor;
  let version = 1;
  let session = await openSession(url, tokens[ed.user], ed, text, maxTokens);
  const landed = [session.replica];
  const debounce = new AdaptiveDebounce({ baseMs: 120 });
  const cache = new CompletionCache(128);
  const recs = [];
  const pending = [];
  let inflight;
  let seq = 0;
  let reconnected = false;
  for (const ev of ed.trace.events) {
    if (!reconnected && ev.t >= (o.durationS * 1000) / 2) {
      reconnected = true;
      inflight?.cts.cancel();
      inflight = undefined;
      await Promise.all(pending.splice(0));
      session.ws.close();
      session = await openSession(url, tokens[ed.user], ed, text, maxTokens);
      version = 1;
      landed.push(session.replica);
    }
    await sleep(t0 + ev.t - performance.now());
    const at = performance.now();
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
    const conn = session.conn;
    void conn.sendNotification('textDocument/didChange', { textDocument: { uri: ed.trace.uri, version: ++version },
      contentChanges: [{ range, text: newText }] }).catch(() => {});
    debounce.keystroke(Date.now());
    inflight?.cts.cancel();
    inflight = undefined;
    const prefix = text.slice(Math.max(0, cursor - KEY_PREFIX_CHARS), cursor);
    const suffix = text.slice(cursor, cursor + KEY_SUFFIX_CHARS);
    if (cache.get(ed.trace.languageId, prefix, suffix) !== undefined) continue;
    const cts = new rpc.CancellationTokenSource();
    const rec = { at, half: reconnected ? 2 : 1 };
    inflight = { cts, rec };
    const pos = positionAt(text, cursor);
    pending.push((async () => {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, debounce.delayMs());
        cts.token.onCancellationRequested(() => { clearTimeout(timer); resolve(); });
      });
      if (cts.token.isCancellationRequested) return;
      const token = `team-${ed.index}-${++seq}`;
      rec.sent = performance.now();
      recs.push(rec);
      const sub = conn.onProgress(new rpc.ProgressType(), token, (v) => {
        if ((v?.items?.[0]?.insertText ?? '') && rec.first === undefined) rec.first = performance.now();
      });
      try {
        const res = await conn.sendRequest('textDocument/inlineCompletion', { textDocument: { uri: ed.trace.uri }, position: pos,
          context: { triggerKind: 2 }, latent: { maxTokens }, partialResultToken: token }, cts.token);
        const final = res?.items?.[0]?.insertText ?? '';
        if (final && rec.first === undefined) rec.first = performance.now();
        rec.served = 'model';
        if (final) {
          debounce.latency(rec.first - rec.sent);
          cache.put(ed.trace.languageId, prefix, suffix, final);
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
  try {
    await session.conn.sendRequest('shutdown');
    await session.conn.sendNotification('exit');
  } catch { /* the socket may be gone */ }
  session.ws.close();
  return { recs, landed };
}

// One chat user: streamed questions about workspace `ed` (the same excerpt each time) until the deadline.
async function runChat(url, token, ed, j, deadline, seed) {
  const rand = mulberry32(seed * 1000 + j);
  const excerpt = ed.text.slice(0, 3000);
  const out = [];
  const questions = ['What does this file do?', 'Which function is the most complex?', 'Where could it fail?',
    'Suggest a test for it.', 'Explain the first function.', 'What would you rename?'];
  let k = 0;
  await sleep(500 + 1500 * rand());
  while (performance.now() < deadline) {
    const t = performance.now();
    const rec = { at: t };
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'X-Latent-Workspace': ed.key },
      body: JSON.stringify({ messages: [{ role: 'system', content: 'You are a coding assistant. Answer briefly.' },
        { role: 'user', content: `File ${ed.file}:\n${excerpt}\n\n${questions[k++ % questions.length]}` }],
      max_tokens: 32, temperature: 0, stream: true }) });
    rec.replica = res.headers.get('x-latent-replica');
    rec.status = res.status;
    const decoder = new TextDecoder();
    for await (const chunk of res.body) {
      if (rec.first === undefined && /"content":"[^"]/.test(decoder.decode(chunk, { stream: true }))) rec.first = performance.now();
    }
    rec.done = performance.now();
    out.push(rec);
    await sleep(1000 + 3000 * rand());  // reading the answer, typing the next question
  }
  return out;
}

// Prefix-cache counters of one replica (direct, admin token).
async function cacheCounters(port, adminToken) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Authorization: `Bearer ${adminToken}` } })).text();
  const value = (name) => {
    const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : 0;
  };
  return { lsp_prompt: value('latent_lsp_prompt_tokens_total'), lsp_cached: value('latent_lsp_prompt_tokens_cached_total'),
    http_prompt: value('latent_prompt_tokens_total'), http_cached: value('latent_prompt_tokens_cached_total') };
}

async function runMode(o, mode, editors, tokens, usersFile) {
  const team = await startTeam({ replicas: o.replicas, balance: mode, latentd: path.join(o.bin, 'latentd'),
    latentdArgs: ['--model', o.model, '--users', usersFile, '--ui', 'off', '--max-connections-per-user', '256'],
    env: { ...process.env, LATENT_THREADS: String(o.threads) } });
  try {
    const before = await Promise.all(team.replicas.map((r) => cacheCounters(r.port, tokens.admin)));
    const load0 = load();
    const t0 = performance.now() + 1000;
    const deadline = t0 + o.durationS * 1000;
    const chats = Array.from({ length: o.chat }, (_, j) => {
      const ed = editors[j % editors.length];
      return runChat(team.url, tokens[ed.user], ed, j, deadline, o.seed);
    });
    const eds = await Promise.all(editors.map((ed) => runEditor(team.url, tokens, ed, t0, o)));
    const chatRecs = await Promise.all(chats);
    const wall = (performance.now() - t0) / 1000;
    const after = await Promise.all(team.replicas.map((r) => cacheCounters(r.port, tokens.admin)));
    return summarize(mode, team, editors, eds, chatRecs, before, after, { load0, load1: load(), wall });
  } finally {
    await team.stop();
  }
}

function summarize(mode, team, editors, eds, chatRecs, before, after, t) {
  const complete = [];
  const perUser = new Map();
  eds.forEach((e, i) => {
    for (const r of e.recs) {
      if (r.first === undefined) continue;
      const ms = r.first - r.sent;
      complete.push(ms);
      const u = editors[i].user;
      if (!perUser.has(u)) perUser.set(u, []);
      perUser.get(u).push(ms);
    }
  });
  const chats = chatRecs.flat();
  const chatTtft = chats.filter((c) => c.first !== undefined).map((c) => c.first - c.at);
  const replicas = team.replicas.map((r, i) => {
    const d = Object.fromEntries(Object.keys(after[i]).map((k) => [k, after[i][k] - before[i][k]]));
    return { id: r.id, lsp_prompt_tokens: d.lsp_prompt, lsp_cached_tokens: d.lsp_cached,
      http_prompt_tokens: d.http_prompt, http_cached_tokens: d.http_cached,
      editor_connections: eds.flatMap((e) => e.landed).filter((x) => x === r.id).length,
      chat_requests: chats.filter((c) => c.replica === r.id).length };
  });
  const sum = (k) => replicas.reduce((a, r) => a + r[k], 0);
  const users = [...perUser.entries()].sort().map(([user, xs]) => ({ user, ...dist(xs) }));
  const spread = (k) => {
    const v = users.map((u) => u[k]).filter((x) => x !== null);
    return v.length ? round3(Math.max(...v) / Math.min(...v)) : null;
  };
  const all = eds.flatMap((e) => e.recs);
  return {
    mode,
    wall_s: Math.round(t.wall * 10) / 10,
    load_average_1m: [t.load0, t.load1],
    completions: { requests: all.length, with_first_token: complete.length,
      cancelled: all.filter((r) => r.served === 'cancelled').length, errors: all.filter((r) => r.served === 'error').length,
      request_to_first_token_ms: dist(complete) },
    chat: { requests: chats.length, non_200: chats.filter((c) => c.status !== 200).length, time_to_first_token_ms: dist(chatTtft) },
    prefix_cache_hit_rate: {
      lsp: sum('lsp_prompt_tokens') ? round3(sum('lsp_cached_tokens') / sum('lsp_prompt_tokens')) : null,
      chat: sum('http_prompt_tokens') ? round3(sum('http_cached_tokens') / sum('http_prompt_tokens')) : null,
      all: round3((sum('lsp_cached_tokens') + sum('http_cached_tokens')) / Math.max(1, sum('lsp_prompt_tokens') + sum('http_prompt_tokens'))),
    },
    fairness: { users, p50_max_over_min: spread('p50'), p95_max_over_min: spread('p95') },
    editors_moved_on_reconnect: eds.filter((e) => e.landed.length > 1 && e.landed[0] !== e.landed.at(-1)).length,
    chat_workspaces_on_one_replica: editors.slice(0, Math.min(editors.length, chatRecs.length))
      .filter((_, j) => new Set(chatRecs[j].map((c) => c.replica)).size === 1).length,
    replicas,
    errors: all.filter((r) => r.error).slice(0, 3).map((r) => r.error),
  };
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latent-team-load-'));
  try {
    const usersFile = path.join(dir, 'users.jsonl');
    const tokens = {};
    const add = (name, scopes) => {
      tokens[name] = execFileSync(path.join(o.bin, 'latent'), ['user', 'add', name, '--scopes', scopes, '--users', usersFile],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    };
    for (let u = 0; u < o.users; ++u) add(`user${u}`, 'complete,chat');
    add('admin', 'admin');
    const editors = makeEditors(o);
    const modes = [];
    for (const mode of o.modes.split(',')) modes.push(await runMode(o, mode, editors, tokens, usersFile));
    const out = { bench: 'team_load', date: new Date().toISOString(), machine: machine(), model: path.basename(o.model),
      settings: { editors: o.editors, users: o.users, chat: o.chat, duration_s: o.durationS, replicas: o.replicas,
        threads_per_replica: o.threads, seed: o.seed, reconnect: 'each editor once, at half time',
        files: [...new Set(editors.map((e) => e.file))] },
      modes };
    fs.mkdirSync(o.out, { recursive: true });
    const file = path.join(o.out, 'team_load.json');
    fs.writeFileSync(file, JSON.stringify(out, null, 2));
    console.log(JSON.stringify(out, null, 2));
    console.error(`wrote ${file}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
