// Cancellation storm benchmark: latentd --listen with a model, CLIENTS WebSocket clients x REQUESTS completions,
// 90% cancelled or superseded at random points (tests/node/lib/storm.mjs). Prints one JSON line: counts, wall
// time, cache blocks held by requests afterwards (must be 0), RSS after a warm-up round and after the storm,
// and the CPU.
//   node bench/cancel_storm.mjs [--clients 8] [--requests 1000] [--model DIR] [--warmup 50]
import os from 'node:os';
import path from 'node:path';
import { startListening } from '../tests/node/lib/lsp_client.mjs';
import { storm, settled, rssKiB } from '../tests/node/lib/storm.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const clients = Number(arg('clients', 8));
const requests = Number(arg('requests', 1000));
const warmup = Number(arg('warmup', 50));
const model = arg('model', path.resolve(import.meta.dirname, '../models/demo'));

const daemon = await startListening(['--model', model, '--cache-mb', arg('cache-mb', '64')]);
try {
  await storm(daemon.port, { clients, requests: warmup, seed: 99 });
  await settled(daemon.port);
  const rssBefore = rssKiB(daemon.child.pid);
  const t0 = Date.now();
  const counts = await storm(daemon.port, { clients, requests, seed: 1 });
  const seconds = (Date.now() - t0) / 1000;
  const m = await settled(daemon.port);
  const rssAfter = rssKiB(daemon.child.pid);
  console.log(JSON.stringify({
    bench: 'cancel_storm', clients, requests, seconds, completed: counts.completed, cancelled: counts.cancelled,
    by_kind: { full: counts.full, early: counts.early, stream: counts.stream, superseded: counts.superseded },
    errors: counts.errors.length, blocks_held_by_requests: m['latent_kv_cache_blocks{state="requests"}'],
    blocks_total: m['latent_kv_cache_blocks{state="total"}'], scheduler_steps: m.latent_scheduler_steps,
    rss_kib_before: rssBefore, rss_kib_after: rssAfter, rss_drift: (rssAfter - rssBefore) / rssBefore,
    cpu: os.cpus()[0].model, model: path.basename(model),
  }));
} finally {
  daemon.child.kill('SIGKILL');
}
