// An LRU cache of finished completions, keyed on the text around the cursor (prefix tail + suffix head), and
// a look-up that also serves a completion the user is typing into ("typed ahead"): if the cached prefix plus
// the first characters of its completion equal the current prefix, the rest of the completion still applies.

export class LruCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`LruCache: expected capacity >= 1, found ${capacity}`);
  }

  get size(): number { return this.map.size; }

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) return undefined;
    this.map.delete(key);  // Map keeps insertion order: re-insert = most recent
    this.map.set(key, v);
    return v;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) {
      const oldest = this.map.keys().next().value as K;
      this.map.delete(oldest);
    }
  }

  clear(): void { this.map.clear(); }

  // Most recent first.
  entries(): Array<[K, V]> { return [...this.map.entries()].reverse(); }
}

// How much context a key keeps: enough to tell apart places in one file, small enough to hash cheaply.
export const KEY_PREFIX_CHARS = 512;
export const KEY_SUFFIX_CHARS = 128;

export interface CachedCompletion {
  prefix: string;  // prefix tail the completion was made for
  suffix: string;  // suffix head
  text: string;    // the completion
}

export class CompletionCache {
  private readonly lru: LruCache<string, CachedCompletion>;

  constructor(capacity = 128) { this.lru = new LruCache(capacity); }

  static key(languageId: string, prefix: string, suffix: string): string {
    return `${languageId}\u0000${prefix.slice(-KEY_PREFIX_CHARS)}\u0000${suffix.slice(0, KEY_SUFFIX_CHARS)}`;
  }

  put(languageId: string, prefix: string, suffix: string, text: string): void {
    if (!text) return;
    const p = prefix.slice(-KEY_PREFIX_CHARS);
    const s = suffix.slice(0, KEY_SUFFIX_CHARS);
    this.lru.set(CompletionCache.key(languageId, p, s), { prefix: p, suffix: s, text });
  }

  // Exact hit, else the remainder of a recent completion that the user has typed the start of.
  get(languageId: string, prefix: string, suffix: string): string | undefined {
    const exact = this.lru.get(CompletionCache.key(languageId, prefix, suffix));
    if (exact) return exact.text;
    const p = prefix.slice(-KEY_PREFIX_CHARS);
    const s = suffix.slice(0, KEY_SUFFIX_CHARS);
    for (const [key, c] of this.lru.entries()) {
      if (!key.startsWith(`${languageId}\u0000`) || c.suffix !== s) continue;
      // Document prefix = (prefix the completion was made for) + (its first t characters, typed since).
      const last = p.charCodeAt(p.length - 1);
      for (let t = 1; t < c.text.length; t++) {
        if (c.text.charCodeAt(t - 1) !== last || !p.endsWith(c.text.slice(0, t))) continue;
        const before = p.slice(0, p.length - t);
        const same = p.length < KEY_PREFIX_CHARS ? c.prefix === before : c.prefix.endsWith(before);
        if (same) {
          this.lru.get(key);
          return c.text.slice(t);
        }
      }
    }
    return undefined;
  }

  clear(): void { this.lru.clear(); }
  get size(): number { return this.lru.size; }
}
