// What the VS Code extension does between a keystroke and a request, in plain JS for the replay: the adaptive
// debounce (editors/vscode/src/debounce.ts) and the completion LRU with its typed-ahead look-up
// (editors/vscode/src/lru.ts). Kept line for line with those files; the extension's unit tests pin them.

const EMA_WEIGHT = 0.3;
const TYPING_GAP_MS = 1500;

export class AdaptiveDebounce {
  constructor({ baseMs }) {
    this.baseMs = Math.max(0, baseMs);
    this.minMs = this.baseMs * 0.25;
    this.maxMs = Math.max(50, this.baseMs * 4);
    this.lastKeyAt = undefined;
    this.keyIntervalEma = undefined;
    this.latencyEma = undefined;
  }

  keystroke(now) {
    if (this.lastKeyAt !== undefined) {
      const gap = now - this.lastKeyAt;
      if (gap >= 0 && gap < TYPING_GAP_MS) {
        this.keyIntervalEma = this.keyIntervalEma === undefined
          ? gap : this.keyIntervalEma + EMA_WEIGHT * (gap - this.keyIntervalEma);
      }
    }
    this.lastKeyAt = now;
  }

  latency(ms) {
    if (!(ms >= 0)) return;
    this.latencyEma = this.latencyEma === undefined ? ms : this.latencyEma + EMA_WEIGHT * (ms - this.latencyEma);
  }

  delayMs() {
    let d = this.baseMs;
    if (this.latencyEma !== undefined) {
      const ratio = this.baseMs > 0 ? this.latencyEma / (4 * this.baseMs) : 1;
      d *= 0.5 + 0.5 * Math.min(2, ratio);
    }
    if (this.keyIntervalEma !== undefined && this.keyIntervalEma < this.baseMs * 1.5) {
      d = Math.max(d, this.keyIntervalEma * 1.3);
    }
    return Math.round(Math.min(this.maxMs, Math.max(this.minMs, d)));
  }
}

export const KEY_PREFIX_CHARS = 512;
export const KEY_SUFFIX_CHARS = 128;

export class CompletionCache {
  constructor(capacity = 128) {
    this.capacity = capacity;
    this.map = new Map();
  }

  static key(languageId, prefix, suffix) {
    return `${languageId}\u0000${prefix.slice(-KEY_PREFIX_CHARS)}\u0000${suffix.slice(0, KEY_SUFFIX_CHARS)}`;
  }

  touch(key) {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, v);
    return v;
  }

  put(languageId, prefix, suffix, text) {
    if (!text) return;
    const p = prefix.slice(-KEY_PREFIX_CHARS);
    const s = suffix.slice(0, KEY_SUFFIX_CHARS);
    const key = CompletionCache.key(languageId, p, s);
    this.map.delete(key);
    this.map.set(key, { prefix: p, suffix: s, text });
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value);
  }

  get(languageId, prefix, suffix) {
    const exact = this.touch(CompletionCache.key(languageId, prefix, suffix));
    if (exact) return exact.text;
    const p = prefix.slice(-KEY_PREFIX_CHARS);
    const s = suffix.slice(0, KEY_SUFFIX_CHARS);
    for (const [key, c] of [...this.map.entries()].reverse()) {
      if (!key.startsWith(`${languageId}\u0000`) || c.suffix !== s) continue;
      const last = p.charCodeAt(p.length - 1);
      for (let t = 1; t < c.text.length; t++) {
        if (c.text.charCodeAt(t - 1) !== last || !p.endsWith(c.text.slice(0, t))) continue;
        const before = p.slice(0, p.length - t);
        const same = p.length < KEY_PREFIX_CHARS ? c.prefix === before : c.prefix.endsWith(before);
        if (same) {
          this.touch(key);
          return c.text.slice(t);
        }
      }
    }
    return undefined;
  }
}
