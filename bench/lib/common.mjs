// Helpers shared by the Node benchmarks (keystroke_replay, team_load, first_token): percentiles, the machine's
// description for every result, LSP positions, and LSP JSON-RPC over a WebSocket as the extension's remote mode
// speaks it (vscode-jsonrpc's message connection over the `ws` package, one JSON message per text frame).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

export const root = path.resolve(import.meta.dirname, '..', '..');
export const depsRequire = createRequire(path.join(root, 'deps', 'package.json'));

export const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

// The q-quantile of xs (nearest rank), rounded to `digits` decimals; null for no samples.
export function quantile(xs, q, digits = 1) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const scale = 10 ** digits;
  return Math.round(s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] * scale) / scale;
}

// What every benchmark result states: the CPU, its cores and the memory.
export function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  return { cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown', cores: os.cpus().length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30) };
}

// UTF-16 offset in text -> LSP position.
export function positionAt(text, offset) {
  let line = 0, ls = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) { line++; ls = i + 1; }
  return { line, character: offset - ls };
}

// Opens url (ws://host:port/lsp) with the given upgrade headers; resolves to { conn, ws, replica } once open
// (replica: the X-Latent-Replica header of the upgrade answer, set by the team server behind nginx). Rejects on a
// refused upgrade, naming its HTTP status. The connection is not listening yet: call conn.listen().
export function lspOverWebSocket(url, headers = {}) {
  const rpc = depsRequire('vscode-jsonrpc/node');
  const WebSocket = depsRequire('ws');
  const ws = new WebSocket(url, { headers });
  let replica;
  ws.on('upgrade', (res) => { replica = res.headers['x-latent-replica']; });
  class Reader extends rpc.AbstractMessageReader {
    listen(cb) {
      const on = (d) => cb(JSON.parse(d.toString('utf8')));
      ws.on('message', on);
      return { dispose: () => ws.off('message', on) };
    }
  }
  class Writer extends rpc.AbstractMessageWriter {
    write(m) { return new Promise((res, rej) => ws.send(JSON.stringify(m), (e) => (e ? rej(e) : res()))); }
    end() {}
  }
  return new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('unexpected-response', (_q, res) => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode}`)));
    ws.on('open', () => {
      const conn = rpc.createMessageConnection(new Reader(), new Writer());
      conn.onError(() => {});
      resolve({ conn, ws, replica });
    });
  });
}
