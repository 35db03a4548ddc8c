// The agent panel: a webview with a task box, the task's steps as they stream, and approve / reject / cancel /
// revert (buttons, keyboard shortcuts inside the panel, and commands for keybindings). Each proposed edit opens
// in VS Code's diff editor (the file against the file with the edit applied). Approved edits arrive from latentd
// as workspace/applyEdit, which the language client applies (undo works; unsaved buffers are respected); a file
// that had no unsaved changes is saved after the edit. latent/agent/runCommand asks the user, then runs the
// command in a VS Code terminal with a timeout and an output cap (command_runner.ts).
import * as vscode from 'vscode';
import { ResponseError } from 'vscode-languageclient/node';
import { actions, applyUpdate, EditView, newTask, proposedText, TaskView } from './agent_state';
import { DaemonClient } from './client';
import { readCommandRequest, runCommand } from './command_runner';

const SCHEME = 'latent-proposed';

export class AgentPanel implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private panel: vscode.WebviewPanel | undefined;
  private task: TaskView | undefined;
  private readonly proposed = new Map<string, string>();  // latent-proposed URI -> text
  private readonly cleanBefore = new Set<string>();        // URIs without unsaved changes when an edit was proposed
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly subs: vscode.Disposable[] = [];

  constructor(private readonly client: DaemonClient, private readonly log: vscode.LogOutputChannel) {
    this.subs.push(vscode.workspace.registerTextDocumentContentProvider(SCHEME, this),
      client.onAgentUpdate((u) => void this.onUpdate(u)));
    client.setCommandHandler((p) => this.runCommand(p));
  }

  provideTextDocumentContent(uri: vscode.Uri): string { return this.proposed.get(uri.toString()) ?? ''; }

  show(): void {
    if (this.panel) return this.panel.reveal();
    this.panel = vscode.window.createWebviewPanel('latent.agent', 'Latent Agent', vscode.ViewColumn.Beside,
      { enableScripts: true, retainContextWhenHidden: true });
    this.panel.webview.html = html(this.panel.webview.cspSource);
    this.panel.onDidDispose(() => { this.panel = undefined; }, null, this.subs);
    this.panel.webview.onDidReceiveMessage((m) => void this.onMessage(m), null, this.subs);
    this.render();
  }

  async start(task: string): Promise<void> {
    if (!task.trim()) return;
    const approval = vscode.workspace.getConfiguration('latent.agent').get<string>('approval', 'edit');
    const editor = vscode.window.activeTextEditor;
    const documents = editor && editor.document.uri.scheme === 'file' ? [editor.document.uri.toString()] : [];
    const selection = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : undefined;
    try {
      const r = await this.client.agentRequest('latent/agent/start', { task, documents, selection, approval }) as { taskId: string };
      this.task = newTask(r.taskId, task);
      this.render();
    } catch (e) {
      void vscode.window.showErrorMessage(`Latent: the agent did not start: ${(e as Error).message}`);
    }
  }

  async respond(approve: boolean, message = ''): Promise<void> {
    if (!this.task) return;
    await this.send('latent/agent/respond', approve ? { approve: true, message } : { reject: true, message });
  }
  async cancel(): Promise<void> { await this.send('latent/agent/cancel', {}); }
  async revert(): Promise<void> { await this.send('latent/agent/revert', {}); }

  private async send(method: string, params: object): Promise<void> {
    if (!this.task) return;
    try {
      await this.client.agentRequest(method, { taskId: this.task.taskId, ...params });
    } catch (e) {
      void vscode.window.showErrorMessage(`Latent: ${(e as Error).message}`);
    }
  }

  private async onMessage(m: { type?: string; task?: string; message?: string; editId?: number }): Promise<void> {
    if (m.type === 'start' && typeof m.task === 'string') await this.start(m.task);
    else if (m.type === 'approve') await this.respond(true, m.message ?? '');
    else if (m.type === 'reject') await this.respond(false, m.message ?? '');
    else if (m.type === 'cancel') await this.cancel();
    else if (m.type === 'revert') await this.revert();
    else if (m.type === 'diff' && typeof m.editId === 'number') {
      const e = this.task?.edits.get(m.editId);
      if (e) await this.showDiff(e);
    }
  }

  private async onUpdate(u: unknown): Promise<void> {
    if (!this.task) return;
    applyUpdate(this.task, u);
    this.render();
    const o = u as { kind?: string; editId?: number; state?: string };
    if (o?.kind !== 'edit' || typeof o.editId !== 'number') return;
    const e = this.task.edits.get(o.editId);
    if (!e) return;
    if (e.state === 'proposed') {
      const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === e.uri);
      if (!doc?.isDirty) this.cleanBefore.add(e.uri);
      await this.showDiff(e);
    } else if (e.state === 'applied' && this.cleanBefore.delete(e.uri)) {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(e.uri));
      if (doc.isDirty) await doc.save();
    }
  }

  private async showDiff(e: EditView): Promise<void> {
    const file = vscode.Uri.parse(e.uri);
    let current = '';
    if (!e.create) current = (await vscode.workspace.openTextDocument(file)).getText();
    const right = vscode.Uri.from({ scheme: SCHEME, path: file.path, query: `edit=${e.editId}` });
    this.proposed.set(right.toString(), proposedText(current, e));
    this.changed.fire(right);
    const left = e.create ? vscode.Uri.from({ scheme: SCHEME, path: file.path, query: 'empty' }) : file;
    // Beside the panel, so that its approve and reject stay in view.
    const column = this.panel?.viewColumn === vscode.ViewColumn.One ? vscode.ViewColumn.Two : vscode.ViewColumn.One;
    await vscode.commands.executeCommand('vscode.diff', left, right,
      `${e.path}: edit ${e.editId} (proposed)`, { preview: true, preserveFocus: true, viewColumn: column });
  }

  private async runCommand(p: unknown): Promise<unknown> {
    const req = readCommandRequest(p);
    if (typeof req === 'string') return new ResponseError(-32602, `latent/agent/runCommand: ${req}`);
    const pick = await vscode.window.showWarningMessage(`Latent's agent wants to run:\n${req.command}\nin ${req.cwd}`,
      { modal: true }, 'Run');
    if (pick !== 'Run') return new ResponseError(-32800, 'the user rejected the command');
    const write = new vscode.EventEmitter<string>();
    const close = new vscode.EventEmitter<number | void>();
    const ac = new AbortController();
    const terminal = vscode.window.createTerminal({ name: 'Latent agent', pty: {
      onDidWrite: write.event, onDidClose: close.event, open: () => write.fire(`$ ${req.command}\r\n`),
      close: () => ac.abort(),
    } });
    terminal.show(true);
    const r = await runCommand(req, (s) => write.fire(s.replace(/\r?\n/g, '\r\n')), ac.signal);
    write.fire(`\r\n[exit ${r.exitCode ?? (r.timedOut ? 'timeout' : 'killed')}${r.truncated ? ', output truncated' : ''}]\r\n`);
    this.log.info(`agent command "${req.command}": exit ${r.exitCode}, ${r.output.length} bytes`);
    return r;
  }

  private render(): void {
    if (!this.panel) return;
    const t = this.task;
    void this.panel.webview.postMessage({
      type: 'render', actions: actions(t),
      task: t && { task: t.task, state: t.state, message: t.message, steps: t.steps, pendingEdit: t.pendingEdit,
        edits: [...t.edits.values()].map((e) => ({ editId: e.editId, state: e.state, path: e.path })) },
    });
  }

  dispose(): void {
    this.panel?.dispose();
    this.changed.dispose();
    for (const s of this.subs) s.dispose();
  }
}

function html(csp: string): string {
  const nonce = Math.random().toString(36).slice(2) + Date.now().toString(36);
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${csp} 'unsafe-inline'; script-src 'nonce-${nonce}';">
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 8px; }
textarea { width: 100%; min-height: 4em; box-sizing: border-box; }
button { margin: 4px 4px 4px 0; }
ol { padding-left: 1.2em; } li { margin: 4px 0; white-space: pre-wrap; word-break: break-word; }
.state { font-weight: bold; } .bad { color: var(--vscode-errorForeground); }
</style></head><body>
<label for="task">Task (Ctrl+Enter to start)</label>
<textarea id="task" aria-label="Task for the agent" autofocus></textarea>
<div role="toolbar" aria-label="Agent actions">
<button id="start" title="Ctrl+Enter">Start</button>
<button id="approve" title="Alt+A">Approve edit</button>
<button id="reject" title="Alt+R">Reject edit</button>
<button id="cancel" title="Alt+C">Cancel</button>
<button id="revert" title="Alt+V">Revert task</button>
</div>
<div id="status" class="state" role="status" aria-live="polite"></div>
<ol id="steps" aria-label="Steps"></ol>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
const $ = (id) => document.getElementById(id);
const post = (type, extra = {}) => vscode.postMessage({ type, ...extra });
$('start').onclick = () => { post('start', { task: $('task').value }); };
$('approve').onclick = () => post('approve');
$('reject').onclick = () => post('reject');
$('cancel').onclick = () => post('cancel');
$('revert').onclick = () => post('revert');
$('task').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); $('start').click(); } });
document.addEventListener('keydown', (e) => {
  if (!e.altKey) return;
  const id = { a: 'approve', r: 'reject', c: 'cancel', v: 'revert' }[e.key.toLowerCase()];
  if (id && !$(id).disabled) { e.preventDefault(); $(id).click(); }
});
window.addEventListener('message', ({ data }) => {
  if (data.type !== 'render') return;
  for (const k of ['start', 'approve', 'reject', 'cancel', 'revert']) $(k).disabled = !data.actions[k];
  const t = data.task;
  $('status').textContent = t ? t.state + (t.message ? ': ' + t.message : '') : 'No task yet.';
  const ol = $('steps');
  ol.replaceChildren();
  for (const s of (t ? t.steps : [])) {
    const li = document.createElement('li');
    li.textContent = s.title + (s.detail ? ': ' + s.detail : '');
    if (s.ok === false) li.className = 'bad';
    if (s.kind === 'edit') {
      const b = document.createElement('button');
      b.textContent = 'Show diff';
      b.onclick = () => post('diff', { editId: Number(s.id.slice(5)) });
      li.append(' ', b);
    }
    ol.append(li);
  }
});
</script></body></html>`;
}
