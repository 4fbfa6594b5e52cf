#!/usr/bin/env node
// npm run build:wasm: compiles the crate to wasm32, generates the JS bindings into pkg/ and
// optimizes the module with binaryen's wasm-opt (from npm: Debian's binaryen 108 corrupts
// wasm-bindgen output). Prints the raw, optimized and gzipped sizes.

import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT, TOOLS, findWasmBindgen, lockedVersion, pruneCache, run, targetDir } from './lib.mjs';

const PKG = join(ROOT, 'pkg');
const TARGET = 'wasm32-unknown-unknown';

// The features rustc's wasm32 target emits by default (plus SIMD, enabled in
// .cargo/config.toml); wasm-opt must accept them all.
const WASM_FEATURES = [
  '--enable-bulk-memory',
  '--enable-bulk-memory-opt',
  '--enable-mutable-globals',
  '--enable-nontrapping-float-to-int',
  '--enable-sign-ext',
  '--enable-reference-types',
  '--enable-multivalue',
  '--enable-simd',
];

const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;

const wasmBindgen = findWasmBindgen();
if (!wasmBindgen) {
  throw new Error(
    `wasm-bindgen ${lockedVersion('wasm-bindgen')} not found. Install it with\n` +
      `  cargo install wasm-bindgen-cli --version ${lockedVersion('wasm-bindgen')} --root ${TOOLS}\n` +
      'or point WASM_BINDGEN at it (`node scripts/setup.mjs` does the install).',
  );
}
const wasmOpt = join(ROOT, 'node_modules', '.bin', 'wasm-opt');
if (!existsSync(wasmOpt)) throw new Error('wasm-opt is missing: run `node scripts/setup.mjs` first');

// Cargo.toml's `wasm` profile: release with fat LTO, one codegen unit, and the crates off the
// per-frame path optimized for size (the native builds keep `release`).
const PROFILE = 'wasm';
run('cargo', ['build', '--lib', '--profile', PROFILE, '--target', TARGET]);
const compiled = join(targetDir(), TARGET, PROFILE, 'glimpse.wasm');

// wasm-opt takes minutes: skip the rest when cargo's output is what pkg/ was built from.
const BUILD_INFO = join(PKG, 'build.json');
const compiledSha256 = createHash('sha256').update(readFileSync(compiled)).digest('hex');
const previous = existsSync(BUILD_INFO) ? JSON.parse(readFileSync(BUILD_INFO, 'utf8')) : null;
const force = process.argv.includes('--force');
if (!force && previous?.compiledSha256 === compiledSha256 && existsSync(join(PKG, 'glimpse_bg.wasm'))) {
  const now = new Date();
  utimesSync(BUILD_INFO, now, now); // `npm start` compares the sources' times with this file's
  console.log('pkg/ is up to date with the compiled module (pass --force to rebuild it)');
  process.exit(0);
}

// Other clones on this machine (CI's among them) may have built this very module already:
// the last few packages are kept under ~/.cache/seed-wasm, keyed by what went into them.
const CACHE_ROOT = join(homedir(), '.cache', 'seed-wasm');
const cacheKey = createHash('sha256')
  .update([compiledSha256, lockedVersion('wasm-bindgen'), ...WASM_FEATURES].join(' '))
  .digest('hex')
  .slice(0, 32);
const CACHED = join(CACHE_ROOT, cacheKey);
if (!force && existsSync(join(CACHED, 'build.json'))) {
  rmSync(PKG, { recursive: true, force: true });
  cpSync(CACHED, PKG, { recursive: true });
  const now = new Date();
  utimesSync(BUILD_INFO, now, now);
  console.log(`pkg/ restored from ${CACHED}`);
  process.exit(0);
}

rmSync(PKG, { recursive: true, force: true });
run(wasmBindgen, ['--target', 'web', '--out-dir', PKG, '--out-name', 'glimpse', compiled]);

const bindgenOutput = join(PKG, 'glimpse_bg.wasm');
const unoptimized = join(PKG, 'glimpse_bg.unopt.wasm');
renameSync(bindgenOutput, unoptimized);
run(wasmOpt, ['-O', ...WASM_FEATURES, unoptimized, '-o', bindgenOutput]);
const rawBytes = statSync(unoptimized).size;
rmSync(unoptimized);

const optimized = readFileSync(bindgenOutput);
const sizes = { raw: rawBytes, optimized: optimized.length, gzipped: gzipSync(optimized, { level: 9 }).length };
writeFileSync(BUILD_INFO, JSON.stringify({ compiledSha256, sizes }, null, 2) + '\n');
console.log(
  `pkg/glimpse_bg.wasm: raw ${kb(sizes.raw)}, optimized ${kb(sizes.optimized)}, gzipped ${kb(sizes.gzipped)}`,
);
rmSync(CACHED, { recursive: true, force: true });
cpSync(PKG, CACHED, { recursive: true });
pruneCache(CACHE_ROOT);
