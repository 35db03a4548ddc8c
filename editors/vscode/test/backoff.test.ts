import { strict as assert } from 'node:assert';
import { Backoff } from '../src/backoff';

describe('Backoff', () => {
  it('grows exponentially to the cap (no jitter at random = 0.5)', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, maxAttempts: 10 });
    const delays = Array.from({ length: 6 }, () => b.next(0, 0.5));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  });

  it('jitters within +-20%', () => {
    const lo = new Backoff({ initialMs: 1000 }).next(0, 0);
    const hi = new Backoff({ initialMs: 1000 }).next(0, 0.999999);
    assert.equal(lo, 800);
    assert.equal(hi, 1200);
  });

  it('gives up after too many quick deaths', () => {
    const b = new Backoff({ initialMs: 10, maxAttempts: 3 });
    assert.notEqual(b.next(5, 0.5), undefined);
    assert.notEqual(b.next(5, 0.5), undefined);
    assert.notEqual(b.next(5, 0.5), undefined);
    assert.equal(b.next(5, 0.5), undefined);
    assert.equal(b.attempts, 3);
  });

  it('a long enough run resets it', () => {
    const b = new Backoff({ initialMs: 100, stableMs: 60_000 });
    b.next(0, 0.5); b.next(0, 0.5); b.next(0, 0.5);
    assert.equal(b.next(120_000, 0.5), 100);
    b.reset();
    assert.equal(b.attempts, 0);
  });
});
