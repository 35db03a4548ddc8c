// The inline completion provider: adaptive debounce, cancellation of the running request on every
// keystroke, an LRU cache keyed on prefix and suffix (which also serves completions the user types into),
// and streaming: when the first line arrives before generation ends it is shown at once, and the full
// completion is cached and shown by re-triggering when it lands (if the cursor has not moved).
import * as vscode from 'vscode';
import type { DaemonClient } from './client';
import { AdaptiveDebounce, sleep } from './debounce';
import { CompletionCache, KEY_PREFIX_CHARS, KEY_SUFFIX_CHARS } from './lru';
import { resultText } from './protocol';
import { languageEnabled, Settings } from './settings';
import { streamCompletion, trimSuffixOverlap } from './stream';

export interface LastCompletion {
  uri: string;
  position: vscode.Position;
  text: string;
  latencyMs: number;
  at: Date;
}

export class InlineProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private inflight: vscode.CancellationTokenSource | undefined;
  private readonly cache = new CompletionCache(128);
  private debounce: AdaptiveDebounce;
  private readonly latencyEmitter = new vscode.EventEmitter<number>();
  readonly onLatency = this.latencyEmitter.event;
  private readonly subs: vscode.Disposable[] = [];
  last: LastCompletion | undefined;

  constructor(
    private readonly client: DaemonClient,
    private readonly settings: () => Settings,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.debounce = new AdaptiveDebounce({ baseMs: settings().debounceMs });
    this.subs.push(vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.contentChanges.length === 0 || e.document !== vscode.window.activeTextEditor?.document) return;
      this.debounce.keystroke(Date.now());
      this.cancelInflight();  // every keystroke cancels the running request
    }));
  }

  settingsChanged(): void {
    this.debounce = new AdaptiveDebounce({ baseMs: this.settings().debounceMs });
    this.cache.clear();
  }

  private cancelInflight(): void {
    this.inflight?.cancel();
    this.inflight?.dispose();
    this.inflight = undefined;
  }

  async provideInlineCompletionItems(doc: vscode.TextDocument, pos: vscode.Position,
    ctx: vscode.InlineCompletionContext, token: vscode.CancellationToken): Promise<vscode.InlineCompletionItem[] | undefined> {
    const s = this.settings();
    if (!s.enable || !languageEnabled(s.languages, doc.languageId)) return undefined;
    const offset = doc.offsetAt(pos);
    const prefix = doc.getText(new vscode.Range(doc.positionAt(Math.max(0, offset - KEY_PREFIX_CHARS)), pos));
    const suffix = doc.getText(new vscode.Range(pos, doc.positionAt(offset + KEY_SUFFIX_CHARS)));
    const item = (text: string) => [new vscode.InlineCompletionItem(text, new vscode.Range(pos, pos))];

    const cached = this.cache.get(doc.languageId, prefix, suffix);
    if (cached !== undefined) {
      const text = trimSuffixOverlap(cached, suffix);
      if (!text.trim()) return undefined;
      this.last = { uri: doc.uri.toString(), position: pos, text, latencyMs: 0, at: new Date() };
      return item(text);
    }

    this.cancelInflight();
    const cts = new vscode.CancellationTokenSource();
    this.inflight = cts;
    // Until we answer, VS Code's token cancels our request too; after an early answer the request goes on
    // until the next keystroke.
    const link = token.onCancellationRequested(() => cts.cancel());
    try {
      if (ctx.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
        if (!(await sleep(this.debounce.delayMs(), cts.token))) return undefined;
      }
      const started = Date.now();
      const version = doc.version;
      const stream = streamCompletion(async (onChunk) => resultText(await this.client.complete({
        textDocument: { uri: doc.uri.toString() },
        position: { line: pos.line, character: pos.character },
        context: { triggerKind: ctx.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 1 : 2 },
        latent: { maxTokens: s.maxTokens },
      }, onChunk, cts.token)), (e) => this.log.warn(`inline completion failed: ${e.message}`));
      const first = await stream.first;
      if (cts.token.isCancellationRequested) return undefined;
      const latencyMs = Date.now() - started;
      this.debounce.latency(latencyMs);
      this.latencyEmitter.fire(latencyMs);

      let text = first.text;
      if (first.done) {
        this.cache.put(doc.languageId, prefix, suffix, text);
      } else {
        void stream.full.then((all) => {
          if (cts.token.isCancellationRequested || !all) return;
          this.cache.put(doc.languageId, prefix, suffix, all);
          // The whole text, as the re-triggered suggestion will show it (the end-to-end test waits for it).
          this.log.info(`completion finished: ${all.length} chars at ${doc.uri.fsPath}:${pos.line + 1}: ` +
            `${JSON.stringify(trimSuffixOverlap(all, suffix))}`);
          const ed = vscode.window.activeTextEditor;
          if (ed?.document === doc && doc.version === version && ed.selection.active.isEqual(pos)) {
            void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
          }
        });
      }
      text = trimSuffixOverlap(text, suffix);
      if (!text.trim()) return undefined;
      this.last = { uri: doc.uri.toString(), position: pos, text, latencyMs, at: new Date() };
      this.log.info(`completion: ${text.length} chars in ${latencyMs} ms at ${doc.uri.fsPath}:${pos.line + 1}` +
        `${first.done ? '' : ' (first line; streaming)'}: ${JSON.stringify(text.slice(0, 120))}`);
      return item(text);
    } finally {
      link.dispose();
    }
  }

  dispose(): void {
    this.cancelInflight();
    for (const d of this.subs) d.dispose();
    this.latencyEmitter.dispose();
  }
}
