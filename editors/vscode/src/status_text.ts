// What the status bar item says for a daemon state; pure so it is unit-tested.
export type StatusKind = 'stopped' | 'loading' | 'ready' | 'error';

export interface StatusInput {
  kind: StatusKind;
  enabled: boolean;
  progress?: number;   // 0..1 while loading
  message?: string;
  latencyMs?: number;  // last completion's time to first text
}

export interface StatusView { text: string; tooltip: string; error: boolean; }

export function statusView(s: StatusInput): StatusView {
  const click = s.enabled ? 'Click to disable completions.' : 'Click to enable completions.';
  if (!s.enabled) return { text: '$(circle-slash) Latent', tooltip: `Latent: disabled. ${click}`, error: false };
  switch (s.kind) {
    case 'loading': {
      const pct = s.progress === undefined ? '' : ` ${Math.round(s.progress * 100)}%`;
      return {
        text: `$(loading~spin) Latent${pct}`,
        tooltip: `Latent: loading${s.message ? ` (${s.message})` : ''}. ${click}`, error: false,
      };
    }
    case 'ready': {
      const lat = s.latencyMs === undefined ? '' : ` ${Math.round(s.latencyMs)} ms`;
      return {
        text: `$(sparkle) Latent${lat}`,
        tooltip: `Latent: ready${lat ? `; last completion took${lat}` : ''}. ${click}`, error: false,
      };
    }
    case 'error':
      return { text: '$(error) Latent', tooltip: `Latent: ${s.message ?? 'error'}. ${click}`, error: true };
    default:
      return { text: '$(debug-stop) Latent', tooltip: `Latent: server stopped. ${click}`, error: false };
  }
}
