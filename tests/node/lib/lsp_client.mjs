// A real JSON-RPC client (vscode-jsonrpc from npm) for latentd over stdio or WebSocket (ws + vscode-jsonrpc's
// message reader/writer over the socket). Every message the client receives is also kept in `received`, so
// that tests can look at answers vscode-jsonrpc does not surface (errors with a null id).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const rpc = require('vscode-jsonrpc/node');
const WebSocket = require('ws');

export { rpc };
export const bin = process.env.LATENT_BIN_DIR ?? path.resolve(import.meta.dirname, '../../../build/bin');
export const latentd = path.join(bin, 'latentd');

// Wraps a reader and records what it delivers.
class RecordingReader extends rpc.AbstractMessageReader {
  constructor(inner, received) {
    super();
    this.inner = inner;
    this.received = received;
    inner.onError((e) => this.fireError(e));
    inner.onClose(() => this.fireClose());
  }
  listen(callback) {
    return this.inner.listen((msg) => {
      this.received.push(msg);
      callback(msg);
    });
  }
}

class WebSocketReader extends rpc.AbstractMessageReader {
  constructor(ws) {
    super();
    this.ws = ws;
    ws.on('close', () => this.fireClose());
    ws.on('error', (e) => this.fireError(e));
  }
  listen(callback) {
    const onMessage = (data) => {
      try { callback(JSON.parse(data.toString('utf8'))); } catch (e) { this.fireError(e); }
    };
    this.ws.on('message', onMessage);
    return { dispose: () => this.ws.off('message', onMessage) };
  }
}

class WebSocketWriter extends rpc.AbstractMessageWriter {
  constructor(ws) {
    super();
    this.ws = ws;
  }
  write(msg) {
    return new Promise((resolve, reject) => this.ws.send(JSON.stringify(msg), (e) => (e ? reject(e) : resolve())));
  }
  end() {}
}

function connect(reader, writer) {
  const received = [];
  const connection = rpc.createMessageConnection(new RecordingReader(reader, received), writer);
  connection.onError(() => {});
  connection.listen();
  return { connection, received };
}

// latentd --stdio ARGS. `raw(text)` writes a framed message bypassing the client (for garbage).
export function startStdio(args = []) {
  const child = spawn(latentd, ['--stdio', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.on('error', () => {});
  const { connection, received } = connect(new rpc.StreamMessageReader(child.stdout),
    new rpc.StreamMessageWriter(child.stdin));
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  // 'close' comes after 'exit' and after stdout ended: every message latentd wrote has been read by then.
  const closed = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  return {
    connection, received, child, exited, closed, stderr: () => stderr,
    raw: (text) => child.stdin.write(`Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`),
  };
}

// latentd --listen 127.0.0.1:0 ARGS; resolves with its port once it reports it.
export async function startListening(args = []) {
  const child = spawn(latentd, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const port = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /listening on [\d.]+:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`latentd exited ${code}: ${stderr}`)));
    setTimeout(() => reject(new Error(`no port reported in 120 s: ${stderr}`)), 120_000).unref();  // bounds a hang only
  });
  return { child, port, stderr: () => stderr };
}

// Opens ws://127.0.0.1:PORT/lsp; resolves with a connection (and the upgrade answer's headers) or rejects with
// the HTTP status of a refusal. `headers`: more headers for the upgrade request.
export function connectWebSocket(port, { token, origin, query = '', headers: extra = {} } = {}) {
  const headers = { ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (origin) headers.Origin = origin;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/lsp${query}`, { headers });
  let upgradeHeaders = {};
  ws.on('upgrade', (res) => { upgradeHeaders = res.headers; });
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
    ws.on('open', () => {
      const { connection, received } = connect(new WebSocketReader(ws), new WebSocketWriter(ws));
      resolve({ connection, received, ws, raw: (text) => ws.send(text), upgradeHeaders });
    });
  });
}

// Waits until `pred()` holds (polling every 10 ms). `ms` only bounds a hang, so that it fails with a message
// instead of at the suite's timeout: tests wait on the condition, never on the clock.
export async function until(pred, ms = 120_000, what = 'condition') {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
