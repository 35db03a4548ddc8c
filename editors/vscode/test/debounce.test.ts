import { strict as assert } from 'node:assert';
import { AdaptiveDebounce, CancelLike, sleep } from '../src/debounce';

describe('AdaptiveDebounce', () => {
  it('starts at the base delay', () => {
    assert.equal(new AdaptiveDebounce({ baseMs: 120 }).delayMs(), 120);
  });

  it('waits past the typing interval while the user types fast', () => {
    const d = new AdaptiveDebounce({ baseMs: 100 });
    for (let t = 0; t <= 1400; t += 140) d.keystroke(t);  // a key every 140 ms
    assert.equal(Math.round(d.typingIntervalMs!), 140);
    assert.equal(d.delayMs(), 182);  // 1.3 x 140
  });

  it('ignores pauses between typing bursts', () => {
    const d = new AdaptiveDebounce({ baseMs: 100 });
    d.keystroke(0); d.keystroke(50); d.keystroke(5000);
    assert.equal(d.typingIntervalMs, 50);
  });

  it('asks sooner when the daemon is fast and later when it is slow, within bounds', () => {
    const fast = new AdaptiveDebounce({ baseMs: 100 });
    for (let i = 0; i < 20; i++) fast.latency(20);
    const slow = new AdaptiveDebounce({ baseMs: 100 });
    for (let i = 0; i < 20; i++) slow.latency(2000);
    assert.ok(fast.delayMs() < 100, `fast: ${fast.delayMs()}`);
    assert.ok(fast.delayMs() >= 25);
    assert.equal(slow.delayMs(), 150);
    const capped = new AdaptiveDebounce({ baseMs: 100, maxMs: 120 });
    capped.latency(5000);
    assert.equal(capped.delayMs(), 120);
  });

  it('a base of zero stays zero', () => {
    const d = new AdaptiveDebounce({ baseMs: 0, maxMs: 0 });
    d.latency(300);
    assert.equal(d.delayMs(), 0);
  });
});

class Source implements CancelLike {
  isCancellationRequested = false;
  private listeners: Array<() => void> = [];
  onCancellationRequested(l: () => void) {
    this.listeners.push(l);
    return { dispose: () => { this.listeners = this.listeners.filter((x) => x !== l); } };
  }
  cancel() { this.isCancellationRequested = true; for (const l of this.listeners) l(); }
  get listenerCount() { return this.listeners.length; }
}

describe('sleep', () => {
  it('resolves true after the delay', async () => {
    const t0 = Date.now();
    assert.equal(await sleep(30), true);
    assert.ok(Date.now() - t0 >= 25);
  });

  it('resolves false as soon as cancelled, and cleans up', async () => {
    // A ten-minute sleep: only the cancel can end it within the test's time, so resolving (false) is the proof;
    // no clock is read.
    const src = new Source();
    const p = sleep(600_000, src);
    setTimeout(() => src.cancel(), 10);
    assert.equal(await p, false);
    assert.equal(src.listenerCount, 0);
  });

  it('resolves false at once when already cancelled', async () => {
    const src = new Source();
    src.cancel();
    assert.equal(await sleep(5000, src), false);
  });
});
