#!/usr/bin/env node
// npm run bench [-- --threads 1]: the native tables (`glimpse bench`: image model with
// onnxruntime, caption model with candle's quantized LLaMA), then the browser tables
// (`npm run bench:browser`). Builds the bench-only candle peer (bench/candle-llama) into its
// own target directory first; it takes minutes once.

import { homedir } from 'node:os';
import { join } from 'node:path';
import { run } from './lib.mjs';

const args = process.argv.slice(2);
const candleTarget = process.env.GLIMPSE_CANDLE_TARGET_DIR ?? join(homedir(), '.cache', 'seed-target-candle');

try {
  // candle's own examples build with target-cpu=native; without it its Q4_1 products run ~2.5× slower.
  run('cargo', ['build', '--release', '--locked', '--manifest-path', 'bench/candle-llama/Cargo.toml'], {
    env: { CARGO_TARGET_DIR: candleTarget, RUSTFLAGS: '-C target-cpu=native' },
  });
} catch {
  console.warn('bench/candle-llama did not build; the caption table will go without its peer');
}
run('cargo', ['run', '--release', '--', 'bench', ...args], { env: { GLIMPSE_CANDLE_TARGET_DIR: candleTarget } });
run('node', ['scripts/bench-browser.mjs']);
