// A reader for the Prometheus text format that latentd's /metrics writes: `name{k="v",...} value` lines,
// comments skipped. Pure (no DOM), so the dashboard's arithmetic is easy to follow.
export interface Series { name: string; labels: Record<string, string>; value: number; }

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(LABEL)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

export class Snapshot {
  constructor(readonly series: Series[], readonly at: number) {}

  // Sum of every series of `name` whose labels include `match`.
  sum(name: string, match: Record<string, string> = {}): number {
    let s = 0;
    for (const x of this.series) {
      if (x.name !== name) continue;
      if (Object.entries(match).every(([k, v]) => x.labels[k] === v)) s += x.value;
    }
    return s;
  }

  has(name: string): boolean { return this.series.some((x) => x.name === name); }
}

// Mean of a histogram over (prev, cur]: delta sum / delta count over the families named; undefined when
// nothing was observed in between.
export function intervalMean(prev: Snapshot, cur: Snapshot, families: string[]): number | undefined {
  let dsum = 0;
  let dcount = 0;
  for (const f of families) {
    dsum += cur.sum(`${f}_sum`) - prev.sum(`${f}_sum`);
    dcount += cur.sum(`${f}_count`) - prev.sum(`${f}_count`);
  }
  return dcount > 0 ? dsum / dcount : undefined;
}

// Mean since start over the families named (undefined before the first observation).
export function overallMean(cur: Snapshot, families: string[]): number | undefined {
  let sum = 0;
  let count = 0;
  for (const f of families) {
    sum += cur.sum(`${f}_sum`);
    count += cur.sum(`${f}_count`);
  }
  return count > 0 ? sum / count : undefined;
}
