// Headless Debian Chromium driven by playwright-core, installed and cached exactly as for the VS Code
// end-to-end test (scripts/setup-vscode-e2e). Every request the browser makes - pages, scripts, workers,
// WebSockets - is recorded; any to a host other than the daemon's is aborted and reported.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../../..');
export const bin = process.env.LATENT_BIN_DIR ?? path.join(root, 'build/bin');
export const artifacts = path.join(bin, '..', 'test-artifacts');

// The playwright-core module, or the reason it cannot be had.
export function playwright() {
  const r = spawnSync(path.join(root, 'scripts/setup-vscode-e2e'), [], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) return { why: `scripts/setup-vscode-e2e failed: ${(r.stderr ?? '').trim().split('\n').pop()}` };
  const tools = r.stdout.trim().split('\n').pop();
  const require = createRequire(path.join(tools, 'node_modules') + '/');
  return { chromium: require('playwright-core').chromium };
}

// latentd --listen 127.0.0.1:0 ARGS; resolves with { port, child, log() } once it listens.
export function startDaemon(args) {
  const child = spawn(path.join(bin, 'latentd'), ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      err += d;
      const m = /listening on ([\d.]+):(\d+)/.exec(err);
      if (m) resolve({ port: Number(m[2]), child, log: () => err });
    });
    child.on('exit', (code) => reject(new Error(`expected latentd to listen, found it exited ${code}: ${err.trim().split('\n').pop()}`)));
  });
}

// A browser whose every request is checked against `origin` (http://127.0.0.1:PORT).
export async function openBrowser(chromium, origin, outDir) {
  mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.LATENT_CHROMIUM ?? '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  const seen = { requests: [], foreign: [], websockets: [], csp: [], errors: [] };
  const wsOrigin = origin.replace(/^http/, 'ws');
  const local = (url) => url.startsWith(`${origin}/`) || url.startsWith(`${wsOrigin}/`) || /^(data|blob):/.test(url);
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (local(url)) return route.continue();
    seen.foreign.push(url);
    return route.abort();
  });
  context.on('request', (r) => { seen.requests.push(r.url()); if (!local(r.url())) seen.foreign.push(r.url()); });
  const watch = (page) => {
    page.on('websocket', (ws) => { seen.websockets.push(ws.url()); if (!local(ws.url())) seen.foreign.push(ws.url()); });
    page.on('console', (m) => { if (/Content.Security.Policy/i.test(m.text())) seen.csp.push(m.text()); });
    page.on('pageerror', (e) => seen.errors.push(e.message));
    page.on('worker', (w) => seen.requests.push(`worker ${w.url()}`));
  };
  const newPage = async () => {
    const page = await context.newPage();
    watch(page);
    return page;
  };
  const shots = [];
  const shot = async (page, name) => {
    const p = path.join(outDir, name);
    await page.screenshot({ path: p });
    shots.push(p);
  };
  return { browser, context, newPage, seen, shot, shots };
}

// Text of the ghost (inline suggestion) on the cursor line, as Monaco renders it.
export const GHOST = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text';
export async function ghostText(page) {
  return page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent ?? '').join(''), GHOST);
}
