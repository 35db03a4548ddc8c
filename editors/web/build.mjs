// Bundles the web UI into --out DIR (latentd --ui-dir): index.html and dashboard.html from static/, and under
// ui/ the playground (Monaco + LSP over /lsp), Monaco's editor worker, the dashboard (Chart.js over /metrics),
// their CSS and the codicon font. Everything the pages load is in DIR: no CDN, no font from elsewhere.
//   node build.mjs --out DIR
import * as esbuild from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: { out: { type: 'string' } } });
if (!a.out) { console.error('build.mjs: expected --out DIR'); process.exit(2); }
const here = path.dirname(new URL(import.meta.url).pathname);
const out = path.resolve(a.out);
const ui = path.join(out, 'ui');
rmSync(ui, { recursive: true, force: true });
mkdirSync(ui, { recursive: true });

const common = {
  bundle: true, minify: true, sourcemap: false, target: 'es2022', logLevel: 'warning', absWorkingDir: here,
  legalComments: 'none',
};
await esbuild.build({
  ...common, format: 'iife', outdir: ui, entryNames: '[name]',
  entryPoints: { playground: 'src/playground.ts', dashboard: 'src/dashboard.ts' },
  loader: { '.ttf': 'file' }, assetNames: '[name]',
});
await esbuild.build({
  ...common, format: 'iife', outfile: path.join(ui, 'editor.worker.js'),
  entryPoints: ['monaco-editor/editor/editor.worker'],
});
// The pages last: CMake's output stamp is index.html.
for (const f of readdirSync(path.join(here, 'static'))) copyFileSync(path.join(here, 'static', f), path.join(out, f));
