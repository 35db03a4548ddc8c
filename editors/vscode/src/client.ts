// The connection to latentd: local mode spawns `latentd --stdio [--model DIR]` and restarts it with backoff
// when it dies; remote mode opens a WebSocket (wss://host/lsp) with the bearer token from SecretStorage and
// the workspace key (workspace_key.ts) for a load balancer in front of several replicas.
// Document sync is vscode-languageclient's; inline completions go through `complete` (our provider owns
// debounce, cache and streaming, so the client's built-in inline provider is silenced by middleware).
import * as vscode from 'vscode';
import {
  CloseAction, ErrorAction, LanguageClient, LanguageClientOptions, ProgressType, ResponseError, ServerOptions, State,
} from 'vscode-languageclient/node';
import { Backoff } from './backoff';
import {
  Chunk, DaemonStatus, InlineCompletionParams, METHOD_AGENT_RUN_COMMAND, METHOD_AGENT_UPDATE, METHOD_EXPLAIN, METHOD_INLINE_COMPLETION, METHOD_PARTIAL,
  METHOD_STATUS, readChunk, readStatus,
} from './protocol';
import { normalizeRemoteUrl, Settings } from './settings';
import { connectWebSocket, WsTransports } from './websocket';
import { findExecutable } from './which';
import { workspaceKey } from './workspace_key';

export type ClientState =
  | { kind: 'stopped' }
  | { kind: 'loading'; progress?: number; message?: string; phase?: string; bytesDone?: number; bytesTotal?: number }
  | { kind: 'ready' }
  | { kind: 'error'; message: string };

export const TOKEN_SECRET = 'latent.remoteToken';
// Documents latentd is told about and completes in (not diff views, output panes, settings editors).
export const DOCUMENT_SELECTOR = [{ scheme: 'file' }, { scheme: 'untitled' }];
const PARTIAL = new ProgressType<unknown>();

export class DaemonClient implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private generation = 0;              // bumps per start; events from older clients are ignored
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly backoff = new Backoff();
  private readonly partials = new Map<string, (c: Chunk) => void>();
  private seq = 0;
  private state_: ClientState = { kind: 'stopped' };
  private readonly stateEmitter = new vscode.EventEmitter<ClientState>();
  readonly onState = this.stateEmitter.event;
  private readonly agentEmitter = new vscode.EventEmitter<unknown>();
  readonly onAgentUpdate = this.agentEmitter.event;  // latent/agent/update notifications
  private commandHandler: ((p: unknown) => Promise<unknown>) | undefined;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly secrets: vscode.SecretStorage,
    private readonly settings: () => Settings,
  ) {}

  get state(): ClientState { return this.state_; }

  private setState(s: ClientState): void {
    this.state_ = s;
    this.stateEmitter.fire(s);
  }

  async start(): Promise<void> {
    clearTimeout(this.restartTimer);
    const gen = ++this.generation;
    const s = this.settings();
    this.setState({ kind: 'loading' });
    // Failures to reach latentd are found here, before the client exists, so they are reported once in our
    // words (status bar, one warning) rather than as the client's forced error pop-up with a stack trace.
    let serverOptions: ServerOptions;
    this.startedAt = Date.now();
    if (s.mode === 'local') {
      const args = ['--stdio', ...(s.modelPath ? ['--model', s.modelPath] : []), ...s.serverArgs];
      const program = findExecutable(s.serverPath);
      if (!program) {
        return this.died(`expected the latentd program at "${s.serverPath}" (setting latent.serverPath), found none`);
      }
      this.log.info(`starting ${program} ${args.join(' ')}`);
      serverOptions = { command: program, args, options: { env: { ...process.env } } };
    } else {
      const url = normalizeRemoteUrl(s.remoteUrl);
      const token = await this.secrets.get(TOKEN_SECRET);
      const workspace = workspaceKey((vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.toString()));
      this.log.info(`connecting to ${url}${token ? ' with a token' : ' without a token'}` +
        (workspace ? `, workspace key ${workspace}` : ''));
      let transports: WsTransports;
      try {
        transports = await connectWebSocket(url, token, undefined, workspace);
      } catch (e) {
        if (gen === this.generation) this.died((e as Error).message);
        return;
      }
      if (gen !== this.generation) return transports.writer.end();
      serverOptions = () => Promise.resolve(transports);
    }
    const options: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.log,
      initializationOptions: { maxTokens: s.maxTokens, client: 'latent-vscode' },
      middleware: { provideInlineCompletionItems: () => null },
      errorHandler: {
        error: (e) => {
          this.log.warn(`connection error: ${e.message}`);
          return { action: ErrorAction.Continue, handled: true };
        },
        closed: () => {
          if (gen === this.generation) this.died(`latentd closed the connection`);
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const old = this.client;  // a client that died (stop() already cleared a running one)
    if (old) void old.dispose().catch(() => undefined);
    const client = new LanguageClient('latent', 'Latent', serverOptions, options);
    this.client = client;
    client.onNotification(METHOD_STATUS, (p: unknown) => {
      const st = readStatus(p);
      if (st && gen === this.generation) this.applyStatus(st);
    });
    client.onNotification(METHOD_PARTIAL, (p: unknown) => {
      const token = (p as { token?: unknown })?.token;
      const c = readChunk(p);
      if (typeof token === 'string' && c) this.partials.get(token)?.(c);
    });
    client.onNotification(METHOD_AGENT_UPDATE, (p: unknown) => {
      if (gen === this.generation) this.agentEmitter.fire(p);
    });
    client.onRequest(METHOD_AGENT_RUN_COMMAND, (p: unknown) =>
      this.commandHandler ? this.commandHandler(p) : new ResponseError(-32601, 'no agent panel to ask the user'));
    try {
      await client.start();
    } catch (e) {
      if (gen === this.generation) this.died(`latentd did not start: ${(e as Error).message}`);
      return;
    }
    if (gen !== this.generation) return;
    this.log.info('latentd is ready');
    if (this.state_.kind === 'loading') this.setState({ kind: 'ready' });
  }

  private applyStatus(st: DaemonStatus): void {
    if (st.state === 'loading') {
      this.setState({ kind: 'loading', progress: st.progress, message: st.message, phase: st.phase,
        bytesDone: st.bytesDone, bytesTotal: st.bytesTotal });
    }
    else if (st.state === 'ready') this.setState({ kind: 'ready' });
    else this.setState({ kind: 'error', message: st.message ?? 'latentd reported an error' });
  }

  private died(why: string): void {
    const uptime = Date.now() - this.startedAt;
    const s = this.settings();
    this.log.error(`${why} (after ${uptime} ms)`);
    if (!s.enable) return this.setState({ kind: 'stopped' });
    const delay = this.backoff.next(uptime);
    if (delay === undefined) {
      this.setState({ kind: 'error', message: `${why}; gave up after ${this.backoff.attempts} quick restarts` });
      return;
    }
    this.setState({ kind: 'error', message: `${why}; restarting in ${(delay / 1000).toFixed(1)} s` });
    const gen = this.generation;
    this.restartTimer = setTimeout(() => { if (gen === this.generation) void this.start(); }, delay);
  }

  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    this.generation++;
    const c = this.client;
    this.client = undefined;
    this.setState({ kind: 'stopped' });
    if (c && c.state !== State.Stopped) {
      try { await c.stop(2000); } catch (e) { this.log.warn(`stopping latentd: ${(e as Error).message}`); }
    }
  }

  async restart(): Promise<void> {
    this.backoff.reset();
    await this.stop();
    await this.start();
  }

  // One inline completion; `onChunk` sees streamed text. Resolves with the final response (may be empty
  // when everything came as partial results), or undefined when not connected or cancelled.
  async complete(params: InlineCompletionParams, onChunk: (c: Chunk) => void,
    token: vscode.CancellationToken): Promise<unknown> {
    const client = this.client;
    if (!client || this.state_.kind !== 'ready' || !client.isRunning()) return undefined;
    const partialResultToken = `latent-${++this.seq}`;
    this.partials.set(partialResultToken, onChunk);
    const sub = client.onProgress(PARTIAL, partialResultToken, (v) => {
      const c = readChunk(v);
      if (c) onChunk(c);
    });
    try {
      return await client.sendRequest(METHOD_INLINE_COMPLETION, { ...params, partialResultToken }, token);
    } catch (e) {
      if (token.isCancellationRequested) return undefined;
      throw e;
    } finally {
      sub.dispose();
      this.partials.delete(partialResultToken);
    }
  }

  // The daemon's audit of the context it built for a completion.
  async explain(params: object): Promise<unknown> {
    const client = this.client;
    if (!client || !client.isRunning()) throw new Error('latentd is not running');
    return client.sendRequest(METHOD_EXPLAIN, params);
  }

  // latent/agent/* requests (agent_panel.ts).
  async agentRequest(method: string, params: object): Promise<unknown> {
    const client = this.client;
    if (!client || !client.isRunning()) throw new Error('latentd is not running');
    return client.sendRequest(method, params);
  }

  // Who answers latent/agent/runCommand (the agent panel asks the user, then runs it in a terminal).
  setCommandHandler(handler: (p: unknown) => Promise<unknown>): void { this.commandHandler = handler; }

  dispose(): void {
    void this.stop();
    this.stateEmitter.dispose();
    this.agentEmitter.dispose();
  }
}
