// The agent panel's model: latent/agent/update notifications folded into what the panel shows (pure, no
// VS Code), so that it can be unit-tested. Update shapes (docs/lsp.md, "Agent"):
//   {taskId, kind: 'status', state, step, message} | {kind: 'text', step, text}
//   {kind: 'toolCall', step, callId, name, arguments} | {kind: 'toolResult', step, callId, name, ok, result}
//   {kind: 'edit', editId, state, path, uri, range, oldText, newText, description, create}

export type TaskState = 'starting' | 'running' | 'waiting' | 'done' | 'cancelled' | 'stopped' | 'error';

export interface EditView {
  editId: number;
  state: 'proposed' | 'applied' | 'rejected' | 'reverted' | 'failed';
  path: string;
  uri: string;
  oldText: string;
  newText: string;
  description: string;
  create: boolean;
  range?: { start: { line: number; character: number }; end: { line: number; character: number } };
}

export interface StepView {
  id: string;               // stable key: "text-2", "call-2-1", "edit-3", "status-…"
  kind: 'text' | 'tool' | 'edit' | 'status';
  title: string;
  detail: string;
  ok?: boolean;
}

export interface TaskView {
  taskId: string;
  task: string;
  state: TaskState;
  message: string;
  steps: StepView[];
  edits: Map<number, EditView>;
  pendingEdit?: number;     // the proposed edit waiting for approve/reject
}

export function newTask(taskId: string, task: string): TaskView {
  return { taskId, task, state: 'starting', message: '', steps: [], edits: new Map() };
}

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown, fallback = 0): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
const TERMINAL: TaskState[] = ['done', 'cancelled', 'stopped', 'error'];
const STATES: TaskState[] = ['running', 'waiting', ...TERMINAL];
const EDIT_STATES: EditView['state'][] = ['proposed', 'applied', 'rejected', 'reverted', 'failed'];

export function isFinished(t: TaskView): boolean { return TERMINAL.includes(t.state); }

function upsert(t: TaskView, step: StepView): void {
  const i = t.steps.findIndex((s) => s.id === step.id);
  if (i >= 0) t.steps[i] = step; else t.steps.push(step);
}

// Folds one update into the task (mutates and returns it). Unknown or malformed updates are ignored.
export function applyUpdate(t: TaskView, u: unknown): TaskView {
  if (!u || typeof u !== 'object') return t;
  const o = u as Record<string, unknown>;
  if (o.taskId !== t.taskId) return t;
  switch (o.kind) {
    case 'status': {
      const state = str(o.state) as TaskState;
      if (!STATES.includes(state)) return t;
      t.state = state;
      t.message = str(o.message);
      if (TERMINAL.includes(state)) {
        t.pendingEdit = undefined;
        upsert(t, { id: `status-${state}`, kind: 'status', title: state, detail: t.message });
      }
      return t;
    }
    case 'text': {
      const id = `text-${num(o.step)}`;
      const prev = t.steps.find((s) => s.id === id);
      upsert(t, { id, kind: 'text', title: 'model', detail: (prev?.detail ?? '') + str(o.text) });
      return t;
    }
    case 'toolCall':
      upsert(t, { id: str(o.callId), kind: 'tool', title: str(o.name), detail: str(o.arguments) });
      return t;
    case 'toolResult': {
      const id = str(o.callId);
      const prev = t.steps.find((s) => s.id === id);
      const result = o.result && typeof o.result === 'object' ? (o.result as Record<string, unknown>) : {};
      const detail = typeof result.error === 'string' ? result.error : JSON.stringify(o.result ?? null);
      upsert(t, { id, kind: 'tool', title: str(o.name, prev?.title ?? ''), detail: `${prev?.detail ?? ''}\n→ ${detail}`,
        ok: o.ok === true });
      return t;
    }
    case 'edit': {
      const editId = num(o.editId, -1);
      const state = str(o.state) as EditView['state'];
      if (editId < 0 || !EDIT_STATES.includes(state)) return t;
      const prev = t.edits.get(editId);
      const e: EditView = {
        editId, state, path: str(o.path, prev?.path ?? ''), uri: str(o.uri, prev?.uri ?? ''),
        oldText: str(o.oldText, prev?.oldText ?? ''), newText: str(o.newText, prev?.newText ?? ''),
        description: str(o.description, prev?.description ?? ''), create: o.create === true || prev?.create === true,
        range: (o.range as EditView['range']) ?? prev?.range,
      };
      t.edits.set(editId, e);
      if (state === 'proposed') t.pendingEdit = editId;
      else if (t.pendingEdit === editId) t.pendingEdit = undefined;
      upsert(t, { id: `edit-${editId}`, kind: 'edit', title: `edit ${editId}: ${state}`, detail: e.description });
      return t;
    }
    default:
      return t;
  }
}

// The file's text with the proposed edit applied (what the diff editor's right side shows).
export function proposedText(current: string, e: EditView): string {
  if (e.create) return e.newText;
  const at = current.indexOf(e.oldText);
  if (!e.range) return at >= 0 ? current.slice(0, at) + e.newText + current.slice(at + e.oldText.length) : current;
  const offset = (p: { line: number; character: number }) => {
    let off = 0;
    for (let l = 0; l < p.line; l++) {
      const nl = current.indexOf('\n', off);
      if (nl < 0) return current.length;
      off = nl + 1;
    }
    return off + p.character;  // UTF-16 code units, as JavaScript strings count
  };
  return current.slice(0, offset(e.range.start)) + e.newText + current.slice(offset(e.range.end));
}

// Which buttons are usable now.
export function actions(t: TaskView | undefined): { start: boolean; approve: boolean; reject: boolean; cancel: boolean; revert: boolean } {
  const finished = !t || isFinished(t);
  const applied = !!t && [...t.edits.values()].some((e) => e.state === 'applied');
  return {
    start: finished,
    approve: !!t && t.pendingEdit !== undefined && t.state === 'waiting',
    reject: !!t && t.pendingEdit !== undefined && t.state === 'waiting',
    cancel: !finished,
    revert: !!t && isFinished(t) && applied,
  };
}
