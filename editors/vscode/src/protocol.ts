// The wire shapes the extension exchanges with latentd, and tolerant readers for them. Requests follow
// LSP 3.18 textDocument/inlineCompletion; streamed text arrives while the request runs, either as
// `$/progress` on the request's partialResultToken or as a `latent/partialCompletion` notification:
//   value/params: { token?, delta: "text added" } | { token?, text: "whole text so far" }
//                 | InlineCompletionList | InlineCompletionItem[]  (insertText = whole text so far)
// The final response is an InlineCompletionList, an InlineCompletionItem[] or null.

export const METHOD_INLINE_COMPLETION = 'textDocument/inlineCompletion';
export const METHOD_PARTIAL = 'latent/partialCompletion';
export const METHOD_EXPLAIN = 'latent/explainContext';
export const METHOD_STATUS = 'latent/status';
export const METHOD_AGENT_UPDATE = 'latent/agent/update';
export const METHOD_AGENT_RUN_COMMAND = 'latent/agent/runCommand';

export interface Position { line: number; character: number; }

export interface InlineCompletionParams {
  textDocument: { uri: string };
  position: Position;
  context: { triggerKind: 1 | 2 };  // 1 = invoked, 2 = automatic
  partialResultToken?: string;
  workDoneToken?: string;
  // Extension field: generation limit for this request (latentd may ignore it).
  latent?: { maxTokens: number };
}

export type Chunk = { kind: 'delta'; text: string } | { kind: 'full'; text: string };

function itemText(item: unknown): string | undefined {
  if (!item || typeof item !== 'object') return undefined;
  const t = (item as { insertText?: unknown }).insertText;
  if (typeof t === 'string') return t;
  // StringValue (snippet) form: { kind: 'snippet', value }
  if (t && typeof t === 'object' && typeof (t as { value?: unknown }).value === 'string') {
    return (t as { value: string }).value;
  }
  return undefined;
}

// Text of the first item of a final inlineCompletion result, or undefined for null/empty/unknown shapes.
export function resultText(result: unknown): string | undefined {
  if (Array.isArray(result)) return itemText(result[0]);
  if (result && typeof result === 'object' && Array.isArray((result as { items?: unknown }).items)) {
    return itemText((result as { items: unknown[] }).items[0]);
  }
  return undefined;
}

// One streamed piece, from a $/progress value or a latent/partialCompletion params object.
export function readChunk(value: unknown): Chunk | undefined {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as { delta?: unknown; text?: unknown };
    if (typeof v.delta === 'string') return { kind: 'delta', text: v.delta };
    if (typeof v.text === 'string') return { kind: 'full', text: v.text };
  }
  const t = resultText(value);
  return t === undefined ? undefined : { kind: 'full', text: t };
}

// The status notification's params: { state: 'loading'|'ready'|'error', progress?: 0..1 (the whole load),
// message?, phase?: 'loading'|'uploading'|'warming'|'ready'|'failed', percent?: 0..100 (this phase),
// bytesDone?, bytesTotal? (this phase's bytes: weights copied to a GPU, or read into memory) }.
export interface DaemonStatus {
  state: 'loading' | 'ready' | 'error'; progress?: number; message?: string;
  phase?: string; percent?: number; bytesDone?: number; bytesTotal?: number;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export function readStatus(params: unknown): DaemonStatus | undefined {
  if (!params || typeof params !== 'object') return undefined;
  const p = params as { state?: unknown; progress?: unknown; message?: unknown; phase?: unknown; percent?: unknown;
    bytesDone?: unknown; bytesTotal?: unknown };
  if (p.state !== 'loading' && p.state !== 'ready' && p.state !== 'error') return undefined;
  const out: DaemonStatus = { state: p.state };
  const progress = num(p.progress);
  if (progress !== undefined) out.progress = Math.min(1, Math.max(0, progress > 1 ? progress / 100 : progress));
  if (typeof p.message === 'string') out.message = p.message;
  if (typeof p.phase === 'string' && p.phase) out.phase = p.phase;
  const percent = num(p.percent);
  if (percent !== undefined) out.percent = Math.min(100, Math.max(0, percent));
  const done = num(p.bytesDone), total = num(p.bytesTotal);
  if (total !== undefined && total > 0) {
    out.bytesTotal = total;
    out.bytesDone = Math.min(total, Math.max(0, done ?? 0));
  }
  return out;
}
