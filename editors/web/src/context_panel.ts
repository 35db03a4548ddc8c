// The side panel: latentd's latent/explainContext audit for the last suggestion - the prompt budget, each
// candidate (prefix, suffix, scopes, imports, definitions, snippets of other files), whether it was included,
// and why it was dropped. Built with DOM nodes and textContent only: file text never becomes markup.

interface AuditItem {
  kind?: string; path?: string; line?: number; tokens?: number; score?: number;
  included?: boolean; reason?: string; text?: string;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

export function renderAudit(target: HTMLElement, audit: unknown, where: string): void {
  target.replaceChildren();
  const a = (audit ?? {}) as { prompt?: unknown; promptTokens?: unknown; budgetTokens?: unknown; items?: unknown; path?: unknown };
  if (typeof a.prompt !== 'string' || !Array.isArray(a.items)) {
    target.append(el('pre', JSON.stringify(audit, null, 2)));
    return;
  }
  target.append(el('p', `${where}: prompt of ${String(a.promptTokens)} tokens (budget ${String(a.budgetTokens)})`, 'summary'));
  const table = el('table', undefined, 'audit');
  const head = el('tr');
  for (const h of ['', 'kind', 'where', 'tokens', 'score', 'reason']) head.append(el('th', h));
  table.append(head);
  for (const it of a.items as AuditItem[]) {
    const row = el('tr', undefined, it.included ? 'included' : 'dropped');
    const place = it.path ? `${it.path.replace(/^.*\/playground\//, '')}${it.line !== undefined ? `:${it.line + 1}` : ''}` : '';
    row.append(el('td', it.included ? '✓' : '✗'), el('td', it.kind ?? ''), el('td', place),
      el('td', String(it.tokens ?? '')), el('td', typeof it.score === 'number' ? it.score.toFixed(3) : ''),
      el('td', it.reason ?? ''));
    if (it.text) row.title = it.text.slice(0, 2000);
    table.append(row);
  }
  target.append(table);
  const details = el('details');
  details.append(el('summary', 'Prompt sent to the model'), el('pre', a.prompt));
  target.append(details);
}
