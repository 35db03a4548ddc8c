// Entry point: reads settings, wires the daemon client, the inline provider, the status bar and commands.
import * as vscode from 'vscode';
import { AgentPanel } from './agent_panel';
import { DaemonClient, DOCUMENT_SELECTOR, TOKEN_SECRET } from './client';
import { InlineProvider } from './completion';
import { renderExplain } from './explain';
import { DEFAULTS, parseSettings, Settings } from './settings';
import { StatusBar } from './status';

function readSettings(log: vscode.LogOutputChannel): Settings {
  const cfg = vscode.workspace.getConfiguration('latent');
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(DEFAULTS)) raw[key] = cfg.get(key);
  const { settings, problems } = parseSettings(raw);
  for (const p of problems) log.warn(`settings: ${p}`);
  if (problems.length) void vscode.window.showWarningMessage(`Latent: ${problems[0]}`);
  return settings;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel('Latent', { log: true });
  let settings = readSettings(log);
  const current = () => settings;

  const client = new DaemonClient(log, context.secrets, current);
  const provider = new InlineProvider(client, current, log);
  const status = new StatusBar();
  let lastErrorShown = 0;
  status.setEnabled(settings.enable);
  context.subscriptions.push(log, client, provider, status,
    client.onState((s) => status.setState(s)),
    client.onState((s) => {
      // Say it once when the daemon turns unusable (not on every backoff step).
      if (s.kind !== 'error' || Date.now() - lastErrorShown < 60_000) return;
      lastErrorShown = Date.now();
      const actions = settings.mode === 'remote' ? ['Set Token', 'Show Logs', 'Settings'] : ['Show Logs', 'Settings'];
      void vscode.window.showWarningMessage(`Latent: ${s.message}`, ...actions).then((pick) => {
        if (pick === 'Set Token') void vscode.commands.executeCommand('latent.setToken');
        if (pick === 'Show Logs') log.show();
        if (pick === 'Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'latent.');
      });
    }),
    provider.onLatency((ms) => status.setLatency(ms)),
    vscode.languages.registerInlineCompletionItemProvider(DOCUMENT_SELECTOR, provider));

  const connectionKey = (s: Settings) => JSON.stringify([s.mode, s.serverPath, s.serverArgs, s.modelPath, s.remoteUrl, s.maxTokens]);
  context.subscriptions.push(vscode.workspace.onDidChangeConfiguration(async (e) => {
    if (!e.affectsConfiguration('latent')) return;
    const before = settings;
    settings = readSettings(log);
    provider.settingsChanged();
    status.setEnabled(settings.enable);
    if (!settings.enable) await client.stop();
    else if (!before.enable || connectionKey(before) !== connectionKey(settings)) await client.restart();
  }));

  const command = (id: string, fn: () => unknown) =>
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  command('latent.toggle', () =>
    vscode.workspace.getConfiguration('latent').update('enable', !settings.enable, vscode.ConfigurationTarget.Global));
  command('latent.restart', () => client.restart());
  command('latent.showLogs', () => log.show());
  command('latent.acceptWord', () => vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextWord'));
  command('latent.acceptLine', () => vscode.commands.executeCommand('editor.action.inlineSuggest.acceptNextLine'));
  command('latent.setToken', async () => {
    const token = await vscode.window.showInputBox({
      prompt: 'Bearer token for the remote latentd (kept in VS Code\'s SecretStorage)', password: true,
      ignoreFocusOut: true,
    });
    if (token === undefined) return;
    if (token) await context.secrets.store(TOKEN_SECRET, token); else await context.secrets.delete(TOKEN_SECRET);
    if (settings.mode === 'remote') await client.restart();
  });
  command('latent.explainContext', async () => {
    const last = provider.last;
    if (!last) return vscode.window.showInformationMessage('Latent: no completion has been shown yet.');
    try {
      const audit = await client.explain({
        textDocument: { uri: last.uri }, position: { line: last.position.line, character: last.position.character },
      });
      const body = renderExplain(audit);
      const header = `# Context of the last completion\n\n${last.uri}:${last.position.line + 1}:` +
        `${last.position.character + 1}, ${last.latencyMs} ms, at ${last.at.toISOString()}\n\n` +
        '```\n' + last.text + '\n```\n\n';
      const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: header + body });
      await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
    } catch (e) {
      void vscode.window.showErrorMessage(`Latent: explain failed: ${(e as Error).message}`);
    }
  });

  const agent = new AgentPanel(client, log);
  context.subscriptions.push(agent);
  command('latent.agent.open', () => agent.show());
  command('latent.agent.approve', () => agent.respond(true));
  command('latent.agent.reject', () => agent.respond(false));
  command('latent.agent.cancel', () => agent.cancel());
  command('latent.agent.revert', () => agent.revert());

  if (settings.enable) void client.start();
}

export function deactivate(): void {}
