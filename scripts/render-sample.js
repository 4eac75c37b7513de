#!/usr/bin/env node
'use strict';
// Renders the package's sample image procedurally (no third-party artwork), for `conv-transpose upsample`:
//   assets/sample.png              64x64 RGB, hard-edged shapes so that the upsampling is visible (shipped)
//   docs/sample-nearest-x4.png     the same enlarged 4x by pixel repetition, for the README's comparison
// Deterministic: the same bytes on every run. Usage: node scripts/render-sample.js
const fs = require('fs');
const path = require('path');
const { PNG } = require('pngjs');

const root = path.resolve(__dirname, '..');
const SIZE = 64;

// A 3x5 bitmap font for the few letters drawn on the sample.
const GLYPHS = {
  C: ['111', '100', '100', '100', '111'],
  T: ['111', '010', '010', '010', '010'],
  x: ['000', '101', '010', '101', '000'],
  4: ['101', '101', '111', '001', '001'],
};

function render() {
  const img = new Uint8Array(SIZE * SIZE * 3);
  const set = (x, y, [r, g, b]) => {
    if (x < 0 || y < 0 || x >= SIZE || y >= SIZE) return;
    const i = (y * SIZE + x) * 3;
    img[i] = r;
    img[i + 1] = g;
    img[i + 2] = b;
  };
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      if (y < 40) {
        // sky: a vertical gradient from deep blue to pale cyan
        const t = y / 39;
        set(x, y, [Math.round(30 + 120 * t), Math.round(60 + 150 * t), Math.round(160 + 80 * t)]);
      } else {
        // ground: green with darker stripes one pixel wide every 4 rows
        set(x, y, (y - 40) % 4 === 3 ? [30, 110, 40] : [60, 170, 70]);
      }
    }
  }
  // sun: a hard-edged disc
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const d2 = (x - 48) ** 2 + (y - 14) ** 2;
      if (d2 <= 81) set(x, y, [255, 200, 40]);
      if (d2 <= 25) set(x, y, [255, 240, 120]);
    }
  }
  // mountain: a red-brown triangle with a white cap
  for (let y = 18; y < 40; y++) {
    const half = Math.floor((y - 18) * 0.9);
    for (let x = 22 - half; x <= 22 + half; x++) set(x, y, y < 24 ? [245, 245, 250] : [150, 70, 50]);
  }
  // checkerboard of 2x2 squares, bottom left
  for (let y = 46; y < 62; y++) {
    for (let x = 2; x < 18; x++) {
      const on = ((x - 2) >> 1) % 2 === ((y - 46) >> 1) % 2;
      set(x, y, on ? [250, 250, 250] : [20, 20, 20]);
    }
  }
  // one-pixel diagonal lines in magenta and cyan
  for (let i = 0; i < 16; i++) {
    set(24 + i, 46 + i, [230, 30, 200]);
    set(39 - i, 46 + i, [20, 220, 230]);
  }
  // "CTx4" in 3x5 glyphs, black on a white label
  for (let y = 48; y < 57; y++) for (let x = 43; x < 62; x++) set(x, y, [255, 255, 255]);
  let cx = 45;
  for (const ch of 'CTx4') {
    GLYPHS[ch].forEach((row, gy) => {
      for (let gx = 0; gx < 3; gx++) if (row[gx] === '1') set(cx + gx, 50 + gy, [10, 10, 10]);
    });
    cx += 4;
  }
  return img;
}

function writePng(file, width, height, rgb) {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    png.data[i * 4] = rgb[i * 3];
    png.data[i * 4 + 1] = rgb[i * 3 + 1];
    png.data[i * 4 + 2] = rgb[i * 3 + 2];
    png.data[i * 4 + 3] = 255;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 2 }));
  console.log(`wrote ${path.relative(root, file)} (${width}x${height})`);
}

function nearest(rgb, size, f) {
  const out = new Uint8Array(size * f * size * f * 3);
  for (let y = 0; y < size * f; y++) {
    for (let x = 0; x < size * f; x++) {
      const s = (Math.floor(y / f) * size + Math.floor(x / f)) * 3;
      out.set(rgb.subarray(s, s + 3), (y * size * f + x) * 3);
    }
  }
  return out;
}

const rgb = render();
writePng(path.join(root, 'assets', 'sample.png'), SIZE, SIZE, rgb);
writePng(path.join(root, 'docs', 'sample-nearest-x4.png'), SIZE * 4, SIZE * 4, nearest(rgb, SIZE, 4));
