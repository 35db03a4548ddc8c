// The playground: a Monaco editor that talks to latentd over WebSocket /lsp with the same protocol as the VS
// Code extension (initialize, didOpen/didChange, textDocument/inlineCompletion with streamed partial results,
// latent/explainContext), reusing the extension's debounce, cache and stream assembly. Ghost text comes from
// Monaco's inline completions: Tab accepts, Escape dismisses.
import { CancellationTokenSource, MessageConnection, ProgressType } from 'vscode-jsonrpc/browser';
import { AdaptiveDebounce, sleep } from '../../vscode/src/debounce';
import { CompletionCache, KEY_PREFIX_CHARS, KEY_SUFFIX_CHARS } from '../../vscode/src/lru';
import {
  METHOD_EXPLAIN, METHOD_INLINE_COMPLETION, METHOD_STATUS, readChunk, readStatus, resultText,
} from '../../vscode/src/protocol';
import { streamCompletion, trimSuffixOverlap } from '../../vscode/src/stream';
import './style.css';
import { authorize } from './auth';
import { renderAudit } from './context_panel';
import { monaco } from './monaco';
import { connectLsp } from './rpc';
import { LANGUAGES, sampleUri } from './samples';

const MAX_TOKENS = 48;
const PARTIAL = new ProgressType<unknown>();
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface Last { uri: string; line: number; character: number; text: string; latencyMs: number; }

let conn: MessageConnection | undefined;
let inflight: CancellationTokenSource | undefined;
let last: Last | undefined;
let seq = 0;
const cache = new CompletionCache(128);
const debounce = new AdaptiveDebounce({ baseMs: 120 });
const opened = new Set<monaco.editor.ITextModel>();
// Completions still streaming (body[data-pending]): the end-to-end test waits for 0 before it reads ghost text.
let pending = 0;
const addPending = (d: number) => { pending += d; document.body.dataset.pending = String(pending); };
addPending(0);

function setStatus(state: string, text: string): void {
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text;
  document.body.dataset.connection = state;
}

const editor = monaco.editor.create($('editor'), {
  automaticLayout: true, minimap: { enabled: false }, fontSize: 14, theme: 'vs-dark',
  inlineSuggest: { enabled: true }, quickSuggestions: false, suggestOnTriggerCharacters: false,
  wordBasedSuggestions: 'off', tabCompletion: 'off', scrollBeyondLastLine: false,
});

function cancelInflight(): void {
  inflight?.cancel();
  inflight?.dispose();
  inflight = undefined;
}

// ---- documents: the current language's samples are open on the daemon --------------------------------
function lspRange(r: monaco.IRange) {
  return { start: { line: r.startLineNumber - 1, character: r.startColumn - 1 },
    end: { line: r.endLineNumber - 1, character: r.endColumn - 1 } };
}

function didOpen(model: monaco.editor.ITextModel): void {
  opened.add(model);
  void conn?.sendNotification('textDocument/didOpen', { textDocument: {
    uri: model.uri.toString(), languageId: model.getLanguageId(), version: model.getVersionId(), text: model.getValue() } });
}

function didClose(model: monaco.editor.ITextModel): void {
  opened.delete(model);
  void conn?.sendNotification('textDocument/didClose', { textDocument: { uri: model.uri.toString() } });
}

function modelFor(lang: string, name: string, text: string): monaco.editor.ITextModel {
  const uri = monaco.Uri.parse(sampleUri(lang, name));
  const existing = monaco.editor.getModel(uri);
  if (existing) return existing;
  const model = monaco.editor.createModel(text, lang, uri);
  model.onDidChangeContent((e) => {
    debounce.keystroke(Date.now());
    cancelInflight();  // every keystroke cancels the running request
    if (!opened.has(model)) return;
    // Monaco orders the changes from the end of the document, so they apply one after another as LSP wants.
    void conn?.sendNotification('textDocument/didChange', {
      textDocument: { uri: model.uri.toString(), version: model.getVersionId() },
      contentChanges: e.changes.map((c) => ({ range: lspRange(c.range), rangeLength: c.rangeLength, text: c.text })),
    });
  });
  return model;
}

function showLanguage(langId: string, sampleName?: string): void {
  const lang = LANGUAGES.find((l) => l.id === langId) ?? LANGUAGES[0];
  for (const m of [...opened]) if (m.getLanguageId() !== lang.id) didClose(m);
  const models = lang.samples.map((s) => modelFor(lang.id, s.name, s.text));
  for (const m of models) if (!opened.has(m) && conn) didOpen(m);
  const sample = $<HTMLSelectElement>('sample');
  sample.replaceChildren(...lang.samples.map((s) => new Option(s.name, s.name)));
  const pick = lang.samples.findIndex((s) => s.name === sampleName);
  sample.selectedIndex = Math.max(0, pick);
  $<HTMLSelectElement>('language').value = lang.id;
  showModel(models[Math.max(0, pick)]);
}

function showModel(model: monaco.editor.ITextModel): void {
  editor.setModel(model);
  const end = model.getFullModelRange().getEndPosition();
  editor.setPosition(end);
  editor.focus();
}

// ---- inline completions ---------------------------------------------------------------------------------
async function complete(model: monaco.editor.ITextModel, pos: monaco.Position, invoked: boolean,
  token: monaco.CancellationToken): Promise<{ items: monaco.languages.InlineCompletion[] }> {
  const none = { items: [] };
  if (!conn || !opened.has(model)) return none;
  const offset = model.getOffsetAt(pos);
  const prefix = model.getValue().slice(Math.max(0, offset - KEY_PREFIX_CHARS), offset);
  const suffix = model.getValue().slice(offset, offset + KEY_SUFFIX_CHARS);
  const item = (text: string) => ({ items: [{ insertText: text, range: new monaco.Range(pos.lineNumber, pos.column, pos.lineNumber, pos.column) }] });
  const remember = (text: string, latencyMs: number) => {
    last = { uri: model.uri.toString(), line: pos.lineNumber - 1, character: pos.column - 1, text, latencyMs };
    $('last').textContent = `last suggestion: ${text.length} chars${latencyMs ? ` in ${latencyMs} ms` : ' (cached)'}`;
    $('last').dataset.count = String(Number($('last').dataset.count ?? 0) + 1);
    if (!$('context-panel').hidden) void explain();
  };
  const lang = model.getLanguageId();
  const cached = cache.get(lang, prefix, suffix);
  if (cached !== undefined) {
    const text = trimSuffixOverlap(cached, suffix);
    if (!text.trim()) return none;
    remember(text, 0);
    return item(text);
  }
  cancelInflight();
  const cts = new CancellationTokenSource();
  inflight = cts;
  const link = token.onCancellationRequested(() => cts.cancel());
  try {
    if (!invoked && !(await sleep(debounce.delayMs(), cts.token))) return none;
    const started = Date.now();
    const version = model.getVersionId();
    const partialResultToken = `web-${++seq}`;
    const c = conn;
    const stream = streamCompletion(async (onChunk) => {
      const sub = c.onProgress(PARTIAL, partialResultToken, (v) => {
        const chunk = readChunk(v);
        if (chunk) onChunk(chunk);
      });
      try {
        return resultText(await c.sendRequest(METHOD_INLINE_COMPLETION, {
          textDocument: { uri: model.uri.toString() },
          position: { line: pos.lineNumber - 1, character: pos.column - 1 },
          context: { triggerKind: invoked ? 1 : 2 }, partialResultToken, latent: { maxTokens: MAX_TOKENS },
        }, cts.token));
      } finally {
        sub.dispose();
      }
    }, (e) => { if (!cts.token.isCancellationRequested) $('last').textContent = `completion failed: ${e.message}`; });
    addPending(1);
    void stream.full.finally(() => addPending(-1));
    const first = await stream.first;
    if (cts.token.isCancellationRequested) return none;
    const latencyMs = Date.now() - started;
    debounce.latency(latencyMs);
    if (first.done) {
      cache.put(lang, prefix, suffix, first.text);
    } else {
      // The first line shows now; the whole completion replaces it when it lands (cursor unmoved).
      void stream.full.then((all) => {
        if (cts.token.isCancellationRequested || !all) return;
        cache.put(lang, prefix, suffix, all);
        if (editor.getModel() === model && model.getVersionId() === version && editor.getPosition()?.equals(pos)) {
          editor.trigger('latent', 'editor.action.inlineSuggest.trigger', {});
        }
      });
    }
    const text = trimSuffixOverlap(first.text, suffix);
    if (!text.trim()) return none;
    remember(text, latencyMs);
    return item(text);
  } finally {
    link.dispose();
  }
}

monaco.languages.registerInlineCompletionsProvider('*', {
  provideInlineCompletions: (model, pos, ctx, token) =>
    complete(model, pos, ctx.triggerKind === monaco.languages.InlineCompletionTriggerKind.Explicit, token),
  disposeInlineCompletions: () => undefined,
  freeInlineCompletions: () => undefined,
} as monaco.languages.InlineCompletionsProvider);

// ---- the context panel ----------------------------------------------------------------------------------
async function explain(): Promise<void> {
  const body = $('context-body');
  if (!last || !conn) {
    body.textContent = 'No suggestion yet: type in the editor, and the context of the last suggestion shows here.';
    return;
  }
  const l = last;
  try {
    const audit = await conn.sendRequest(METHOD_EXPLAIN, {
      textDocument: { uri: l.uri }, position: { line: l.line, character: l.character } });
    renderAudit(body, audit, `${l.uri.replace(/^.*\/playground\//, '')}:${l.line + 1}:${l.character + 1}`);
    body.dataset.loaded = String(Number(body.dataset.loaded ?? 0) + 1);
  } catch (e) {
    body.textContent = `latent/explainContext failed: ${(e as Error).message}`;
  }
}

$('explain-button').addEventListener('click', () => {
  const panel = $('context-panel');
  panel.hidden = !panel.hidden;
  if (!panel.hidden) void explain();
  // Back to the editor, with the suggestion showing again (from the cache) beside its explanation.
  editor.focus();
  editor.trigger('latent', 'editor.action.inlineSuggest.trigger', {});
});

// ---- connection -----------------------------------------------------------------------------------------
async function start(): Promise<void> {
  setStatus('connecting', 'connecting…');
  try {
    const token = await authorize();
    conn = await connectLsp(token, () => {
      conn = undefined;
      opened.clear();
      setStatus('closed', 'disconnected from latentd');
      $('reconnect').hidden = false;
    });
    conn.onNotification(METHOD_STATUS, (p: unknown) => {
      const st = readStatus(p);
      if (!st) return;
      const pct = st.progress !== undefined ? ` ${Math.round(st.progress * 100)}%` : '';
      setStatus(st.state === 'error' ? 'error' : 'ready', `${st.state}${pct}${st.message ? `: ${st.message}` : ''}`);
    });
    const init = await conn.sendRequest('initialize', {
      processId: null, rootUri: null, workspaceFolders: null, clientInfo: { name: 'latent-web' },
      capabilities: { general: { positionEncodings: ['utf-16'] } },
      initializationOptions: { maxTokens: MAX_TOKENS, client: 'latent-web' },
    }) as { capabilities?: { experimental?: { latent?: { model?: unknown } } }; serverInfo?: { version?: string } };
    await conn.sendNotification('initialized', {});
    const model = init.capabilities?.experimental?.latent?.model;
    setStatus('ready', `connected${typeof model === 'string' && model ? `: ${model}` : ''}`);
    $('reconnect').hidden = true;
    for (const m of monaco.editor.getModels()) {
      if (m.getLanguageId() === $<HTMLSelectElement>('language').value) didOpen(m);
    }
  } catch (e) {
    setStatus('error', (e as Error).message);
    $('reconnect').hidden = false;
  }
}

const langSelect = $<HTMLSelectElement>('language');
langSelect.replaceChildren(...LANGUAGES.map((l) => new Option(l.label, l.id)));
langSelect.addEventListener('change', () => showLanguage(langSelect.value));
$<HTMLSelectElement>('sample').addEventListener('change', () =>
  showLanguage(langSelect.value, $<HTMLSelectElement>('sample').value));
$('reconnect').addEventListener('click', () => void start());
showLanguage(LANGUAGES[0].id);
void start();

// For the end-to-end test and the curious: the editor and the last suggestion.
(window as unknown as { latentPlayground: object }).latentPlayground = {
  monaco, editor, get last() { return last; }, showLanguage,
};
