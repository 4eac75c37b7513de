'use strict';
// Hand-written SVG chart of a results.json: per shape, grouped horizontal bars of GFLOP/s on a log axis.
// Z (2 FLOP, the overhead floor) has no meaningful GFLOP/s and is left out.

const SERIES = [
  { key: 'nativeT2', label: 'conv-transpose native, 2 threads', color: '#1f6feb' },
  { key: 'nativeT2out', label: 'native, 2 threads, reused out buffer', color: '#8ab4f8' },
  { key: 'ortT2', label: 'onnxruntime-node, 2 threads', color: '#e8710a' },
  { key: 'onednnT2', label: 'oneDNN (PyTorch), 2 threads, measured here', color: '#9334e6' },
  { key: 'bestPeer', label: 'best peer T2 (anchors.md, scaled by ORT now)', color: '#9aa0a6' },
  { key: 'ts', label: 'conv-transpose TypeScript', color: '#188038' },
  { key: 'tfjs', label: 'tfjs-cpu', color: '#c5221f' },
];

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(g) {
  if (g >= 100) return g.toFixed(0);
  if (g >= 1) return g.toPrecision(3);
  return g.toPrecision(2);
}

function valuesOf(shape) {
  const v = {};
  for (const s of SERIES) {
    if (s.key === 'bestPeer') {
      const ms = shape.bestPeerT2ScaledMs;
      v.bestPeer = ms > 0 ? (shape.gflop * 1e3) / ms : NaN;
    } else {
      const c = shape.cells[s.key];
      v[s.key] = c && c.gflops > 0 ? c.gflops : NaN;
    }
  }
  return v;
}

function renderChart(results) {
  const shapes = results.shapes.filter((s) => s.id !== 'Z');
  const rows = shapes.map((s) => ({ s, v: valuesOf(s) }));
  const all = rows.flatMap((r) => Object.values(r.v)).filter((x) => x > 0);
  const peak2 = results.machine && results.machine.peak ? results.machine.peak.fp32[2] : NaN;
  if (peak2 > 0) all.push(peak2);
  const lo = all.length ? 10 ** Math.floor(Math.log10(Math.min(...all))) : 0.1;
  const hi = all.length ? 10 ** Math.ceil(Math.log10(Math.max(...all))) : 1000;

  const W = 980;
  const left = 250;
  const right = 70;
  const barH = 9;
  const groupGap = 16;
  const top = 58 + 16 * Math.ceil(SERIES.length / 2);
  const plotW = W - left - right;
  const groupH = SERIES.length * barH + groupGap;
  const H = top + rows.length * groupH + 50;
  const x = (g) => left + (plotW * (Math.log10(g) - Math.log10(lo))) / (Math.log10(hi) - Math.log10(lo));

  const m = results.machine || {};
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="${left}" y="20" font-size="15" font-weight="bold">conv_transpose2d float32, GFLOP/s (log scale; higher is better)</text>`);
  o.push(`<text x="${left}" y="37" fill="#555">${esc(`${m.cpu || ''}, ${m.logicalCpus || '?'} CPUs, node ${m.node || ''}, ${m.isa || m.backend || ''}, ${(m.date || '').slice(0, 10)}; fresh output per call unless noted`)}</text>`);
  SERIES.forEach((s, i) => {
    const lx = left + (i % 2) * 340;
    const ly = 52 + 16 * Math.floor(i / 2);
    o.push(`<rect x="${lx}" y="${ly - 9}" width="12" height="10" fill="${s.color}"/><text x="${lx + 17}" y="${ly}">${esc(s.label)}</text>`);
  });

  // Zebra backgrounds first, then the decade grid over them.
  rows.forEach((_, gi) => {
    if (gi % 2 === 1) o.push(`<rect x="0" y="${top + gi * groupH - groupGap / 2}" width="${W}" height="${groupH}" fill="#f6f8fa"/>`);
  });
  const plotBottom = top + rows.length * groupH - groupGap / 2;
  for (let e = Math.log10(lo); e <= Math.log10(hi) + 1e-9; e++) {
    const g = 10 ** e;
    const gx = x(g).toFixed(1);
    o.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${plotBottom}" stroke="#ddd"/>`);
    o.push(`<text x="${gx}" y="${plotBottom + 14}" text-anchor="middle" fill="#444">${g >= 1 ? g.toFixed(0) : g}</text>`);
  }
  o.push(`<text x="${left + plotW / 2}" y="${plotBottom + 30}" text-anchor="middle" fill="#444">GFLOP/s</text>`);
  if (peak2 > 0) {
    const px = x(peak2).toFixed(1);
    o.push(`<line x1="${px}" y1="${top - 6}" x2="${px}" y2="${plotBottom}" stroke="#a142f4" stroke-dasharray="4 3"/>`);
    o.push(`<text x="${px}" y="${top - 9}" text-anchor="middle" fill="#a142f4">fp32 peak, 2 threads (${fmt(peak2)})</text>`);
  }

  rows.forEach(({ s, v }, gi) => {
    const gy = top + gi * groupH;
    o.push(`<text x="${left - 8}" y="${gy + 12}" text-anchor="end" font-weight="bold">${esc(s.id)}</text>`);
    const desc = s.desc.length > 38 ? `${s.desc.slice(0, 37)}…` : s.desc;
    o.push(`<text x="${left - 8}" y="${gy + 26}" text-anchor="end" fill="#555">${esc(desc)}</text>`);
    o.push(`<text x="${left - 8}" y="${gy + 40}" text-anchor="end" fill="#777">${esc(`${s.gflop.toPrecision(3)} GFLOP`)}</text>`);
    SERIES.forEach((ser, si) => {
      const by = gy + si * barH;
      const g = v[ser.key];
      if (g > 0) {
        const w = Math.max(1, x(g) - left);
        o.push(`<rect x="${left}" y="${by}" width="${w.toFixed(1)}" height="${barH - 1}" fill="${ser.color}"><title>${esc(`${ser.label}: ${fmt(g)} GFLOP/s`)}</title></rect>`);
        o.push(`<text x="${(left + w + 3).toFixed(1)}" y="${by + barH - 1}" font-size="9" fill="#333">${fmt(g)}</text>`);
      } else {
        o.push(`<text x="${left + 3}" y="${by + barH - 1}" font-size="9" fill="#999">${esc(ser.key === 'tfjs' || ser.key === 'bestPeer' ? 'n/a' : '–')}</text>`);
      }
    });
  });
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

module.exports = { renderChart };
