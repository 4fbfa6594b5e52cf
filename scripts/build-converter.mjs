#!/usr/bin/env node
// npm run build:converter: compiles the crate's converters (`glimpse-convert`, the conversions
// of `glimpse models fetch`) for wasm32-wasip1 into pkg-convert/glimpse-convert.wasm, which
// `npx @seed/glimpse models` runs in Node. The last few results are kept under ~/.cache/seed-convert
// (beside build-wasm's ~/.cache/seed-wasm, which prunes its own), keyed by the sources that went
// into them, so a fresh clone (CI) with the same sources skips cargo.

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, pruneCache, run, succeeds, targetDir } from './lib.mjs';

const TARGET = 'wasm32-wasip1';
const OUT = join(ROOT, 'pkg-convert');
const WASM = join(OUT, 'glimpse-convert.wasm');
const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;

function files(path) {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => files(join(path, name)));
}

// What the module is built from: the crate's sources and data, the manifests, the lockfile,
// the rustflags, and the compiler.
const hash = createHash('sha256');
for (const file of ['src', 'data', 'Cargo.toml', 'Cargo.lock', '.cargo/config.toml'].flatMap((p) => files(join(ROOT, p)))) {
  hash.update(relative(ROOT, file)).update('\0').update(readFileSync(file)).update('\0');
}
hash.update(succeeds('rustc', ['--version']) ?? 'rustc ?');
const key = hash.digest('hex').slice(0, 32);
const CACHE_ROOT = join(homedir(), '.cache', 'seed-convert');
const CACHED = join(CACHE_ROOT, key, 'glimpse-convert.wasm');
const BUILD_INFO = join(OUT, 'build.json');

const previous = existsSync(BUILD_INFO) ? JSON.parse(readFileSync(BUILD_INFO, 'utf8')) : null;
if (!process.argv.includes('--force') && previous?.key === key && existsSync(WASM)) {
  console.log('pkg-convert/ is up to date with the sources (pass --force to rebuild it)');
  process.exit(0);
}

mkdirSync(OUT, { recursive: true });
if (!process.argv.includes('--force') && existsSync(CACHED)) {
  copyFileSync(CACHED, WASM);
  const now = new Date();
  utimesSync(join(CACHED, '..'), now, now); // recently used: kept by the pruning below
  console.log(`pkg-convert/glimpse-convert.wasm restored from ${CACHED}`);
} else {
  const installed = succeeds('rustup', ['target', 'list', '--installed']) ?? '';
  if (!installed.includes(TARGET)) run('rustup', ['target', 'add', TARGET]);
  run('cargo', ['build', '--release', '--target', TARGET, '--no-default-features', '--features', 'converter', '--bin', 'glimpse-convert']);
  copyFileSync(join(targetDir(), TARGET, 'release', 'glimpse-convert.wasm'), WASM);
  mkdirSync(join(CACHED, '..'), { recursive: true });
  copyFileSync(WASM, CACHED);
  pruneCache(CACHE_ROOT);
}
const bytes = readFileSync(WASM);
const sizes = { raw: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
writeFileSync(BUILD_INFO, JSON.stringify({ key, sizes }, null, 2) + '\n');
console.log(`pkg-convert/glimpse-convert.wasm: ${kb(sizes.raw)}, gzipped ${kb(sizes.gzipped)}`);
