// JSON-RPC over a WebSocket for remote mode: one JSON-RPC message per text frame, as latentd's /lsp endpoint
// speaks it (a frame that carries LSP's Content-Length header is accepted too). The bearer token goes in the
// Authorization header of the upgrade request, the workspace key (for a load balancer) in X-Latent-Workspace.
import WebSocket from 'ws';
import {
  AbstractMessageReader, AbstractMessageWriter, DataCallback, Disposable, Message, MessageReader, MessageWriter,
} from 'vscode-jsonrpc/node';
import { WORKSPACE_HEADER } from './workspace_key';

class WsReader extends AbstractMessageReader {
  private callback: DataCallback | undefined;
  private readonly early: Message[] = [];

  constructor(private readonly socket: WebSocket) {
    super();
    socket.on('message', (data, isBinary) => {
      const text = isBinary ? Buffer.from(data as Buffer).toString('utf8') : data.toString();
      let msg: Message;
      try {
        msg = JSON.parse(stripHeaders(text)) as Message;
      } catch (e) {
        this.fireError(new Error(`latentd WebSocket: expected a JSON-RPC message, found ${text.slice(0, 80)}`));
        return;
      }
      if (this.callback) this.callback(msg); else this.early.push(msg);
    });
    socket.on('error', (e) => this.fireError(e));
    socket.on('close', () => this.fireClose());
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    for (const m of this.early.splice(0)) callback(m);
    return { dispose: () => { this.callback = undefined; } };
  }
}

class WsWriter extends AbstractMessageWriter {
  constructor(private readonly socket: WebSocket) { super(); }

  async write(msg: Message): Promise<void> {
    if (this.socket.readyState !== WebSocket.OPEN) {
      throw new Error(`latentd WebSocket: expected an open socket, found state ${this.socket.readyState}`);
    }
    await new Promise<void>((resolve, reject) =>
      this.socket.send(JSON.stringify(msg), (err) => (err ? reject(err) : resolve())));
  }

  end(): void { this.socket.close(); }
}

export function stripHeaders(frame: string): string {
  if (!frame.startsWith('Content-Length:')) return frame;
  const i = frame.indexOf('\r\n\r\n');
  return i < 0 ? frame : frame.slice(i + 4);
}

// Opens the socket; resolves once it is open, rejects on a refused upgrade (e.g. 401 for a wrong token).
// The reader/writer pair (vscode-languageclient's MessageTransports shape). Imports only vscode-jsonrpc, so
// it is tested against a real ws server without VS Code.
export interface WsTransports { reader: MessageReader; writer: MessageWriter; }

// `workspace`: the workspace key (workspace_key.ts), sent so that a load balancer in front of several latentd
// replicas keeps this workspace on one of them.
export function connectWebSocket(url: string, token: string | undefined, timeoutMs = 15_000,
  workspace?: string): Promise<WsTransports> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (workspace) headers[WORKSPACE_HEADER] = workspace;
    const socket = new WebSocket(url, { headers, handshakeTimeout: timeoutMs, maxPayload: 64 << 20 });
    socket.once('open', () => resolve({ reader: new WsReader(socket), writer: new WsWriter(socket) }));
    socket.once('unexpected-response', (_req, res) => {
      reject(new Error(`latentd at ${url}: expected a WebSocket upgrade, found HTTP ${res.statusCode}` +
        (res.statusCode === 401 ? ' (is the token right? Command: Latent: Set the Remote Server Token)' : '')));
      socket.terminate();
    });
    socket.once('error', (e) => reject(e));
  });
}
