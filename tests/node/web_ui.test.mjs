// The web playground (/) and dashboard (/dashboard) in headless Debian Chromium (playwright-core, installed as
// for the VS Code end-to-end test). Screenshots: build/test-artifacts/web-ui*/*.png.
//   1. model: latentd with its default model (models/demo, or LATENT_E2E_MODEL). Load /, type, see ghost text
//      that latentd generated, Tab accepts it into the buffer; the context panel shows latent/explainContext;
//      /dashboard, opened before the completion, shows its counters move; no request left 127.0.0.1.
//   2. token: latentd --token-file with the scripted test backend (`--test-backend`, a test double latentd labels
//      as such): the page asks for the token (a wrong one is refused), keeps it in sessionStorage, Escape
//      dismisses the ghost text, and the dashboard asks for the token too.
//   3. origin: the WebSocket accepts the daemon's own pages' Origin and refuses another (no browser needed).
// Every wait is on a condition with a generous bound (the machine is loaded); nothing sleeps.
// LATENT_E2E=0 skips the browser cases (scripts/setup then skips installing Chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { GHOST, artifacts, bin, ghostText, openBrowser, playwright, root, startDaemon } from './lib/browser.mjs';

const webDir = path.join(bin, '..', 'web-ui');
const norm = (s) => s.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
const require = createRequire(path.join(process.env.NODE_PATH ?? path.join(root, 'deps/node_modules'), '/'));

function prerequisites(t) {
  if (process.env.LATENT_E2E === '0') return 'LATENT_E2E=0';
  assert.ok(existsSync(path.join(bin, 'latentd')), `expected latentd in ${bin}, found none`);
  assert.ok(existsSync(path.join(webDir, 'index.html')),
    `expected the built web UI at ${webDir}/index.html, found none (scripts/setup-web, then cmake --build)`);
  return '';
}

// Types `typed` at the end of the current file and waits until the completion has finished streaming and its
// ghost text is on screen.
async function typeForGhost(page, typed, ms) {
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(typed, { delay: 40 });
  await page.locator(GHOST).first().waitFor({ timeout: ms });
  await page.waitForFunction(() => document.body.dataset.pending === '0', null, { timeout: ms, polling: 100 });
  // After streaming, the whole completion replaces the first line: wait until the ghost shows its first line.
  await page.waitForFunction(([sel, any]) => {
    const last = window.latentPlayground.last?.text ?? '';
    const inline = [...document.querySelectorAll(sel)].map((e) => e.textContent ?? '').join('').replace(/\u00a0/g, ' ');
    const first = last.split('\n')[0];
    if (last.trim() === '') return false;
    // A completion that starts on the next line has no inline part: any ghost text will do.
    if (first.trim() === '') return document.querySelector(any) !== null;
    return inline.length > 0 && first.trimEnd().startsWith(inline.trimEnd());
  }, ['.monaco-editor .ghost-text-decoration', GHOST], { timeout: ms, polling: 100 });
  return page.evaluate(() => window.latentPlayground.last.text);
}

const bufferOf = (page) => page.evaluate(() => window.latentPlayground.editor.getValue());

test('model: ghost text from latentd in the playground, Tab accepts it, context panel, dashboard counters move, nothing leaves 127.0.0.1',
  { timeout: 900_000 }, async (t) => {
    const skip = prerequisites(t);
    if (skip) return t.skip(skip);
    const pw = playwright();
    if (pw.why) return t.skip(`cannot run in a browser: ${pw.why}`);
    const model = process.env.LATENT_E2E_MODEL;
    const daemon = await startDaemon(model ? ['--model', model] : []);
    const origin = `http://127.0.0.1:${daemon.port}`;
    const b = await openBrowser(pw.chromium, origin, path.join(artifacts, 'web-ui'));
    try {
      // The dashboard first, so that it sees the completion happen.
      const dash = await b.newPage();
      await dash.goto(`${origin}/dashboard`);
      await dash.locator('#status[data-state="ready"]').waitFor({ timeout: 120_000 });
      const served = async () => Number(await dash.locator('#tile-completions .value').textContent());
      const before = await served();

      const page = await b.newPage();
      await page.goto(`${origin}/`);
      await page.locator('#status[data-state="ready"]').waitFor({ timeout: 120_000 });
      assert.equal(await page.locator('#language').inputValue(), 'python');
      const start = await bufferOf(page);
      const typed = '    return ';
      const ghost = await typeForGhost(page, typed, 400_000);
      t.diagnostic(`ghost text ${JSON.stringify(ghost)}`);
      await b.shot(page, 'playground-ghost.png');

      await page.keyboard.press('Tab');
      await page.waitForFunction((n) => window.latentPlayground.editor.getValue().length > n,
        (start + typed).length, { timeout: 30_000, polling: 100 });
      const after = await bufferOf(page);
      assert.ok(after.startsWith(start + typed), `expected the buffer to keep what was typed, found ${JSON.stringify(after)}`);
      assert.equal(norm(after.slice((start + typed).length)), norm(ghost), 'expected Tab to insert the ghost text');
      await b.shot(page, 'playground-accepted.png');

      await page.locator('#explain-button').click();
      const rows = page.locator('#context-body table.audit tr');
      await rows.nth(1).waitFor({ timeout: 60_000 });
      const table = await page.locator('#context-body table.audit').textContent();
      assert.match(table, /prefix/, 'expected the audit to list the prefix window');
      assert.match(await page.locator('#context-body .summary').textContent(), /prompt of \d+ tokens \(budget \d+\)/);
      await b.shot(page, 'playground-context.png');

      await dash.waitForFunction((n) => Number(document.querySelector('#tile-completions .value')?.textContent) > n,
        before, { timeout: 60_000, polling: 200 });
      await dash.waitForFunction(() => Number(document.querySelector('#tile-tokens .value')?.textContent) > 0,
        null, { timeout: 30_000, polling: 200 });
      assert.match(await dash.locator('#tile-ttft .value').textContent(), /^\d+ ms$/);
      assert.match(await dash.locator('#tile-blocks .value').textContent(), /^\d+ \/ \d+$/);
      t.diagnostic(`dashboard: completions ${before} -> ${await served()}; ttft ${await dash.locator('#tile-ttft .value').textContent()}`);
      await b.shot(dash, 'dashboard.png');

      t.diagnostic(`${b.seen.requests.length} requests, websockets ${b.seen.websockets.join(' ')}; screenshots ${b.shots.join(', ')}`);
      assert.deepEqual(b.seen.foreign, [], 'expected no request to leave 127.0.0.1');
      assert.ok(b.seen.websockets.some((u) => u.startsWith(`ws://127.0.0.1:${daemon.port}/lsp`)), 'expected the WebSocket /lsp');
      assert.deepEqual(b.seen.csp, [], 'expected no Content-Security-Policy violation');
    } finally {
      await b.browser.close();
      daemon.child.kill('SIGKILL');
    }
  });

test('token: the page asks for the token, keeps it in sessionStorage; Escape dismisses; the dashboard asks too',
  { timeout: 600_000 }, async (t) => {
    const skip = prerequisites(t);
    if (skip) return t.skip(skip);
    const pw = playwright();
    if (pw.why) return t.skip(`cannot run in a browser: ${pw.why}`);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'latent-web-ui-'));
    const token = `tok-${process.pid}-${Date.now()}`;
    writeFileSync(path.join(dir, 'token'), `${token}\n`);
    const daemon = await startDaemon(['--token-file', path.join(dir, 'token'), '--test-backend']);
    const origin = `http://127.0.0.1:${daemon.port}`;
    const b = await openBrowser(pw.chromium, origin, path.join(artifacts, 'web-ui-token'));
    try {
      // The pages need no token; what they use does.
      assert.equal((await fetch(`${origin}/`)).status, 200);
      assert.equal((await fetch(`${origin}/metrics`)).status, 401);

      const page = await b.newPage();
      await page.goto(`${origin}/`);
      const dialog = page.locator('#token-dialog[open]');
      await dialog.waitFor({ timeout: 60_000 });
      await page.locator('#token-input').fill('wrong');
      await page.keyboard.press('Enter');
      await page.locator('#token-message', { hasText: 'refused' }).waitFor({ timeout: 30_000 });
      await b.shot(page, 'playground-token.png');
      await page.locator('#token-input').fill(token);
      await page.keyboard.press('Enter');
      await page.locator('#status[data-state="ready"]').waitFor({ timeout: 60_000 });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('latent.token')), token);

      const start = await bufferOf(page);
      const ghost = await typeForGhost(page, '    return ', 120_000);
      assert.equal(norm(ghost), 'a + b', 'expected the scripted backend\'s completion');
      await page.keyboard.press('Escape');
      await page.locator(GHOST).first().waitFor({ state: 'detached', timeout: 30_000 });
      assert.equal(await bufferOf(page), `${start}    return `, 'expected Escape to leave the buffer as typed');
      assert.equal(await ghostText(page), '');

      const dash = await b.newPage();  // a new tab: its sessionStorage is empty, so it asks again
      await dash.goto(`${origin}/dashboard`);
      await dash.locator('#token-dialog[open]').waitFor({ timeout: 60_000 });
      await dash.locator('#token-input').fill(token);
      await dash.keyboard.press('Enter');
      await dash.locator('#status[data-state="ready"]').waitFor({ timeout: 60_000 });
      await b.shot(dash, 'dashboard-token.png');
      assert.deepEqual(b.seen.foreign, [], 'expected no request to leave 127.0.0.1');
      assert.deepEqual(b.seen.csp, [], 'expected no Content-Security-Policy violation');
    } finally {
      await b.browser.close();
      daemon.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

test('origin: /lsp accepts the daemon\'s own pages (Origin = Host) and refuses other Origins', { timeout: 120_000 }, async () => {
  const WebSocket = require('ws');
  const daemon = await startDaemon(['--test-backend']);
  const open = (origin, host) => new Promise((resolve) => {
    const headers = { Origin: origin };
    if (host) headers.Host = host;
    const ws = new WebSocket(`ws://127.0.0.1:${daemon.port}/lsp`, { headers });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('error', () => resolve('error'));
  });
  try {
    assert.equal(await open(`http://127.0.0.1:${daemon.port}`), 101);
    assert.equal(await open(`http://localhost:${daemon.port}`, `localhost:${daemon.port}`), 101);
    assert.equal(await open('http://evil.example'), 403);
    // DNS rebinding: a page on another name that resolves here has Origin = Host, but is not loopback.
    assert.equal(await open(`http://evil.example:${daemon.port}`, `evil.example:${daemon.port}`), 403);
  } finally {
    daemon.child.kill('SIGKILL');
  }
  // --ui on without the built pages: the daemon serves everything else, and / says how to build them.
  const unbuilt = await startDaemon(['--test-backend', '--ui', 'on', '--ui-dir', path.join(os.tmpdir(), 'latent-no-such-ui')]);
  try {
    const r = await fetch(`http://127.0.0.1:${unbuilt.port}/`);
    assert.equal(r.status, 503);
    assert.match((await r.json()).error.message, /expected the built web UI \(index.html\), found no such folder/);
    assert.equal((await fetch(`http://127.0.0.1:${unbuilt.port}/health`)).status, 200);
  } finally {
    unbuilt.child.kill('SIGKILL');
  }
  // --ui off: no pages, and no exception for their Origin.
  const off = await startDaemon(['--test-backend', '--ui', 'off']);
  try {
    assert.equal((await fetch(`http://127.0.0.1:${off.port}/`)).status, 404);
    const r = await new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${off.port}/lsp`, { headers: { Origin: `http://127.0.0.1:${off.port}` } });
      ws.on('open', () => { ws.close(); resolve(101); });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    });
    assert.equal(r, 403);
  } finally {
    off.child.kill('SIGKILL');
  }
});
