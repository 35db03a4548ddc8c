// Adaptive debounce: how long to wait after a keystroke before asking the daemon for a completion.
// Two signals adapt it: while the user types faster than the base delay, wait a little longer than their
// typing interval (ask at pauses, not mid-word); when the daemon answers fast, ask sooner (a cheap request
// wasted is better than a late ghost text), and when it is slow, wait longer (each request costs more).
// Pure: time comes in as arguments, so it is unit-tested without timers.

export interface DebounceOptions {
  baseMs: number;
  minMs?: number;   // default 0.25 * base
  maxMs?: number;   // default 4 * base (at least 50 ms)
}

const EMA_WEIGHT = 0.3;       // weight of the newest sample
const TYPING_GAP_MS = 1500;   // a longer gap between keys starts a new typing burst

export class AdaptiveDebounce {
  private lastKeyAt: number | undefined;
  private keyIntervalEma: number | undefined;
  private latencyEma: number | undefined;
  readonly baseMs: number;
  readonly minMs: number;
  readonly maxMs: number;

  constructor(opts: DebounceOptions) {
    this.baseMs = Math.max(0, opts.baseMs);
    this.minMs = opts.minMs ?? this.baseMs * 0.25;
    this.maxMs = opts.maxMs ?? Math.max(50, this.baseMs * 4);
  }

  // A keystroke (document change) at time `now` (ms).
  keystroke(now: number): void {
    if (this.lastKeyAt !== undefined) {
      const gap = now - this.lastKeyAt;
      if (gap >= 0 && gap < TYPING_GAP_MS) {
        this.keyIntervalEma = this.keyIntervalEma === undefined
          ? gap : this.keyIntervalEma + EMA_WEIGHT * (gap - this.keyIntervalEma);
      }
    }
    this.lastKeyAt = now;
  }

  // The daemon took `ms` for a completion (first visible text).
  latency(ms: number): void {
    if (!(ms >= 0)) return;
    this.latencyEma = this.latencyEma === undefined ? ms : this.latencyEma + EMA_WEIGHT * (ms - this.latencyEma);
  }

  get typingIntervalMs(): number | undefined { return this.keyIntervalEma; }
  get latencyMs(): number | undefined { return this.latencyEma; }

  // The delay to use now.
  delayMs(): number {
    let d = this.baseMs;
    if (this.latencyEma !== undefined) {
      // Scale by latency relative to 4x the base: 0 ms latency → 0.5x, 4x base → 1x, 8x base+ → 1.5x.
      const ratio = this.baseMs > 0 ? this.latencyEma / (4 * this.baseMs) : 1;
      d *= 0.5 + 0.5 * Math.min(2, ratio);
    }
    if (this.keyIntervalEma !== undefined && this.keyIntervalEma < this.baseMs * 1.5) {
      d = Math.max(d, this.keyIntervalEma * 1.3);
    }
    return Math.round(Math.min(this.maxMs, Math.max(this.minMs, d)));
  }
}

export interface CancelLike {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

// Waits `ms`, resolving true, or false as soon as `token` is cancelled.
export function sleep(ms: number, token?: CancelLike): Promise<boolean> {
  return new Promise((resolve) => {
    if (token?.isCancellationRequested) return resolve(false);
    const sub = token?.onCancellationRequested(() => { clearTimeout(timer); sub?.dispose(); resolve(false); });
    const timer = setTimeout(() => { sub?.dispose(); resolve(true); }, ms);
  });
}
