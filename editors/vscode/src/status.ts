// The status bar item: loading (with progress), ready (with the last latency), error, disabled; a click
// toggles completions.
import * as vscode from 'vscode';
import type { ClientState } from './client';
import { statusView } from './status_text';

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('latent.status', vscode.StatusBarAlignment.Right, 100);
  private state: ClientState = { kind: 'stopped' };
  private enabled = true;
  private latencyMs: number | undefined;

  constructor() {
    this.item.name = 'Latent';
    this.item.command = 'latent.toggle';
    this.render();
    this.item.show();
  }

  setState(state: ClientState): void { this.state = state; this.render(); }
  setEnabled(enabled: boolean): void { this.enabled = enabled; this.render(); }
  setLatency(ms: number): void { this.latencyMs = ms; this.render(); }

  private render(): void {
    const st = this.state;
    const v = statusView({
      kind: st.kind, enabled: this.enabled, latencyMs: this.latencyMs,
      progress: st.kind === 'loading' ? st.progress : undefined,
      phase: st.kind === 'loading' ? st.phase : undefined,
      bytesDone: st.kind === 'loading' ? st.bytesDone : undefined,
      bytesTotal: st.kind === 'loading' ? st.bytesTotal : undefined,
      message: st.kind === 'loading' || st.kind === 'error' ? st.message : undefined,
    });
    this.item.text = v.text;
    this.item.tooltip = v.tooltip;
    this.item.backgroundColor = v.error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void { this.item.dispose(); }
}
