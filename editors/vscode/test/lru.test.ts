import { strict as assert } from 'node:assert';
import { CompletionCache, KEY_PREFIX_CHARS, LruCache } from '../src/lru';

describe('LruCache', () => {
  it('evicts the least recently used entry', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    assert.equal(c.get('a'), 1);  // a is now most recent
    c.set('c', 3);                // evicts b
    assert.equal(c.get('b'), undefined);
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('c'), 3);
    assert.equal(c.size, 2);
  });

  it('overwriting a key refreshes it without growing', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1); c.set('b', 2); c.set('a', 10); c.set('c', 3);
    assert.deepEqual(c.entries(), [['c', 3], ['a', 10]]);
  });

  it('rejects a capacity below one', () => {
    assert.throws(() => new LruCache(0), /expected capacity >= 1, found 0/);
  });
});

describe('CompletionCache', () => {
  it('hits on the same prefix and suffix only', () => {
    const c = new CompletionCache();
    c.put('python', 'def add(a, b):\n    ', '\n', 'return a + b');
    assert.equal(c.get('python', 'def add(a, b):\n    ', '\n'), 'return a + b');
    assert.equal(c.get('python', 'def add(a, b):\n    ', '\nx = 1'), undefined);  // other suffix
    assert.equal(c.get('python', 'def sub(a, b):\n    ', '\n'), undefined);       // other prefix
    assert.equal(c.get('go', 'def add(a, b):\n    ', '\n'), undefined);           // other language
  });

  it('serves the rest of a completion the user is typing into', () => {
    const c = new CompletionCache();
    c.put('python', 'def add(a, b):\n    ', '\n', 'return a + b');
    assert.equal(c.get('python', 'def add(a, b):\n    ret', '\n'), 'urn a + b');
    assert.equal(c.get('python', 'def add(a, b):\n    return a +', '\n'), ' b');
    assert.equal(c.get('python', 'def add(a, b):\n    rex', '\n'), undefined);       // diverged
    assert.equal(c.get('python', 'def add(a, b):\n    return a + b', '\n'), undefined);  // fully typed
  });

  it('typed-ahead works when the prefix is longer than the key window', () => {
    const c = new CompletionCache();
    const long = 'x'.repeat(KEY_PREFIX_CHARS * 3) + '\nfoo(';
    c.put('c', long, ');', 'a, b');
    assert.equal(c.get('c', long, ');'), 'a, b');
    assert.equal(c.get('c', long + 'a,', ');'), ' b');
  });

  it('does not store empty completions and is bounded', () => {
    const c = new CompletionCache(3);
    c.put('c', 'p', 's', '');
    assert.equal(c.size, 0);
    for (let i = 0; i < 10; i++) c.put('c', `p${i}`, 's', `t${i}`);
    assert.equal(c.size, 3);
    assert.equal(c.get('c', 'p9', 's'), 't9');
    assert.equal(c.get('c', 'p0', 's'), undefined);
  });
});
