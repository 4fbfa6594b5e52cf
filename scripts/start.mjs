#!/usr/bin/env node
// npm start: builds the wasm package if it is missing or older than the Rust sources, fetches
// the models if they are missing, then serves the demo page (`--build-only`: no serving).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, run } from './lib.mjs';
import { startServer } from './serve.mjs';

function newestMtime(paths) {
  let newest = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const info = statSync(path);
    if (info.isDirectory()) {
      newest = Math.max(newest, newestMtime(readdirSync(path).map((name) => join(path, name))));
    } else {
      newest = Math.max(newest, info.mtimeMs);
    }
  }
  return newest;
}

function wasmIsStale() {
  // build:wasm writes pkg/build.json last, and touches it when the module was already current.
  const built = join(ROOT, 'pkg', 'build.json');
  const outputs = ['glimpse.js', 'glimpse_bg.wasm', 'glimpse_vision.js', 'glimpse_vision_bg.wasm', 'glimpse_threads.js', 'glimpse_threads_bg.wasm', 'build.json'].map((name) => join(ROOT, 'pkg', name));
  if (!outputs.every(existsSync)) return true;
  const sources = ['src', 'data', 'Cargo.toml', 'Cargo.lock', '.cargo/config.toml'].map((p) => join(ROOT, p));
  return newestMtime(sources) > statSync(built).mtimeMs;
}

if (wasmIsStale()) run('npm', ['run', 'build:wasm']);
if (!existsSync(join(ROOT, 'models', 'manifest.json'))) run('npm', ['run', 'fetch-models']);
// `--build-only`: what the tests need, without serving (the converter: `npx @seed/glimpse models`).
if (process.argv.includes('--build-only')) {
  run('node', ['scripts/build-converter.mjs']);
  process.exit(0);
}

const port = Number(process.env.PORT ?? 8080);
const { url } = await startServer({ root: ROOT, port, isolated: true });
console.log(`glimpse: open ${url} (Ctrl-C to stop)`);
