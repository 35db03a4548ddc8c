// Runs one shell command for the agent (latent/agent/runCommand), after the user approved it: with a timeout
// (the process group is killed) and an output cap (stdout and stderr interleaved, the rest dropped and
// `truncated` set). Output is also passed to `onOutput` as it comes (the panel's VS Code terminal shows it).
// No VS Code here, so that it can be unit-tested with real processes.
import { spawn } from 'node:child_process';

export interface CommandRequest {
  command: string;
  cwd: string;
  timeoutMs: number;
  maxOutputBytes: number;
}

export interface CommandResult {
  exitCode: number | null;   // null: killed (timeout or cancel)
  output: string;
  truncated: boolean;
  timedOut: boolean;
}

export function readCommandRequest(p: unknown): CommandRequest | string {
  if (!p || typeof p !== 'object') return 'expected {command, cwd, timeoutMs, maxOutputBytes}';
  const o = p as Record<string, unknown>;
  if (typeof o.command !== 'string' || !o.command) return 'command: expected a non-empty string';
  if (typeof o.cwd !== 'string' || !o.cwd) return 'cwd: expected a folder';
  const timeoutMs = typeof o.timeoutMs === 'number' && o.timeoutMs > 0 ? Math.min(o.timeoutMs, 600_000) : 60_000;
  const maxOutputBytes = typeof o.maxOutputBytes === 'number' && o.maxOutputBytes > 0 ? Math.min(o.maxOutputBytes, 1 << 20) : 65536;
  return { command: o.command, cwd: o.cwd, timeoutMs, maxOutputBytes };
}

export function runCommand(req: CommandRequest, onOutput: (text: string) => void = () => undefined,
  signal?: AbortSignal): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', req.command], { cwd: req.cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let truncated = false;
    let timedOut = false;
    // The group (the shell and what it started) and the child itself: right after spawn the child may not have
    // made its own group yet.
    const kill = () => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* no group (yet) */ }
      try { child.kill('SIGKILL'); } catch { /* already gone */ }
    };
    const timer = setTimeout(() => { timedOut = true; kill(); }, req.timeoutMs);
    const onAbort = () => kill();
    signal?.addEventListener('abort', onAbort);
    const take = (b: Buffer) => {
      onOutput(b.toString('utf8'));
      if (bytes >= req.maxOutputBytes) { truncated = true; return; }
      const keep = b.subarray(0, req.maxOutputBytes - bytes);
      if (keep.length < b.length) truncated = true;
      chunks.push(keep);
      bytes += keep.length;
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const finish = (exitCode: number | null) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode, output: Buffer.concat(chunks).toString('utf8'), truncated, timedOut });
    };
    child.on('error', (e) => { chunks.push(Buffer.from(`${e.message}\n`)); finish(127); });
    child.on('close', (code) => finish(timedOut || signal?.aborted ? null : code));
  });
}
