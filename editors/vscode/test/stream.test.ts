import { strict as assert } from 'node:assert';
import { readChunk, readStatus, resultText } from '../src/protocol';
import { StreamAssembler, streamCompletion, trimSuffixOverlap } from '../src/stream';

describe('StreamAssembler', () => {
  it('appends deltas and reports the first line once it is complete', () => {
    const a = new StreamAssembler();
    a.push({ kind: 'delta', text: 'return ' });
    assert.equal(a.firstLineReady, false);
    a.push({ kind: 'delta', text: 'a + b' });
    assert.equal(a.firstLineReady, false);
    a.push({ kind: 'delta', text: '\n\ndef sub' });
    assert.equal(a.firstLineReady, true);
    assert.equal(a.firstLine, 'return a + b');
    assert.equal(a.text, 'return a + b\n\ndef sub');
  });

  it('a blank first line is not ready (the model often starts with a newline)', () => {
    const a = new StreamAssembler();
    a.push({ kind: 'delta', text: '\n    ' });
    assert.equal(a.firstLineReady, false);
  });

  it('full snapshots replace; the final response wins; nothing after finish', () => {
    const a = new StreamAssembler();
    a.push({ kind: 'full', text: 'ret' });
    a.push({ kind: 'full', text: 'return x' });
    assert.equal(a.text, 'return x');
    assert.equal(a.finish('return x + 1'), 'return x + 1');
    a.push({ kind: 'delta', text: 'junk' });
    assert.equal(a.text, 'return x + 1');
    assert.equal(a.done, true);
    assert.equal(a.firstLineReady, true);
  });

  it('an empty final response keeps the streamed text (LSP partial results)', () => {
    const a = new StreamAssembler();
    a.push({ kind: 'delta', text: 'abc' });
    assert.equal(a.finish(undefined), 'abc');
  });
});

describe('trimSuffixOverlap', () => {
  it('drops a closing part already after the cursor', () => {
    assert.equal(trimSuffixOverlap('a, b)', ')'), 'a, b');
    assert.equal(trimSuffixOverlap('a, b);', ');\nnext'), 'a, b');
    assert.equal(trimSuffixOverlap('a, b', ')'), 'a, b');
    assert.equal(trimSuffixOverlap('x + 1\n', '\n'), 'x + 1\n');
    assert.equal(trimSuffixOverlap('x)\n    y', ')'), 'x');
  });
});

describe('protocol readers', () => {
  it('final results: list, array, snippet, null', () => {
    assert.equal(resultText({ items: [{ insertText: 'a' }] }), 'a');
    assert.equal(resultText([{ insertText: 'b' }]), 'b');
    assert.equal(resultText({ items: [{ insertText: { kind: 'snippet', value: 'c' } }] }), 'c');
    assert.equal(resultText(null), undefined);
    assert.equal(resultText({ items: [] }), undefined);
  });

  it('streamed chunks: delta, text snapshot, partial list', () => {
    assert.deepEqual(readChunk({ token: 't', delta: 'ab' }), { kind: 'delta', text: 'ab' });
    assert.deepEqual(readChunk({ text: 'abc' }), { kind: 'full', text: 'abc' });
    assert.deepEqual(readChunk({ items: [{ insertText: 'abcd' }] }), { kind: 'full', text: 'abcd' });
    assert.deepEqual(readChunk([{ insertText: 'x' }]), { kind: 'full', text: 'x' });
    assert.equal(readChunk({ nothing: 1 }), undefined);
  });

  it('status: states, progress as fraction or percent', () => {
    assert.deepEqual(readStatus({ state: 'loading', progress: 0.5 }), { state: 'loading', progress: 0.5 });
    assert.deepEqual(readStatus({ state: 'loading', progress: 42 }), { state: 'loading', progress: 0.42 });
    assert.deepEqual(readStatus({ state: 'error', message: 'no model' }), { state: 'error', message: 'no model' });
    assert.equal(readStatus({ state: 'sleepy' }), undefined);
    // latentd's load phases (server/model_loader.h): phase, this phase's percent and bytes.
    assert.deepEqual(readStatus({ state: 'loading', phase: 'uploading', progress: 0.45, percent: 50, bytesDone: 10,
      bytesTotal: 20, message: 'uploading' }),
    { state: 'loading', phase: 'uploading', progress: 0.45, percent: 50, bytesDone: 10, bytesTotal: 20, message: 'uploading' });
    assert.deepEqual(readStatus({ state: 'error', phase: 'failed', message: 'the model failed to load: x' }),
      { state: 'error', phase: 'failed', message: 'the model failed to load: x' });
    assert.deepEqual(readStatus({ state: 'loading', bytesDone: 5, bytesTotal: 0 }), { state: 'loading' });
  });
});

describe('streamCompletion', () => {
  const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('shows the first line before generation ends, then the whole completion', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const s = streamCompletion(async (onChunk) => {
      onChunk({ kind: 'full', text: 'foo(' });
      onChunk({ kind: 'full', text: 'foo(x)\n' });
      onChunk({ kind: 'full', text: 'foo(x)\nbar' });
      await gate;
      return undefined;  // everything came as partial results
    });
    assert.deepEqual(await s.first, { text: 'foo(x)', done: false });
    release();
    assert.equal(await s.full, 'foo(x)\nbar');
  });

  it('a completion that ends before its first line is complete resolves first with done', async () => {
    const s = streamCompletion(async (onChunk) => {
      onChunk({ kind: 'delta', text: 'a + ' });
      await tick(5);
      return 'a + b';
    });
    assert.deepEqual(await s.first, { text: 'a + b', done: true });
    assert.equal(await s.full, 'a + b');
  });

  it('a failed request ends with what arrived and reports the error', async () => {
    const errors: string[] = [];
    const s = streamCompletion(async (onChunk) => {
      onChunk({ kind: 'delta', text: 'par' });
      throw new Error('cancelled');
    }, (e) => errors.push(e.message));
    assert.deepEqual(await s.first, { text: 'par', done: true });
    assert.deepEqual(errors, ['cancelled']);
  });
});
