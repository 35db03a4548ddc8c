// The dashboard: polls GET /metrics (with the token, when latentd has one) once a second and shows the live
// engine - time to first token and decode speed over time, prefix-cache hit rate, latent-cache blocks in use,
// draft acceptance, and requests in flight for each front door (editor completions over the LSP, HTTP API
// generations). Charts: Chart.js, bundled; nothing is fetched from anywhere but this latentd.
import './style.css';
import {
  CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip,
} from 'chart.js';
import { authorize, requestHeaders } from './auth';
import { intervalMean, overallMean, parseMetrics, Snapshot } from './prometheus';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Filler, Legend, Tooltip);
Chart.defaults.color = '#aaa';
Chart.defaults.animation = false;

const TTFT = ['latent_time_to_first_token_seconds', 'latent_lsp_time_to_first_token_seconds'];
const TOKEN_TIME = ['latent_time_per_output_token_seconds', 'latent_lsp_time_per_output_token_seconds'];
const POINTS = 300;
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function tile(id: string, label: string): { value: HTMLElement; detail: HTMLElement } {
  const t = document.createElement('div');
  t.className = 'tile';
  t.id = `tile-${id}`;
  const l = document.createElement('div');
  l.className = 'label';
  l.textContent = label;
  const value = document.createElement('div');
  value.className = 'value';
  value.textContent = '–';
  const detail = document.createElement('div');
  detail.className = 'detail';
  t.append(l, value, detail);
  $('tiles').append(t);
  return { value, detail };
}

const tiles = {
  completions: tile('completions', 'Completions served'),
  inflight: tile('inflight', 'Requests in flight'),
  ttft: tile('ttft', 'Time to first token'),
  tps: tile('tps', 'Decode speed'),
  hit: tile('hit', 'Prefix-cache hit rate'),
  blocks: tile('blocks', 'Cache blocks in use'),
  drafts: tile('drafts', 'Draft acceptance'),
  tokens: tile('tokens', 'Tokens'),
};

function lineChart(id: string, labels: string[]): Chart {
  const colors = ['#6cb6ff', '#7ec16e', '#f2b56b'];
  return new Chart($<HTMLCanvasElement>(id), {
    type: 'line',
    data: { labels: [], datasets: labels.map((label, i) => ({
      label, data: [] as (number | null)[], borderColor: colors[i], backgroundColor: colors[i], spanGaps: true,
      pointRadius: 2, borderWidth: 1.5 })) },
    options: { responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } },
      plugins: { legend: { display: labels.length > 1 } } },
  });
}

const charts = {
  ttft: lineChart('chart-ttft', ['ms']),
  tps: lineChart('chart-tps', ['tokens/s']),
  blocks: lineChart('chart-blocks', ['in requests', 'in the prefix cache']),
  inflight: lineChart('chart-inflight', ['editor', 'HTTP']),
};

function push(chart: Chart, label: string, values: (number | undefined)[]): void {
  chart.data.labels!.push(label);
  values.forEach((v, i) => chart.data.datasets[i].data.push(v === undefined ? null : v));
  if (chart.data.labels!.length > POINTS) {
    chart.data.labels!.shift();
    for (const d of chart.data.datasets) d.data.shift();
  }
  chart.update('none');
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (s: number | undefined) => (s === undefined ? '–' : `${(1000 * s).toFixed(0)} ms`);

function show(prev: Snapshot | undefined, cur: Snapshot): void {
  const lsp = (outcome: string) => cur.sum('latent_lsp_completions_total', { outcome });
  const httpGen = ['/v1/completions', '/v1/chat/completions', '/infill']
    .reduce((s, e) => s + cur.sum('latent_http_requests_total', { endpoint: e, status: '200' }), 0);
  tiles.completions.value.textContent = String(lsp('completed') + httpGen);
  tiles.completions.detail.textContent =
    `editor ${lsp('completed')} (+${lsp('cancelled')} cancelled) · HTTP ${httpGen}`;

  const inEditor = cur.sum('latent_lsp_completions_in_flight');
  const inHttp = cur.sum('latent_http_generations_in_flight');
  tiles.inflight.value.textContent = String(inEditor + inHttp);
  tiles.inflight.detail.textContent = `editor ${inEditor} · HTTP ${inHttp} (one token: no per-user split)`;

  const ttftNow = prev ? intervalMean(prev, cur, TTFT) : undefined;
  tiles.ttft.value.textContent = ms(overallMean(cur, TTFT));
  tiles.ttft.detail.textContent = `mean since start; last second ${ms(ttftNow)}`;
  const perToken = prev ? intervalMean(prev, cur, TOKEN_TIME) : undefined;
  const perTokenAll = overallMean(cur, TOKEN_TIME);
  tiles.tps.value.textContent = perTokenAll ? `${(1 / perTokenAll).toFixed(1)} tok/s` : '–';
  tiles.tps.detail.textContent = 'after the first token, mean since start';

  const prompt = cur.sum('latent_prompt_tokens_total') + cur.sum('latent_lsp_prompt_tokens_total');
  const cached = cur.sum('latent_prompt_tokens_cached_total') + cur.sum('latent_lsp_prompt_tokens_cached_total');
  tiles.hit.value.textContent = prompt > 0 ? pct(cached / prompt) : '–';
  tiles.hit.detail.textContent = `${cached} of ${prompt} prompt tokens; lookups ${cur.sum('latent_prefix_cache_hits')}` +
    `/${cur.sum('latent_prefix_cache_lookups')} hit`;

  const total = cur.sum('latent_kv_cache_blocks', { state: 'total' });
  const free = cur.sum('latent_kv_cache_blocks', { state: 'free' });
  const prefix = cur.sum('latent_kv_cache_blocks', { state: 'prefix_cache' });
  tiles.blocks.value.textContent = total > 0 ? `${total - free} / ${total}` : '–';
  tiles.blocks.detail.textContent = `${prefix} held by the prefix cache`;

  const proposed = cur.sum('latent_scheduler_draft_tokens', { state: 'proposed' });
  const accepted = cur.sum('latent_scheduler_draft_tokens', { state: 'accepted' });
  tiles.drafts.value.textContent = proposed > 0 ? pct(accepted / proposed) : '–';
  tiles.drafts.detail.textContent = proposed > 0 ? `${accepted} of ${proposed} draft tokens` : 'no drafts (latentd --spec)';

  const generated = cur.sum('latent_completion_tokens_total') + cur.sum('latent_lsp_completion_tokens_total');
  tiles.tokens.value.textContent = String(generated);
  tiles.tokens.detail.textContent = `generated; ${prompt} prompt tokens read`;

  const t = new Date(cur.at).toLocaleTimeString();
  push(charts.ttft, t, [ttftNow === undefined ? undefined : 1000 * ttftNow]);
  push(charts.tps, t, [perToken ? 1 / perToken : undefined]);
  push(charts.blocks, t, [total > 0 ? Math.max(0, total - free - prefix) : undefined, total > 0 ? prefix : undefined]);
  push(charts.inflight, t, [inEditor, inHttp]);
}

async function run(): Promise<void> {
  const status = $('status');
  const token = await authorize();
  let prev: Snapshot | undefined;
  let polls = 0;
  const poll = async () => {
    try {
      const r = await fetch('/metrics', { headers: requestHeaders(token) });
      if (!r.ok) throw new Error(`expected GET /metrics to answer 200, found ${r.status}`);
      const cur = new Snapshot(parseMetrics(await r.text()), Date.now());
      show(prev, cur);
      prev = cur;
      status.dataset.state = 'ready';
      status.dataset.polls = String(++polls);
      status.textContent = `live · ${new Date(cur.at).toLocaleTimeString()}`;
    } catch (e) {
      status.dataset.state = 'error';
      status.textContent = (e as Error).message;
    }
    setTimeout(() => void poll(), 1000);
  };
  await poll();
}

run().catch((e) => {
  $('status').dataset.state = 'error';
  $('status').textContent = (e as Error).message;
});
