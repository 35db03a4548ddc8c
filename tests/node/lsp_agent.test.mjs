// The agent loop through the real daemon, over stdio and over WebSocket: latentd runs its real agent (tools,
// edit checker, approvals, workspace/applyEdit, revert) with a test double of the model only
// (--test-agent-script: fixed transcripts of DeepSeek tool-call text, parsed by the daemon's real parser).
// The client plays the editor: it applies workspace/applyEdit to the files on disk and answers
// latent/agent/runCommand itself (a real editor runs the command in a terminal after the user approves).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { startStdio, startListening, connectWebSocket, until } from './lib/lsp_client.mjs';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'latent-agent-'));
const daemons = [];
after(() => {
  for (const d of daemons) d.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

const ORIGINAL = [
  'class Calc:',
  '    @staticmethod',
  '    def add(a, b):',
  '        return a - b',
  '',
  '    def name(self):',
  '        return "calc"',
  '',
  'def unrelated():',
  '    return 1',
  '',
].join('\n');

// One tool call in DeepSeek's format, as the model writes it.
const call = (name, args) => '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>' + name +
  '\n```json\n' + JSON.stringify(args) + '\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>';

const FIXED_ADD = '@staticmethod\n    def add(a, b):\n        return a + b';
const FIX_SCRIPT = [
  'Let me read the file first.' + call('read_file', { path: 'calc.py' }),
  // Ambiguous: `return` occurs three times; the checker refuses and says so.
  call('edit', { path: 'calc.py', old: 'return', new: 'yield' }),
  call('edit', { path: 'calc.py', symbol: 'Calc.add', new: FIXED_ADD }),
  call('run_command', { command: 'python3 -m pytest -q' }),
  'Fixed Calc.add: it returns a + b now, and the tests pass.',
];

function workspace(name) {
  const dir = mkdtempSync(path.join(tmp, `${name}-`));
  writeFileSync(path.join(dir, 'calc.py'), ORIGINAL);
  return dir;
}

function script(name, turns) {
  const file = path.join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify({ turns }));
  return file;
}

// Offset of an LSP position (UTF-16 code units; the test files are ASCII).
function offsetOf(text, { line, character }) {
  let off = 0;
  for (let l = 0; l < line; l++) off = text.indexOf('\n', off) + 1;
  return off + character;
}

// The editor's side of workspace/applyEdit, on the files on disk.
function applyWorkspaceEdit(edit) {
  const apply = (uri, edits) => {
    const file = fileURLToPath(uri);
    let text = readFileSync(file, 'utf8');
    const sorted = [...edits].sort((a, b) => offsetOf(text, b.range.start) - offsetOf(text, a.range.start));
    for (const e of sorted) {
      text = text.slice(0, offsetOf(text, e.range.start)) + e.newText + text.slice(offsetOf(text, e.range.end));
    }
    writeFileSync(file, text);
  };
  for (const [uri, edits] of Object.entries(edit.changes ?? {})) apply(uri, edits);
  for (const change of edit.documentChanges ?? []) {
    if (change.kind === 'create') {
      mkdirSync(path.dirname(fileURLToPath(change.uri)), { recursive: true });  // as VS Code does
      writeFileSync(fileURLToPath(change.uri), '', { flag: 'wx' });
    }
    else if (change.kind === 'delete') unlinkSync(fileURLToPath(change.uri));
    else apply(change.textDocument.uri, change.edits);
  }
}

// An editor: records updates, applies edits, answers runCommand with a canned result.
function editor(connection) {
  const updates = [];
  const applyEdits = [];
  const commands = [];
  connection.onNotification('latent/agent/update', (u) => updates.push(u));
  connection.onRequest('workspace/applyEdit', (p) => {
    applyEdits.push(p);
    applyWorkspaceEdit(p.edit);
    return { applied: true };
  });
  connection.onRequest('latent/agent/runCommand', (p) => {
    commands.push(p);
    return { exitCode: 0, output: '1 passed in 0.01s\n', truncated: false };
  });
  const status = (state) => updates.find((u) => u.kind === 'status' && u.state === state);
  return { updates, applyEdits, commands, status };
}

async function initialize(connection, root) {
  const init = await connection.sendRequest('initialize', {
    processId: process.pid, rootUri: pathToFileURL(root).href,
    workspaceFolders: [{ uri: pathToFileURL(root).href, name: 'ws' }], capabilities: {},
  });
  assert.equal(init.capabilities.experimental.latent.agent, true);
  await connection.sendNotification('initialized', {});
}

// The whole loop: read, a refused edit, an approved edit, a command, the final answer, then revert.
async function fixAndRevert(connection, root) {
  const ed = editor(connection);
  await initialize(connection, root);
  const file = path.join(root, 'calc.py');
  const { taskId } = await connection.sendRequest('latent/agent/start', { task: 'Calc.add subtracts; make it add.' });
  assert.match(taskId, /^task-/);

  // The edit waits for approval; nothing is written before it.
  await until(() => ed.updates.some((u) => u.kind === 'edit' && u.state === 'proposed'), 30000, 'a proposed edit');
  const proposed = ed.updates.find((u) => u.kind === 'edit' && u.state === 'proposed');
  assert.equal(proposed.path, 'calc.py');
  assert.equal(proposed.oldText, '@staticmethod\n    def add(a, b):\n        return a - b');
  assert.equal(proposed.newText, FIXED_ADD);
  assert.deepEqual(proposed.range, { start: { line: 1, character: 4 }, end: { line: 3, character: 20 } });
  await until(() => ed.status('waiting'), 30000, 'waiting for approval');
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);

  // The refused edit before it: the model was told which check failed.
  const results = ed.updates.filter((u) => u.kind === 'toolResult');
  assert.equal(results[0].name, 'read_file');
  assert.equal(results[0].result.text, ORIGINAL);
  assert.equal(results[1].name, 'edit');
  assert.equal(results[1].ok, false);
  assert.match(results[1].result.error, /ambiguous.*occurs 3 times/);
  // The model's text streams in pieces (however the daemon's reads happen to cut it).
  assert.match(ed.updates.filter((u) => u.kind === 'text').map((u) => u.text).join(''), /^Let me read the file first\./);

  await connection.sendRequest('latent/agent/respond', { taskId, approve: true });
  await until(() => ed.status('done'), 30000, 'the task to finish');
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL.replace('return a - b', 'return a + b'));
  assert.equal(ed.applyEdits.length, 1);
  // A versioned edit (version null: calc.py is not open in this editor, so it is read from disk).
  assert.deepEqual(ed.applyEdits[0].edit.documentChanges.map((c) => c.textDocument),
    [{ uri: pathToFileURL(file).href, version: null }]);
  assert.equal(ed.commands.length, 1);
  assert.equal(ed.commands[0].command, 'python3 -m pytest -q');
  assert.equal(ed.commands[0].cwd, root);
  const cmd = ed.updates.find((u) => u.kind === 'toolResult' && u.name === 'run_command');
  assert.equal(cmd.result.output, '1 passed in 0.01s\n');
  assert.match(ed.status('done').message, /Fixed Calc.add/);
  assert.ok(ed.updates.some((u) => u.kind === 'edit' && u.state === 'applied'));

  // Revert: one workspace/applyEdit brings back the original bytes.
  await connection.sendRequest('latent/agent/revert', { taskId });
  await until(() => ed.updates.some((u) => u.kind === 'edit' && u.state === 'reverted'), 30000, 'the revert');
  assert.equal(ed.applyEdits.length, 2);
  assert.equal(readFileSync(file, 'utf8'), ORIGINAL);
}

test('agent over stdio: read, refused edit, approved edit, command, done, revert', async () => {
  const root = workspace('stdio');
  const d = startStdio(['--test-agent-script', script('stdio', FIX_SCRIPT)]);
  daemons.push(d.child);
  await fixAndRevert(d.connection, root);
  await d.connection.sendRequest('shutdown');
  await d.connection.sendNotification('exit');
  assert.equal(await d.exited, 0);
});

test('agent over WebSocket: the same task through the same handler', async () => {
  const root = workspace('ws');
  const d = await startListening(['--test-agent-script', script('ws', FIX_SCRIPT)]);
  daemons.push(d.child);
  const s = await connectWebSocket(d.port);
  await fixAndRevert(s.connection, root);
  s.ws.close();
});

test('agent: a rejected edit is not written, a cancelled task stops, a hostile path is refused', async () => {
  const root = workspace('reject');
  const secret = path.join(tmp, 'secret.py');
  writeFileSync(secret, 'SECRET = 1\n');
  const turns = [
    call('edit', { path: '../secret.py', old: 'SECRET = 1', new: 'SECRET = 2' }),
    call('edit', { path: 'calc.py', old: 'return 1', new: 'return 2' }),
    call('create_file', { path: 'notes.py', content: 'x = 1\n' }),
  ];
  const d = startStdio(['--test-agent-script', script('reject', turns)]);
  daemons.push(d.child);
  const ed = editor(d.connection);
  await initialize(d.connection, root);
  const { taskId } = await d.connection.sendRequest('latent/agent/start', { task: 'change things', approval: 'edit' });
  await until(() => ed.updates.some((u) => u.kind === 'edit' && u.state === 'proposed'), 30000, 'a proposed edit');
  const refused = ed.updates.find((u) => u.kind === 'toolResult');
  assert.equal(refused.ok, false);
  assert.match(refused.result.error, /expected a path inside the workspace, found a '\.\.' component/);
  await d.connection.sendRequest('latent/agent/respond', { taskId, reject: true, message: 'not that one' });
  await until(() => ed.updates.some((u) => u.kind === 'edit' && u.state === 'proposed' && u.create), 30000, 'the create');
  const rejected = ed.updates.find((u) => u.kind === 'toolResult' && u.name === 'edit' && u.callId === 'call-2-1');
  assert.equal(rejected.result.message, 'not that one');
  await d.connection.sendRequest('latent/agent/cancel', { taskId });
  await until(() => ed.status('cancelled'), 30000, 'the cancel');
  assert.equal(ed.applyEdits.length, 0);
  assert.equal(readFileSync(path.join(root, 'calc.py'), 'utf8'), ORIGINAL);
  assert.equal(readFileSync(secret, 'utf8'), 'SECRET = 1\n');
  assert.equal(existsSync(path.join(root, 'notes.py')), false);
  // Bad params get errors that say what was expected.
  await assert.rejects(d.connection.sendRequest('latent/agent/start', {}), /expected params \{task: string/);
  await assert.rejects(d.connection.sendRequest('latent/agent/respond', { taskId: 'task-99', approve: true }), /no task task-99/);
  d.child.kill();
});
