// latentd --mcp through the official MCP TypeScript SDK client (@modelcontextprotocol/sdk): the workspace index
// as MCP tools (find_symbol, definition, references, context_for) over stdio, on a real workspace on disk.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { latentd } from './lib/lsp_client.mjs';

const require = createRequire(import.meta.url);
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StdioClientTransport } = require('@modelcontextprotocol/sdk/client/stdio.js');

const root = mkdtempSync(path.join(os.tmpdir(), 'latent-mcp-'));
after(() => rmSync(root, { recursive: true, force: true }));

mkdirSync(path.join(root, 'pkg'));
writeFileSync(path.join(root, '.gitignore'), 'build/\n');
writeFileSync(path.join(root, 'pkg', 'geometry.py'), [
  'import math', '', '', 'class Point:', '    def __init__(self, x, y):', '        self.x = x', '        self.y = y', '',
  '    def norm(self):', '        return math.hypot(self.x, self.y)', '', '',
  'def distance(a, b):', '    return Point(a.x - b.x, a.y - b.y).norm()', '',
].join('\n'));
writeFileSync(path.join(root, 'pkg', 'main.py'), [
  'from geometry import Point, distance', '', '', 'def run():', '    p = Point(3, 4)', '    q = Point(0, 0)',
  '    return distance(p, q)', '',
].join('\n'));
mkdirSync(path.join(root, 'build'));
writeFileSync(path.join(root, 'build', 'copy.py'), 'def distance(a, b):\n    return 0\n');

async function connect() {
  const transport = new StdioClientTransport({ command: latentd, args: ['--mcp', '--root', root], stderr: 'pipe' });
  const client = new Client({ name: 'latent-test', version: '1.0.0' });
  await client.connect(transport);
  return client;
}

const json = (r) => JSON.parse(r.content[0].text);

test('mcp: the SDK client lists the four tools and calls them', async () => {
  const client = await connect();
  assert.equal(client.getServerVersion().name, 'latentd');
  const { tools } = await client.listTools();
  assert.deepEqual(tools.map((t) => t.name).sort(), ['context_for', 'definition', 'find_symbol', 'references']);
  for (const t of tools) assert.equal(t.inputSchema.type, 'object');

  const found = json(await client.callTool({ name: 'find_symbol', arguments: { name: 'distance' } }));
  assert.deepEqual(found.symbols.map((s) => [s.path, s.line, s.kind]), [['pkg/geometry.py', 13, 'function']]);

  const def = await client.callTool({ name: 'definition', arguments: { name: 'Point.norm' } });
  assert.equal(def.isError, false);
  assert.equal(json(def).symbols[0].text, 'def norm(self):\n        return math.hypot(self.x, self.y)');

  const refs = json(await client.callTool({ name: 'references', arguments: { name: 'Point' } }));
  assert.deepEqual(refs.matches.map((m) => `${m.path}:${m.line}`).sort(),
    ['pkg/geometry.py:14', 'pkg/geometry.py:4', 'pkg/main.py:1', 'pkg/main.py:5', 'pkg/main.py:6']);

  const ctx = json(await client.callTool({ name: 'context_for', arguments: { file: 'pkg/main.py', line: 7 } }));
  assert.equal(ctx.file, 'pkg/main.py');
  assert.ok(ctx.items.some((i) => i.kind === 'definition' && i.text.includes('def distance')), JSON.stringify(ctx.items));
  await client.close();
});

test('mcp: bad calls are tool errors, paths stay inside the workspace', async () => {
  const client = await connect();
  const missing = await client.callTool({ name: 'find_symbol', arguments: { name: 'nothing_here' } });
  assert.equal(missing.isError, true);
  const outside = await client.callTool({ name: 'context_for', arguments: { file: '../etc/passwd', line: 1 } });
  assert.equal(outside.isError, true);
  assert.match(outside.content[0].text, /expected a path inside the workspace/);
  const unknown = await client.callTool({ name: 'rm_rf', arguments: {} });
  assert.equal(unknown.isError, true);
  await client.close();
});
