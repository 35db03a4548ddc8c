// Renders latentd's latent/explainContext audit as Markdown: the prompt budget, each ranked context item
// (included or why not) and the prompt itself. Unknown shapes fall back to pretty JSON. Pure, unit-tested.

interface AuditItem {
  kind?: string; path?: string; line?: number; tokens?: number; score?: number;
  included?: boolean; reason?: string; text?: string;
}

const fence = (s: string) => {
  const ticks = s.includes('```') ? '````' : '```';
  return `${ticks}\n${s}\n${ticks}`;
};
const cell = (s: unknown) => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderExplain(audit: unknown): string {
  if (typeof audit === 'string') return audit;
  if (!audit || typeof audit !== 'object') return fence(JSON.stringify(audit));
  const a = audit as {
    markdown?: unknown; prompt?: unknown; path?: unknown; promptTokens?: unknown; budgetTokens?: unknown;
    items?: unknown;
  };
  if (typeof a.markdown === 'string') return a.markdown;
  if (typeof a.prompt !== 'string' || !Array.isArray(a.items)) return fence(JSON.stringify(audit, null, 2));
  const out: string[] = [];
  out.push(`**File:** ${cell(a.path)}  \n**Prompt:** ${cell(a.promptTokens)} of ${cell(a.budgetTokens)} tokens`);
  out.push('', '| | kind | where | tokens | score | reason |', '|---|---|---|---|---|---|');
  for (const it of a.items as AuditItem[]) {
    const where = it.path ? `${it.path}${it.line !== undefined ? `:${it.line + 1}` : ''}` : '';
    const score = typeof it.score === 'number' ? it.score.toFixed(3) : '';
    out.push(`| ${it.included ? '✓' : '✗'} | ${cell(it.kind)} | ${cell(where)} | ${cell(it.tokens)} | ${score} | ${cell(it.reason)} |`);
  }
  out.push('', '## Prompt', '', fence(a.prompt));
  return out.join('\n');
}
