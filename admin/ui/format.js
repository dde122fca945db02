// Formatting shared by the pages: local times, percentages, latencies, durations.

const pad = (n, w = 2) => String(n).padStart(w, '0');

// Unix ms or an ISO string → "YYYY-MM-DD HH:MM:SS" in local time.
export function fmtTime(t) {
  if (t === null || t === undefined || t === '' || t === 0) return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
         `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// A number with at most `digits` decimals, trailing zeros dropped: 12.5, 10, 0.25.
export function fmtNum(x, digits = 2) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return String(Number(Number(x).toFixed(digits)));
}

// A weight (already a percentage, up to 4 decimals): "12.5%".
export const fmtWeight = (w) => `${fmtNum(w, 4)}%`;

// A share 0..1 as a percentage: "1.2%".
export function fmtPct(share, digits = 1) {
  if (share === null || share === undefined || Number.isNaN(share)) return '–';
  return `${fmtNum(share * 100, digits)}%`;
}

// Milliseconds: "0.42 ms", "12.3 ms", "1.25 s".
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms >= 1000) return `${fmtNum(ms / 1000, 2)} s`;
  return `${fmtNum(ms, ms < 10 ? 2 : 1)} ms`;
}

// A duration in ms: "42s", "3m 05s", "2h 04m", "3d 2h".
export function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor(s / 3600) % 24}h`;
}

// A count with thousands separators.
export const fmtCount = (n) => (n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'));
