#!/usr/bin/env node
// node scripts/first-visit.mjs [MODELS_DIR]: what a first visit downloads before its first
// prediction (the wasm module and the image model's weights), once per weights file the
// manifest lists, as a Markdown table. `npm run bench:browser` prints it too.
//
// The wasm is counted as a server would send it compressed (gzip -9, and brotli at quality 11
// where the server can send it); the weights as they are, since the page fetches them as
// binary and a server rarely compresses those (their own gzipped size is shown beside them).

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { ROOT } from './lib.mjs';

const MB = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;
const brotli = (bytes) => brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

/** The table's lines, or a one-line note when the wasm or the manifest is missing. */
export function firstVisitTable(models = join(ROOT, 'models')) {
  // The engine's vision build: the full one (labels, captions) is fetched when first used.
  const wasmPath = join(ROOT, 'pkg', 'glimpse_vision_bg.wasm');
  const manifestPath = join(models, 'manifest.json');
  if (!existsSync(wasmPath) || !existsSync(manifestPath)) {
    return ['first visit: not measured (needs pkg/ from `npm run build:wasm` and the models directory)'];
  }
  const wasm = readFileSync(wasmPath);
  const [wasmGz, wasmBr] = [gzipSync(wasm, { level: 9 }).length, brotli(wasm)];
  const images = JSON.parse(readFileSync(manifestPath, 'utf8')).models.filter((m) => m.name === 'efficientnet-lite0');
  const lines = [
    `First visit before the first prediction (${new Date().toISOString().slice(0, 10)}): wasm (vision build) ${MB(wasm.length)}, ${MB(wasmGz)} gzipped, ${MB(wasmBr)} brotli`,
    '',
    '| image weights | weights | (gzipped) | wasm gz + weights | wasm brotli + weights |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const entry of images) {
    const weights = readFileSync(join(models, entry.file));
    lines.push(
      `| ${entry.dtype} (${entry.file}) | ${MB(entry.bytes)} | ${MB(gzipSync(weights, { level: 9 }).length)} | ${MB(wasmGz + entry.bytes)} | ${MB(wasmBr + entry.bytes)} |`,
    );
  }
  return lines;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(firstVisitTable(process.argv[2] ? resolve(process.argv[2]) : undefined).join('\n'));
}
