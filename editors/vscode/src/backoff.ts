// Restart backoff for the local daemon: exponential with jitter, capped; a run that stayed up long enough
// resets it, and too many quick deaths in a row give up (so a broken install does not respawn forever).
// Pure: time and randomness come in as arguments.

export interface BackoffOptions {
  initialMs?: number;   // first delay (default 500)
  maxMs?: number;       // cap (default 30 s)
  factor?: number;      // growth per failure (default 2)
  jitter?: number;      // +- fraction (default 0.2)
  stableMs?: number;    // a run this long resets the backoff (default 60 s)
  maxAttempts?: number; // give up after this many quick deaths in a row (default 8)
}

export class Backoff {
  private failures = 0;
  private readonly o: Required<BackoffOptions>;

  constructor(opts: BackoffOptions = {}) {
    this.o = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.2, stableMs: 60_000, maxAttempts: 8, ...opts };
  }

  get attempts(): number { return this.failures; }

  // The server died after running `uptimeMs`; returns the delay before the next start, or undefined to give up.
  // `random` in [0, 1) (Math.random in production).
  next(uptimeMs: number, random: number = Math.random()): number | undefined {
    if (uptimeMs >= this.o.stableMs) this.failures = 0;
    if (this.failures >= this.o.maxAttempts) return undefined;
    const base = Math.min(this.o.maxMs, this.o.initialMs * this.o.factor ** this.failures);
    this.failures++;
    const j = 1 + this.o.jitter * (2 * random - 1);
    return Math.round(Math.min(this.o.maxMs, base * j));
  }

  reset(): void { this.failures = 0; }
}
