import { strict as assert } from 'node:assert';
import { renderExplain } from '../src/explain';

describe('renderExplain', () => {
  it('renders latentd audit: budget, items, prompt', () => {
    const md = renderExplain({
      prompt: '<fim_prefix>def f():\n', prefix: 'def f():\n', suffix: '', path: '/w/a.py', promptTokens: 12,
      budgetTokens: 2048,
      items: [
        { kind: 'symbol', path: '/w/b.py', line: 4, tokens: 7, score: 0.5, included: true, reason: 'imported', text: 'x' },
        { kind: 'file', path: '/w/c|d.py', tokens: 900, score: 0.01, included: false, reason: 'over budget' },
      ],
    });
    assert.match(md, /\*\*Prompt:\*\* 12 of 2048 tokens/);
    assert.match(md, /\| ✓ \| symbol \| \/w\/b\.py:5 \| 7 \| 0\.500 \| imported \|/);
    assert.match(md, /\| ✗ \| file \| \/w\/c\\\|d\.py \| 900 \| 0\.010 \| over budget \|/);
    assert.match(md, /## Prompt\n\n```\n<fim_prefix>def f\(\):\n\n```/);
  });

  it('markdown field, strings, and unknown shapes', () => {
    assert.equal(renderExplain({ markdown: '# hi' }), '# hi');
    assert.equal(renderExplain('plain'), 'plain');
    assert.equal(renderExplain({ other: 1 }), '```\n{\n  "other": 1\n}\n```');
    assert.equal(renderExplain(null), '```\nnull\n```');
  });
});
