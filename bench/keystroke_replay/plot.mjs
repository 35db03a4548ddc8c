// An SVG of a keystroke replay: per layout, the cumulative distribution of keystroke -> first streamed token
// (left) and of new prefill tokens per request (right). No dependencies: polylines on two log-x axes.

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];

function panel(x0, title, xLabel, series, lo, hi) {
  const W = 420, H = 300, L = 50, B = 40, T = 30;
  const lx = (v) => x0 + L + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (W - L - 10);
  const ly = (q) => T + (1 - q) * (H - T - B);
  let s = `<text x="${x0 + W / 2}" y="18" text-anchor="middle" font-size="13">${title}</text>`;
  s += `<rect x="${x0 + L}" y="${T}" width="${W - L - 10}" height="${H - T - B}" fill="none" stroke="#888"/>`;
  for (let d = Math.ceil(Math.log10(lo)); d <= Math.floor(Math.log10(hi)); d++) {
    const v = 10 ** d;
    s += `<line x1="${lx(v)}" y1="${T}" x2="${lx(v)}" y2="${H - B}" stroke="#ddd"/>`;
    s += `<text x="${lx(v)}" y="${H - B + 14}" text-anchor="middle" font-size="10">${v}</text>`;
  }
  for (const q of [0, 0.5, 0.95, 1]) {
    s += `<line x1="${x0 + L}" y1="${ly(q)}" x2="${x0 + W - 10}" y2="${ly(q)}" stroke="#eee"/>`;
    s += `<text x="${x0 + L - 4}" y="${ly(q) + 3}" text-anchor="end" font-size="10">${q}</text>`;
  }
  s += `<text x="${x0 + W / 2}" y="${H - 6}" text-anchor="middle" font-size="11">${xLabel}</text>`;
  series.forEach(({ name, values }, i) => {
    const v = [...values].sort((a, b) => a - b);
    if (v.length === 0) return;
    const pts = v.map((x, k) => `${lx(x).toFixed(1)},${ly((k + 1) / v.length).toFixed(1)}`).join(' ');
    s += `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${pts}"/>`;
    s += `<text x="${x0 + L + 8}" y="${T + 14 + 14 * i}" font-size="11" fill="${COLORS[i % COLORS.length]}">${name} (n=${v.length})</text>`;
  });
  return s;
}

export function plotSvg(result) {
  const lat = result.runs.map((r) => ({ name: r.layout, values: r.samples.first_from_key }));
  const pre = result.runs.map((r) => ({ name: r.layout, values: r.samples.new_prefill }));
  const title = `${result.model}, ${result.trace.file} (${result.trace.keystrokes} keys), ${result.machine.cpu}, load ${result.load_average_1m.join('/')}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="860" height="330" font-family="sans-serif">` +
    `<rect width="860" height="330" fill="white"/>` +
    panel(0, 'keystroke → first streamed token (CDF)', 'ms (log)', lat, 1, 30000) +
    panel(430, 'new prefill tokens per request (CDF)', 'tokens (log)', pre, 1, 4096) +
    `<text x="430" y="326" text-anchor="middle" font-size="10" fill="#555">${title.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</text>` +
    `</svg>\n`;
}
