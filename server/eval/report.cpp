#include "server/eval/report.h"

#include <cstdio>

namespace latent::eval {
namespace {

// Inside <script>, "</script" (any case) and "<!--" would end or confuse the element: JSON escapes "<".
std::string script_json(const nlohmann::json& j) {
  std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

// A script body must not contain "</script": split it where it occurs (Chart.js has none today).
std::string script_source(const std::string& src) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    size_t i = src.find("</script", pos);
    if (i == std::string::npos) break;
    out.append(src, pos, i - pos);
    out += "<\\/script";
    pos = i + 8;
  }
  out.append(src, pos);
  return out;
}

const char* kStyle = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#1d1f23;padding:0 16px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccd;padding:4px 8px;text-align:right;vertical-align:top}th{background:#f2f3f7}
td.l,th.l{text-align:left}pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.35 ui-monospace,monospace}
#samples{table-layout:fixed;width:100%}#samples td,#samples th{overflow:hidden}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:16px}
.chart{border:1px solid #dde;border-radius:6px;padding:8px;height:260px}.warn{color:#a40}.muted{color:#667}
)";

// Draws the charts and fills the tables from the embedded JSON.
const char* kScript = R"JS(
const R = JSON.parse(document.getElementById('data').textContent);
const modes = R.mode_order || Object.keys(R.modes);
const colors = {none: '#9aa0ad', file: '#3b7dd8', cross: '#1f9d55'};
const fmt = (v, d) => (typeof v === 'number' ? v.toFixed(d) : String(v));
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; };
function row(cells, head) { const tr = el('tr'); cells.forEach((c, i) => tr.appendChild(el(head ? 'th' : 'td', c, i === 0 ? 'l' : ''))); return tr; }
const t = document.getElementById('summary');
t.appendChild(row(['context', 'samples', 'exact match %', 'chrF', 'chrF of shown', 'accepted chars', 'accepted share %', 'empty %', 'errors', 'prompt tokens', 'latency p50 ms', 'p90 ms'], true));
for (const m of modes) { const s = R.modes[m]; t.appendChild(row([m, s.samples, fmt(100 * s.exact_match, 1), fmt(s.chrf, 1), fmt(s.chrf_shown, 1), fmt(s.accepted_chars, 1), fmt(100 * s.accepted_share, 1), fmt(100 * s.empty_rate, 1), s.errors, fmt(s.prompt_tokens, 0), fmt(s.latency_ms.p50, 0), fmt(s.latency_ms.p90, 0)])); }
const st = document.getElementById('samples');
st.appendChild(row(['file:line', 'target'].concat(modes), true));
for (const s of R.samples.slice(0, 60)) {
  const tr = el('tr'); const a = el('td', s.path + ':' + s.line, 'l'); a.appendChild(el('div', s.commit.slice(0, 10), 'muted')); tr.appendChild(a);
  const tt = el('td', undefined, 'l'); tt.appendChild(el('pre', s.target)); tr.appendChild(tt);
  for (const m of modes) { const c = s.modes[m]; const td = el('td', undefined, 'l'); td.appendChild(el('pre', c.error ? 'error: ' + c.error : c.completion)); td.appendChild(el('div', (c.exact ? 'exact, ' : '') + 'chrF ' + fmt(c.chrf, 0) + ', ' + c.accepted + ' chars, ' + fmt(c.ms, 0) + ' ms', 'muted')); tr.appendChild(td); }
  st.appendChild(tr);
}
if (typeof Chart === 'undefined') {
  document.getElementById('charts').appendChild(el('p', 'Chart.js was not found when this report was written: tables only.', 'warn'));
} else {
  const bar = (id, label, f, max) => new Chart(document.getElementById(id), {type: 'bar',
    data: {labels: modes, datasets: [{label, data: modes.map(m => f(R.modes[m])), backgroundColor: modes.map(m => colors[m] || '#888')}]},
    options: {animation: false, maintainAspectRatio: false, plugins: {legend: {display: false}, title: {display: true, text: label}}, scales: {y: {beginAtZero: true, max}}}});
  bar('c_exact', 'exact match of the next line (%)', s => 100 * s.exact_match, undefined);
  bar('c_chrf', 'chrF (0-100)', s => s.chrf, undefined);
  bar('c_acc', 'accepted characters per suggestion', s => s.accepted_chars, undefined);
  bar('c_empty', 'empty suggestions (%)', s => 100 * s.empty_rate, undefined);
  // Latency: the share of suggestions ready within x ms, per context setting.
  const datasets = modes.map(m => { const v = R.samples.map(s => s.modes[m]).filter(c => !c.error).map(c => c.ms).sort((a, b) => a - b);
    return {label: m, data: v.map((x, i) => ({x, y: 100 * (i + 1) / v.length})), borderColor: colors[m] || '#888', pointRadius: 0, showLine: true, stepped: true}; });
  new Chart(document.getElementById('c_lat'), {type: 'scatter', data: {datasets},
    options: {animation: false, maintainAspectRatio: false, plugins: {title: {display: true, text: 'latency: % of suggestions ready within x ms'}},
      scales: {x: {title: {display: true, text: 'ms'}}, y: {min: 0, max: 100, title: {display: true, text: '%'}}}}});
  const chrfs = modes.map(m => { const h = new Array(10).fill(0); R.samples.forEach(s => { const c = s.modes[m]; if (!c.error) h[Math.min(9, Math.floor(c.chrf / 10))]++; }); return {label: m, data: h, backgroundColor: colors[m] || '#888'}; });
  new Chart(document.getElementById('c_hist'), {type: 'bar', data: {labels: ['0-10','10-20','20-30','30-40','40-50','50-60','60-70','70-80','80-90','90-100'], datasets: chrfs},
    options: {animation: false, maintainAspectRatio: false, plugins: {title: {display: true, text: 'chrF per suggestion (count)'}}}});
}
)JS";

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string replay_report_html(const nlohmann::json& report, const std::string& chartjs_source) {
  auto str = [&](const char* key) { return report.contains(key) ? report[key].dump() : std::string("?"); };
  std::string h;
  h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'\">\n";
  h += "<title>latent eval replay: " + html_escape(report.value("repo", "")) + "</title>\n<style>" + kStyle +
       "</style>\n</head><body>\n";
  h += "<h1>Replay of " + html_escape(report.value("repo", "")) + "</h1>\n";
  h += "<p>Revisions <code>" + html_escape(report.value("rev", "")) + "</code>, model <code>" +
       html_escape(report.value("model", "")) + "</code>, settings <code>" + html_escape(str("settings")) +
       "</code>.<br>Read from the history: <code>" + html_escape(str("counts")) + "</code>. Written " +
       html_escape(report.value("written", "")) + ".</p>\n";
  h += "<p class=\"muted\">Each sample is a cursor on an added line of a commit; the target is what the author wrote "
       "from there to the end of the hunk. <b>none</b>: the buffer holds only the line's indentation; "
       "<b>file</b>: the file as of the commit, without the rest of the hunk; <b>cross</b>: the same, with the "
       "repository as of the commit indexed as the workspace. Exact match compares the first line; chrF compares "
       "the suggestion with as many lines of the target; accepted characters are the common prefix.</p>\n";
  h += "<h2>Summary</h2>\n<table id=\"summary\"></table>\n";
  h += "<h2>Plots</h2>\n<div id=\"charts\" class=\"charts\">";
  for (const char* id : {"c_exact", "c_chrf", "c_acc", "c_empty", "c_lat", "c_hist"}) {
    h += std::string("<div class=\"chart\"><canvas id=\"") + id + "\"></canvas></div>";
  }
  h += "</div>\n<h2>Samples (the first 60)</h2>\n<table id=\"samples\"></table>\n";
  h += "<script type=\"application/json\" id=\"data\">" + script_json(report) + "</script>\n";
  if (!chartjs_source.empty()) {
    h += "<script>/* Chart.js (MIT licence, https://www.chartjs.org), inlined */\n" + script_source(chartjs_source) +
         "\n</script>\n";
  }
  h += std::string("<script>") + kScript + "</script>\n</body></html>\n";
  return h;
}

}  // namespace latent::eval
