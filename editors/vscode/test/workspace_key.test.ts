// The workspace key: stable for the same folders whatever their order, different for other folders, and
// without any of the path in it.
import { strict as assert } from 'node:assert';
import { workspaceKey } from '../src/workspace_key';

describe('workspace key', () => {
  const a = 'file:///home/ada/src/payments';
  const b = 'file:///home/ada/src/payments-ui';

  it('is 32 hex digits, the same every time for the same folders, in any order', () => {
    const k = workspaceKey([a, b]);
    assert.match(k ?? '', /^[0-9a-f]{32}$/);
    assert.equal(workspaceKey([b, a]), k);
    assert.equal(workspaceKey([a, b, a]), k);
  });

  it('differs between workspaces', () => {
    assert.notEqual(workspaceKey([a]), workspaceKey([b]));
    assert.notEqual(workspaceKey([a]), workspaceKey([a, b]));
    assert.notEqual(workspaceKey(['file:///home/bob/src/payments']), workspaceKey([a]));
  });

  it('leaks no part of the path', () => {
    const k = workspaceKey([a]) ?? '';
    for (const part of ['home', 'ada', 'src', 'payments']) assert.ok(!k.includes(part));
  });

  it('is undefined with no folder open', () => {
    assert.equal(workspaceKey([]), undefined);
  });
});
