// JSON-RPC over the daemon's WebSocket /lsp, one message per text frame, with vscode-jsonrpc (the library
// the VS Code extension's client is built on) over the browser's WebSocket. A browser cannot set headers on
// the upgrade, so the token travels as ?token= (latentd accepts both).
import {
  AbstractMessageReader, AbstractMessageWriter, createMessageConnection, DataCallback, Disposable, Message,
  MessageConnection,
} from 'vscode-jsonrpc/browser';
import { workspaceKey } from './workspace';

class WsReader extends AbstractMessageReader {
  private callback: DataCallback | undefined;
  private readonly early: Message[] = [];

  constructor(socket: WebSocket) {
    super();
    socket.addEventListener('message', (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : '';
      let msg: Message;
      try {
        msg = JSON.parse(text) as Message;
      } catch {
        this.fireError(new Error(`latentd /lsp: expected a JSON-RPC message, found ${text.slice(0, 80)}`));
        return;
      }
      if (this.callback) this.callback(msg); else this.early.push(msg);
    });
    socket.addEventListener('close', () => this.fireClose());
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
      throw new Error(`latentd /lsp: expected an open socket, found state ${this.socket.readyState}`);
    }
    this.socket.send(JSON.stringify(msg));
  }

  end(): void { this.socket.close(); }
}

// ?workspace= is this browser's workspace key (workspace.ts), for a load balancer in front of several replicas.
export function lspUrl(token: string, workspace = workspaceKey()): string {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const query = [`workspace=${workspace}`, ...(token ? [`token=${encodeURIComponent(token)}`] : [])].join('&');
  return `${scheme}://${location.host}/lsp?${query}`;
}

// Resolves with a listening connection once the socket is open; rejects when the upgrade is refused.
export function connectLsp(token: string, onClose: () => void): Promise<MessageConnection> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(lspUrl(token));
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      const conn = createMessageConnection(new WsReader(socket), new WsWriter(socket));
      conn.onClose(onClose);
      conn.listen();
      resolve(conn);
    });
    socket.addEventListener('close', (ev) => {
      if (!opened) {
        reject(new Error(`expected latentd to accept the WebSocket at /lsp, found it refused (code ${ev.code}); ` +
          'is the token right, and is this page served by latentd?'));
      }
    });
  });
}
