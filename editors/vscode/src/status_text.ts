// What the status bar item says for a daemon state; pure so it is unit-tested.
export type StatusKind = 'stopped' | 'loading' | 'ready' | 'error';

export interface StatusInput {
  kind: StatusKind;
  enabled: boolean;
  progress?: number;   // 0..1 while loading (the whole load)
  phase?: string;      // while loading: 'loading' | 'uploading' | 'warming' (latentd's latent/status)
  bytesDone?: number;  // of this phase
  bytesTotal?: number;
  message?: string;
  latencyMs?: number;  // last completion's time to first text
}

export interface StatusView { text: string; tooltip: string; error: boolean; }

// 1536 -> "1.5 KiB", 3.2e9 -> "3.0 GiB".
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) v /= 1024, u++;
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function statusView(s: StatusInput): StatusView {
  const click = s.enabled ? 'Click to disable completions.' : 'Click to enable completions.';
  if (!s.enabled) return { text: '$(circle-slash) Latent', tooltip: `Latent: disabled. ${click}`, error: false };
  switch (s.kind) {
    case 'loading': {
      const pct = s.progress === undefined ? '' : ` ${Math.round(s.progress * 100)}%`;
      const bytes = s.bytesTotal ? `, ${formatBytes(s.bytesDone ?? 0)} of ${formatBytes(s.bytesTotal)}` : '';
      return {
        text: `$(loading~spin) Latent${pct}`,
        tooltip: `Latent: ${s.phase ?? 'loading'}${bytes}${s.message ? ` (${s.message})` : ''}. ${click}`, error: false,
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
