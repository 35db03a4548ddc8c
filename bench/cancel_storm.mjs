// Cancellation storm benchmark: latentd --listen with a model, CLIENTS WebSocket clients x REQUESTS completions,
// 90% cancelled or superseded at random points (tests/node/lib/storm.mjs). Prints one JSON line: counts, wall
// time, cache blocks held by requests afterwards (must be 0), RSS after a warm-up round and after the storm,
// and the CPU. Exits 1 if a request ended in an error, a block stayed held, or the storm hung (see --deadline).
// `node bench/cancel_storm.mjs --help` lists the options.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const usage = `usage: node bench/cancel_storm.mjs [options]   (NODE_PATH=deps/node_modules)
  --clients N      WebSocket clients (default 8)
  --requests N     inline completions per client (default 1000); 90% are cancelled or superseded
  --warmup N       requests per client in the warm-up round whose end is the RSS baseline (default 50)
  --model DIR      model directory (default models/demo)
  --cache-mb N     latentd --cache-mb (default 64)
  --deadline S     hang bound in seconds for each round (default 1800): if a round has not ended by then, prints
                   {"bench":"cancel_storm","hung":true,...} naming each unfinished client (and its stage) and each
                   request that never ended, and exits 1
  -h, --help       this text
Output: one JSON line; exit 0 only if every request ended in a result or a cancellation, no cache block is held
by a request afterwards, and nothing hung.`;

let opts;
try {
  opts = parseArgs({ options: {
    clients: { type: 'string', default: '8' }, requests: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '50' }, model: { type: 'string' }, 'cache-mb': { type: 'string', default: '64' },
    deadline: { type: 'string', default: '1800' }, help: { type: 'boolean', short: 'h' },
  } }).values;
} catch (e) {
  console.error(`bench/cancel_storm.mjs: ${e.message}\n${usage}`);
  process.exit(2);
}
if (opts.help) { console.log(usage); process.exit(0); }
const count = (name, min) => {
  const v = Number(opts[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(`bench/cancel_storm.mjs: --${name} expects an integer >= ${min}, found '${opts[name]}'`);
    process.exit(2);
  }
  return v;
};
const clients = count('clients', 1);
const requests = count('requests', 1);
const warmup = count('warmup', 0);
const deadlineMs = count('deadline', 1) * 1000;
const model = path.resolve(opts.model ?? path.join(import.meta.dirname, '../models/demo'));

// Imported after the options, so that --help works without NODE_PATH.
const { startListening } = await import('../tests/node/lib/lsp_client.mjs');
const { storm, settled, rssKiB, StormHang } = await import('../tests/node/lib/storm.mjs');
const daemon = await startListening(['--model', model, '--cache-mb', opts['cache-mb']]);
let rc = 0;
try {
  if (warmup > 0) await storm(daemon.port, { clients, requests: warmup, seed: 99, deadlineMs });
  await settled(daemon.port);
  const rssBefore = rssKiB(daemon.child.pid);
  const t0 = Date.now();
  const counts = await storm(daemon.port, { clients, requests, seed: 1, deadlineMs });
  const seconds = (Date.now() - t0) / 1000;
  const m = await settled(daemon.port);
  const rssAfter = rssKiB(daemon.child.pid);
  const held = m['latent_kv_cache_blocks{state="requests"}'];
  console.log(JSON.stringify({
    bench: 'cancel_storm', clients, requests, seconds, completed: counts.completed, cancelled: counts.cancelled,
    by_kind: { full: counts.full, early: counts.early, stream: counts.stream, superseded: counts.superseded },
    errors: counts.errors.length, first_errors: counts.errors.slice(0, 5), blocks_held_by_requests: held,
    blocks_total: m['latent_kv_cache_blocks{state="total"}'], scheduler_steps: m.latent_scheduler_steps,
    rss_kib_before: rssBefore, rss_kib_after: rssAfter, rss_drift: (rssAfter - rssBefore) / rssBefore,
    cpu: os.cpus()[0].model, model: path.basename(model),
  }));
  if (counts.errors.length > 0 || held !== 0) rc = 1;
} catch (e) {
  if (!(e instanceof StormHang)) throw e;
  console.log(JSON.stringify({ bench: 'cancel_storm', hung: true, deadline_s: deadlineMs / 1000, clients, requests,
                               unfinished: e.unfinished, cpu: os.cpus()[0].model }));
  rc = 1;
} finally {
  daemon.child.kill('SIGKILL');
}
process.exit(rc);
