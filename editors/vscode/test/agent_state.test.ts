import { strict as assert } from 'node:assert';
import { actions, applyUpdate, newTask, proposedText } from '../src/agent_state';

describe('agent panel state', () => {
  it('folds streamed text, tool calls and results into steps', () => {
    const t = newTask('task-1', 'fix add');
    applyUpdate(t, { taskId: 'task-1', kind: 'status', state: 'running', step: 1, message: 'model turn 1' });
    applyUpdate(t, { taskId: 'task-1', kind: 'text', step: 1, text: 'Let me ' });
    applyUpdate(t, { taskId: 'task-1', kind: 'text', step: 1, text: 'read.' });
    applyUpdate(t, { taskId: 'task-1', kind: 'toolCall', step: 1, callId: 'call-1-1', name: 'read_file', arguments: '{"path":"a.py"}' });
    applyUpdate(t, { taskId: 'task-1', kind: 'toolResult', step: 1, callId: 'call-1-1', name: 'read_file', ok: false,
      result: { error: 'edit refused (ambiguous): occurs 3 times' } });
    applyUpdate(t, { taskId: 'task-2', kind: 'text', step: 1, text: 'other task' });  // ignored
    applyUpdate(t, null);
    applyUpdate(t, { taskId: 'task-1', kind: 'mystery' });
    assert.equal(t.state, 'running');
    assert.deepEqual(t.steps.map((s) => [s.id, s.detail]), [
      ['text-1', 'Let me read.'],
      ['call-1-1', '{"path":"a.py"}\n→ edit refused (ambiguous): occurs 3 times'],
    ]);
    assert.equal(t.steps[1].ok, false);
  });

  it('tracks the pending edit and which actions are allowed', () => {
    const t = newTask('task-1', 'x');
    assert.deepEqual(actions(undefined), { start: true, approve: false, reject: false, cancel: false, revert: false });
    applyUpdate(t, { taskId: 'task-1', kind: 'edit', editId: 1, state: 'proposed', path: 'a.py', uri: 'file:///w/a.py',
      oldText: 'a - b', newText: 'a + b', description: 'replaced', create: false,
      range: { start: { line: 1, character: 11 }, end: { line: 1, character: 16 } } });
    applyUpdate(t, { taskId: 'task-1', kind: 'status', state: 'waiting', step: 2, message: 'approve or reject edit 1' });
    assert.equal(t.pendingEdit, 1);
    assert.deepEqual(actions(t), { start: false, approve: true, reject: true, cancel: true, revert: false });
    applyUpdate(t, { taskId: 'task-1', kind: 'edit', editId: 1, state: 'applied' });
    assert.equal(t.pendingEdit, undefined);
    assert.equal(t.edits.get(1)?.newText, 'a + b');  // kept from the proposal
    applyUpdate(t, { taskId: 'task-1', kind: 'status', state: 'done', step: 0, message: 'Fixed.' });
    assert.deepEqual(actions(t), { start: true, approve: false, reject: false, cancel: false, revert: true });
    applyUpdate(t, { taskId: 'task-1', kind: 'edit', editId: 1, state: 'reverted' });
    assert.equal(actions(t).revert, false);
  });

  it('shows the proposed text for the diff editor, by range (UTF-16) or by old text', () => {
    const current = 'def add(a, b):\n    return a - b  # é\n';
    const e = { editId: 1, state: 'proposed' as const, path: 'a.py', uri: '', oldText: 'a - b', newText: 'a + b',
      description: '', create: false, range: { start: { line: 1, character: 11 }, end: { line: 1, character: 16 } } };
    assert.equal(proposedText(current, e), 'def add(a, b):\n    return a + b  # é\n');
    assert.equal(proposedText(current, { ...e, range: undefined }), 'def add(a, b):\n    return a + b  # é\n');
    assert.equal(proposedText('', { ...e, create: true, newText: 'x = 1\n' }), 'x = 1\n');
  });
});
