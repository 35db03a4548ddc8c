// Assembles a completion from streamed pieces, so the first line can be shown before generation ends.
// Pieces are deltas (appended) or whole-text snapshots (replace, when they extend what we have; a snapshot
// that does not start with the text so far is still taken: the daemon knows best).
import type { Chunk } from './protocol';

export class StreamAssembler {
  private text_ = '';
  private done_ = false;

  get text(): string { return this.text_; }
  get done(): boolean { return this.done_; }

  push(chunk: Chunk): void {
    if (this.done_) return;
    this.text_ = chunk.kind === 'delta' ? this.text_ + chunk.text : chunk.text;
  }

  // The final response; it wins over the streamed text when present (it is authoritative).
  finish(finalText: string | undefined): string {
    if (!this.done_ && finalText !== undefined) this.text_ = finalText;
    this.done_ = true;
    return this.text_;
  }

  // True once a complete first line exists (a newline after some non-blank text) or the stream ended.
  get firstLineReady(): boolean {
    if (this.done_) return true;
    const nl = this.text_.indexOf('\n');
    return nl >= 0 && this.text_.slice(0, nl).trim().length > 0;
  }

  // Text through the end of the first non-blank line (without its newline), for early display.
  get firstLine(): string {
    const nl = this.text_.indexOf('\n');
    return nl < 0 ? this.text_ : this.text_.slice(0, nl);
  }
}

// Drops the end of `text` that repeats what already follows the cursor on the same line, e.g. a closing
// `)` the editor auto-inserted, so accepting does not double it.
export function trimSuffixOverlap(text: string, suffix: string): string {
  const nl = suffix.indexOf('\n');
  const rest = (nl < 0 ? suffix : suffix.slice(0, nl)).trimEnd();
  if (!rest || text.includes('\n')) {
    // multi-line completion: only trim when its first line ends with the rest of the current line
    const first = text.split('\n', 1)[0];
    if (rest && first.endsWith(rest)) return text.slice(0, first.length - rest.length);
    return text;
  }
  return text.endsWith(rest) ? text.slice(0, text.length - rest.length) : text;
}

export interface StreamedCompletion {
  // Resolves when there is something to show: the complete first line while generation goes on, or the whole
  // completion when it ended first (`done`).
  first: Promise<{ text: string; done: boolean }>;
  // Resolves with the whole completion (the final response, or the streamed text when the response is empty).
  full: Promise<string>;
}

// Runs one request through a StreamAssembler. `request` gets the chunk callback and resolves with the final
// response's text (undefined when empty); a failed request ends the stream with what arrived so far
// (reported through `onError`).
export function streamCompletion(
  request: (onChunk: (c: Chunk) => void) => Promise<string | undefined>,
  onError: (e: Error) => void = () => undefined,
): StreamedCompletion {
  const asm = new StreamAssembler();
  let early!: (v: { text: string; done: boolean }) => void;
  const first = new Promise<{ text: string; done: boolean }>((r) => { early = r; });
  const full = request((c) => {
    asm.push(c);
    if (!asm.done && asm.firstLineReady) early({ text: asm.firstLine, done: false });
  }).then((t) => asm.finish(t), (e: Error) => { onError(e); return asm.finish(undefined); });
  void full.then((text) => early({ text, done: true }));
  return { first, full };
}
