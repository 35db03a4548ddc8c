// Remote mode's transport against a real ws server on loopback: bearer token in the upgrade, one JSON-RPC
// message per frame (and Content-Length-framed frames), a refused upgrade reported with its status.
import { strict as assert } from 'node:assert';
import type { AddressInfo } from 'node:net';
import { createMessageConnection } from 'vscode-jsonrpc/node';
import { WebSocketServer } from 'ws';
import { connectWebSocket, stripHeaders } from '../src/websocket';

describe('WebSocket transport', () => {
  let wss: WebSocketServer;
  let url: string;
  const seenAuth: string[] = [];
  const seenWorkspace: (string | undefined)[] = [];

  before(async () => {
    wss = new WebSocketServer({
      host: '127.0.0.1', port: 0, path: '/lsp',
      verifyClient: (info, cb) => {
        const auth = info.req.headers.authorization ?? '';
        seenAuth.push(auth);
        seenWorkspace.push(info.req.headers['x-latent-workspace'] as string | undefined);
        cb(auth === 'Bearer s3cret', 401);
      },
    });
    await new Promise((r) => wss.once('listening', r));
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/lsp`;
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const msg = JSON.parse(data.toString());
        if (msg.method === 'echo') {
          // A notification first, framed with LSP headers, then the plain response.
          const note = JSON.stringify({ jsonrpc: '2.0', method: 'latent/partialCompletion', params: { delta: 'x' } });
          ws.send(`Content-Length: ${Buffer.byteLength(note)}\r\n\r\n${note}`);
          ws.send(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { echoed: msg.params } }));
        }
      });
    });
  });

  after(() => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));

  it('sends the bearer token and speaks JSON-RPC per frame', async () => {
    const { reader, writer } = await connectWebSocket(url, 's3cret');
    const conn = createMessageConnection(reader, writer);
    const notes: unknown[] = [];
    conn.onNotification('latent/partialCompletion', (p) => { notes.push(p); });
    conn.listen();
    const res = await conn.sendRequest('echo', { a: 1 });
    assert.deepEqual(res, { echoed: { a: 1 } });
    assert.deepEqual(notes, [{ delta: 'x' }]);
    assert.equal(seenAuth.at(-1), 'Bearer s3cret');
    conn.dispose();
    writer.end();
  });

  it('sends the workspace key for a load balancer, and no header without one', async () => {
    const key = '0123456789abcdef0123456789abcdef';
    (await connectWebSocket(url, 's3cret', undefined, key)).writer.end();
    assert.equal(seenWorkspace.at(-1), key);
    (await connectWebSocket(url, 's3cret')).writer.end();
    assert.equal(seenWorkspace.at(-1), undefined);
  });

  it('reports a refused upgrade with its HTTP status and a hint about the token', async () => {
    await assert.rejects(connectWebSocket(url, 'wrong'), /expected a WebSocket upgrade, found HTTP 401 \(is the token right/);
    await assert.rejects(connectWebSocket(url, undefined), /HTTP 401/);
    assert.equal(seenAuth.at(-1), '');
  });

  it('rejects when nothing listens', async () => {
    await assert.rejects(connectWebSocket('ws://127.0.0.1:1/lsp', 'x'), /ECONNREFUSED/);
  });

  it('strips LSP headers from a frame', () => {
    assert.equal(stripHeaders('Content-Length: 2\r\n\r\n{}'), '{}');
    assert.equal(stripHeaders('{"a":1}'), '{"a":1}');
  });
});
