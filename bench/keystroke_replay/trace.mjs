// Keystroke traces made from real source files: a region of a file is removed and typed back line by line,
// with inter-key gaps drawn from a log-normal distribution, typos corrected with a backspace, and pauses at
// line ends. Deterministic from a seed (mulberry32), so every configuration replays the same trace.
//
// A trace is { uri, languageId, initialText, cursor (UTF-16 offset), events: [{ t (ms from start), kind:
// 'insert' | 'delete', text? }] }: an insert types `text` at the cursor; a delete removes the character
// before it. Enter is one event that inserts "\n" plus the next line's indentation (as an editor's
// auto-indent does), so the finished document equals the original file.

export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Standard normal from two uniforms (Box-Muller).
function gaussian(rand) {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export const DEFAULT_TYPING = {
  keyMedianMs: 110,    // median gap between keys inside a word (~90 words per minute at 5 chars a word)
  keySigma: 0.45,      // log-normal spread
  wordGapMs: 60,       // extra after a space or punctuation
  typoRate: 0.03,      // per character: a wrong key, noticed after a gap and removed with a backspace
  noticeMs: [200, 500],
  linePauseRate: 0.3,  // at a line end: a pause to think
  linePauseMs: [700, 2500],
  enterMs: [150, 400],
};

function between(rand, [lo, hi]) { return lo + (hi - lo) * rand(); }

// `text`: the whole file; lines [startLine, startLine + nLines) are typed.
export function makeTrace({ text, uri, languageId, startLine, nLines, seed, typing = DEFAULT_TYPING }) {
  const rand = mulberry32(seed);
  const lines = text.split('\n');
  if (startLine < 0 || startLine + nLines > lines.length) {
    throw new Error(`trace: expected lines [${startLine}, ${startLine + nLines}) inside the file's ${lines.length} lines`);
  }
  const before = lines.slice(0, startLine).map((l) => `${l}\n`).join('');
  const region = lines.slice(startLine, startLine + nLines);
  const after = lines.slice(startLine + nLines).join('\n');
  const indent = (l) => /^[ \t]*/.exec(l)[0];
  const events = [];
  let t = 0;
  const key = (gap, e) => { t += gap; events.push({ t: Math.round(t), ...e }); };
  const keyGap = (c) => {
    const g = typing.keyMedianMs * Math.exp(typing.keySigma * gaussian(rand));
    return Math.min(1500, Math.max(25, g + (/[\s(),.:;=]/.test(c) ? typing.wordGapMs : 0)));
  };
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  if (indent(region[0])) key(300, { kind: 'insert', text: indent(region[0]) });
  for (let i = 0; i < region.length; i++) {
    const body = region[i].slice(indent(region[i]).length);
    for (const c of body) {
      if (/[a-z]/.test(c) && rand() < typing.typoRate) {
        key(keyGap(c), { kind: 'insert', text: letters[Math.floor(rand() * letters.length)] });
        key(between(rand, typing.noticeMs), { kind: 'delete' });
      }
      key(keyGap(c), { kind: 'insert', text: c });
    }
    const pause = rand() < typing.linePauseRate ? between(rand, typing.linePauseMs) : 0;
    const next = i + 1 < region.length ? indent(region[i + 1]) : '';
    key(between(rand, typing.enterMs) + pause, { kind: 'insert', text: `\n${next}` });
  }
  return { uri, languageId, initialText: before + after, cursor: before.length, events, typedLines: nLines };
}
