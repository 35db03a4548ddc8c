// The VS Code extension's unit tests (mocha, plain TS modules: settings, debounce, LRU, streaming, backoff,
// status text), its type check and its .vsix packaging, run from the suite. Needs the extension's npm
// packages, which scripts/setup installs (scripts/setup-vscode) and links as editors/vscode/node_modules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';

const root = process.env.LATENT_SOURCE_DIR ?? path.resolve(import.meta.dirname, '../..');
const ext = path.join(root, 'editors/vscode');

function npm(...args) {
  return execFileSync('npm', ['run', '--silent', ...args], { cwd: ext, encoding: 'utf8', stdio: 'pipe' });
}

test('extension npm packages are installed', () => {
  assert.ok(existsSync(path.join(ext, 'node_modules/.bin/mocha')),
    `expected ${ext}/node_modules (run scripts/setup-vscode), found none`);
});

test('mocha unit tests pass', () => {
  const out = npm('test');
  const m = /(\d+) passing/.exec(out);
  assert.ok(m && Number(m[1]) >= 30, `expected >= 30 passing mocha tests, found: ${out.slice(-400)}`);
  assert.doesNotMatch(out, /failing/);
});

test('TypeScript type check passes', () => {
  npm('typecheck');
});

test('packages a .vsix with the bundled extension', () => {
  npm('package');
  const vsix = path.join(ext, 'dist/latent.vsix');
  assert.ok(statSync(vsix).size > 10_000, `expected ${vsix} of some size`);
  const list = execFileSync('python3', ['-c',
    'import sys,zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', vsix], { encoding: 'utf8' });
  assert.match(list, /extension\/dist\/extension\.js/);
  assert.match(list, /extension\/package\.json/);
  assert.doesNotMatch(list, /node_modules|\.ts\b/, 'the .vsix must hold only the bundle');
});
