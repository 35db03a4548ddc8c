// End-to-end: the agent panel of the packaged extension in code-server, driven by headless Chromium
// (scripts/e2e-vscode --driver agent.mjs): a task typed in the panel and started with Ctrl+Enter, the proposed
// edit in VS Code's diff editor, approved from the keyboard, and the saved file checked on disk. latentd runs
// its real agent with test doubles of the model only (--test-backend, --test-agent-script). Screenshots:
// build/test-artifacts/vscode-agent-e2e/*.png. LATENT_E2E=0 skips it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const bin = process.env.LATENT_BIN_DIR ?? path.join(root, 'build/bin');

test('vscode agent e2e: task, diff, approve from the keyboard, saved file', { timeout: 600_000 }, (t) => {
  if (process.env.LATENT_E2E === '0') return t.skip('LATENT_E2E=0');
  assert.ok(existsSync(path.join(bin, 'latentd')), `expected ${bin}/latentd, found none`);
  const out = path.join(path.dirname(bin), 'test-artifacts/vscode-agent-e2e');
  const r = spawnSync(path.join(root, 'scripts/e2e-vscode'),
    ['--server', path.join(bin, 'latentd'), '--out', out, '--driver', 'agent.mjs'], { encoding: 'utf8', timeout: 540_000 });
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  let res;
  try { res = JSON.parse(line); } catch { assert.fail(`expected a JSON result from scripts/e2e-vscode, found ${line || r.error}: ${(r.stderr ?? '').slice(-2000)}`); }
  assert.equal(res.ok, true, `${res.reason}\n${res.log ?? ''}\n${(r.stderr ?? '').slice(-2000)}`);
  assert.equal(res.document, 'class Calc:\n    def add(self, a, b):\n        return a + b\n');
  assert.equal(res.screenshots.length, 2);
});
