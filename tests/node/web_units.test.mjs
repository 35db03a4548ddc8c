// The web UI's TypeScript without a browser: tsc type-checks editors/web/src (with the VS Code extension's
// shared protocol helpers), and the dashboard's /metrics reader is bundled with esbuild and run on Prometheus text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const web = path.join(root, 'editors', 'web');
const modules = path.join(web, 'node_modules');
const missing = existsSync(path.join(modules, 'typescript'))
  ? '' : 'editors/web/node_modules is missing (scripts/setup-web)';

test('tsc: editors/web/src type-checks', { timeout: 300_000 }, (t) => {
  assert.equal(missing, '', missing);
  const r = spawnSync(process.execPath, [path.join(modules, 'typescript/bin/tsc'), '-p', path.join(web, 'tsconfig.json')],
    { encoding: 'utf8', cwd: web });
  assert.equal(r.status, 0, `expected no type errors, found:\n${r.stdout}${r.stderr}`);
});

test('dashboard: the /metrics reader parses labels, escapes and histograms', { timeout: 120_000 }, async () => {
  assert.equal(missing, '', missing);
  const esbuild = createRequire(path.join(modules, '/'))('esbuild');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'latent-web-units-'));
  try {
    const out = path.join(dir, 'prometheus.mjs');
    await esbuild.build({ entryPoints: [path.join(web, 'src/prometheus.ts')], bundle: true, format: 'esm', outfile: out, logLevel: 'error' });
    const { parseMetrics, Snapshot, intervalMean, overallMean } = await import(pathToFileURL(out).href);
    const text = (ttftSum, ttftCount) => [
      '# HELP latent_kv_cache_blocks Latent-cache blocks',
      '# TYPE latent_kv_cache_blocks gauge',
      'latent_kv_cache_blocks{state="free"} 3000',
      'latent_kv_cache_blocks{state="total"} 3276',
      'latent_http_requests_total{endpoint="/v1/completions",status="200"} 2',
      'latent_http_requests_total{endpoint="/we\\"ird\\\\path",status="404"} 1',
      'latent_lsp_time_to_first_token_seconds_bucket{le="+Inf"} 4',
      `latent_lsp_time_to_first_token_seconds_sum ${ttftSum}`,
      `latent_lsp_time_to_first_token_seconds_count ${ttftCount}`,
      'latent_prompt_tokens_total 3e+01',
      '',
    ].join('\n');
    const series = parseMetrics(text(0.2, 4));
    assert.equal(series.length, 8);
    assert.deepEqual(series.find((s) => s.labels.status === '404').labels, { endpoint: '/we"ird\\path', status: '404' });
    assert.equal(series.find((s) => s.labels.le === '+Inf').value, 4);
    const a = new Snapshot(series, 0);
    assert.equal(a.sum('latent_kv_cache_blocks', { state: 'total' }), 3276);
    assert.equal(a.sum('latent_kv_cache_blocks'), 6276);
    assert.equal(a.sum('latent_prompt_tokens_total'), 30);
    assert.equal(a.sum('latent_absent'), 0);
    const b = new Snapshot(parseMetrics(text(0.5, 6)), 1000);
    const fams = ['latent_time_to_first_token_seconds', 'latent_lsp_time_to_first_token_seconds'];
    assert.ok(Math.abs(intervalMean(a, b, fams) - 0.15) < 1e-12);  // (0.5 - 0.2) / (6 - 4)
    assert.equal(intervalMean(b, b, fams), undefined);             // nothing observed in between
    assert.ok(Math.abs(overallMean(b, fams) - 0.5 / 6) < 1e-12);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workspace key: 32 random hex digits made once per browser, kept, and a bad stored value replaced', { timeout: 120_000 }, async () => {
  assert.equal(missing, '', missing);
  const esbuild = createRequire(path.join(modules, '/'))('esbuild');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'latent-web-units-'));
  try {
    const out = path.join(dir, 'workspace.mjs');
    await esbuild.build({ entryPoints: [path.join(web, 'src/workspace.ts')], bundle: true, format: 'esm', outfile: out, logLevel: 'error' });
    const { workspaceKey, WORKSPACE_HEADER } = await import(pathToFileURL(out).href);
    assert.equal(WORKSPACE_HEADER, 'X-Latent-Workspace');
    const store = new Map();
    const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v) };
    const k = workspaceKey(storage);
    assert.match(k, /^[0-9a-f]{32}$/);
    assert.equal(workspaceKey(storage), k, 'kept');
    assert.notEqual(workspaceKey({ getItem: () => null, setItem: () => {} }), k, 'another browser, another key');
    store.set('latent.workspace', 'not a key');
    const fresh = workspaceKey(storage, (b) => b.fill(0xab));
    assert.equal(fresh, 'ab'.repeat(16));
    assert.equal(store.get('latent.workspace'), fresh);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
