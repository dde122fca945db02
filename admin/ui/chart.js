// Small SVG line charts: canary against baseline over the last minutes, with y-axis labels, a
// legend and the latest values. Colours come from the series' classes (style.css).

const NS = 'http://www.w3.org/2000/svg';
const HEIGHT = 110;
const M = { left: 34, right: 6, top: 6, bottom: 16 };

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// 1, 2, 5 × 10^k at or above x.
function niceCeil(x) {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x * 0.999) return m * p;
  return 10 * p;
}

// Axis labels: short numbers (the unit is in the title).
function axisLabel(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(v < 1 ? 3 : 1));
}

// drawChart(el, {title, fmt, t0, t1, series: [{name, cls, points: [[t_ms, value|null], ...]}]})
// Redraws `el` completely; values that are null leave a gap in the line. `fmt` formats the
// latest values shown in the legend.
export function drawChart(el, { title, fmt, t0, t1, series }) {
  const width = Math.max(200, Math.floor(el.clientWidth || 280));
  const w = width - M.left - M.right, hgt = HEIGHT - M.top - M.bottom;
  let max = 0;
  for (const s of series) for (const [, v] of s.points) if (v !== null && v > max) max = v;
  const top = niceCeil(max);
  const x = (t) => M.left + ((t - t0) / Math.max(1, t1 - t0)) * w;
  const y = (v) => M.top + hgt - (v / top) * hgt;

  const chart = svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': title });
  for (const v of [0, top / 2, top]) {
    chart.append(svg('line', { class: 'grid', x1: M.left, x2: width - M.right, y1: y(v), y2: y(v) }));
    const label = svg('text', { class: 'axis', x: M.left - 4, y: y(v) + 3, 'text-anchor': 'end' });
    label.textContent = axisLabel(v);
    chart.append(label);
  }
  const secs = Math.round((t1 - t0) / 1000);
  for (const [t, text, anchor] of [[t0, `-${secs}s`, 'start'], [(t0 + t1) / 2, `-${Math.round(secs / 2)}s`, 'middle'], [t1, 'now', 'end']]) {
    const label = svg('text', { class: 'axis', x: x(t), y: HEIGHT - 3, 'text-anchor': anchor });
    label.textContent = text;
    chart.append(label);
  }
  for (const s of series) {
    let d = '', pen = false;
    for (const [t, v] of s.points) {
      if (t < t0 || v === null || v === undefined) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d) chart.append(svg('path', { class: `line ${s.cls}`, d }));
  }

  const legend = document.createElement('div');
  legend.className = 'legend';
  for (const s of series) {
    let last = null;
    for (const [, v] of s.points) if (v !== null && v !== undefined) last = v;
    const item = document.createElement('span');
    item.className = `legend-item ${s.cls}`;
    item.dataset.series = s.name;
    const swatch = document.createElement('i');
    swatch.className = 'swatch';
    item.append(swatch, `${s.name || '(all)'} `);
    const value = document.createElement('b');
    value.className = 'latest';
    value.textContent = last === null ? '–' : fmt(last);
    item.append(value);
    legend.append(item);
  }
  const head = document.createElement('div');
  head.className = 'chart-head';
  const name = document.createElement('span');
  name.className = 'chart-title';
  name.textContent = title;
  head.append(name, legend);
  el.replaceChildren(head, chart);
}
