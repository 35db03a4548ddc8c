import { strict as assert } from 'node:assert';
import os from 'node:os';
import { readCommandRequest, runCommand } from '../src/command_runner';

describe('command runner', () => {
  it('reads requests and refuses malformed ones', () => {
    assert.equal(readCommandRequest(null), 'expected {command, cwd, timeoutMs, maxOutputBytes}');
    assert.equal(readCommandRequest({ command: '', cwd: '/' }), 'command: expected a non-empty string');
    assert.deepEqual(readCommandRequest({ command: 'ls', cwd: '/tmp' }),
      { command: 'ls', cwd: '/tmp', timeoutMs: 60000, maxOutputBytes: 65536 });
  });

  it('returns the exit code and the output of both streams', async () => {
    const seen: string[] = [];
    const r = await runCommand({ command: 'echo out; echo err 1>&2; exit 3', cwd: os.tmpdir(), timeoutMs: 60000,
      maxOutputBytes: 1000 }, (s) => seen.push(s));
    assert.equal(r.exitCode, 3);
    assert.match(r.output, /out/);
    assert.match(r.output, /err/);
    assert.equal(r.truncated, false);
    assert.ok(seen.join('').includes('out'));
  });

  it('caps the output', async () => {
    const r = await runCommand({ command: 'yes x | head -c 100000', cwd: os.tmpdir(), timeoutMs: 60000, maxOutputBytes: 10 });
    assert.equal(r.output, 'x\nx\nx\nx\nx\n');
    assert.equal(r.truncated, true);
    assert.equal(r.exitCode, 0);
  });

  it('kills the command at its timeout', async () => {
    const r = await runCommand({ command: 'sleep 600', cwd: os.tmpdir(), timeoutMs: 300, maxOutputBytes: 1000 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, null);
  });

  it('stops when aborted', async () => {
    const ac = new AbortController();
    const p = runCommand({ command: 'exec sleep 600', cwd: os.tmpdir(), timeoutMs: 600000, maxOutputBytes: 1000 }, () => undefined, ac.signal);
    ac.abort();
    const r = await p;
    assert.equal(r.exitCode, null);
    assert.equal(r.timedOut, false);
  });
});
