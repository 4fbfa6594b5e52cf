#!/usr/bin/env node
// npm run build:wasm: compiles the crate to wasm32 three times, generates the JS bindings into
// pkg/ and optimizes each module with binaryen's wasm-opt (from npm: Debian's binaryen 108
// corrupts wasm-bindgen output). Prints the raw, optimized and gzipped sizes.
//   pkg/glimpse_vision.*   without the `text` feature: classification and teaching, the module
//                          a page loads first;
//   pkg/glimpse.*          everything (labels and captions too), loaded when they are first
//                          asked for, and the one Node.js runs;
//   pkg/glimpse_threads.*  everything but WebGPU, on a pool of threads (shared memory and
//                          atomics): the CPU engine of a cross-origin-isolated page. Built with
//                          the pinned nightly (`-Z build-std`: the standard library itself must
//                          be compiled with atomics), in its own target directory.

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { NIGHTLY, ROOT, TOOLS, findWasmBindgen, lockedVersion, pruneCache, run, targetDir } from './lib.mjs';

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
// per-frame path optimized for size (the native builds keep `release`). Both modules share its
// dependencies; only the crate itself is compiled (and linked) once per module.
const PROFILE = 'wasm';
// The threaded build's flags replace .cargo/config.toml's for wasm32 (RUSTFLAGS wins over it),
// so they repeat them. The linker is told to make the memory shared, imported (each thread's
// instance gets the same one) and at most 4 GiB (what wasm32 addresses; shared memory needs a
// maximum), and to export what wasm-bindgen sets each thread's thread-local storage up with.
const THREADS_RUSTFLAGS = [
  '-C target-feature=+atomics,+bulk-memory,+simd128',
  ...['--shared-memory', '--import-memory', '--max-memory=4294967296'].map((arg) => `-C link-arg=${arg}`),
  ...['__wasm_init_tls', '__tls_size', '__tls_align', '__tls_base'].map((symbol) => `-C link-arg=--export=${symbol}`),
  '--cfg getrandom_backend="wasm_js"',
].join(' ');
const MODULES = [
  { name: 'glimpse', cargoArgs: [] },
  { name: 'glimpse_vision', cargoArgs: ['--no-default-features', '--features', 'gpu'] },
  {
    name: 'glimpse_threads',
    toolchain: NIGHTLY,
    cargoArgs: ['--no-default-features', '--features', 'text,threads', '-Z', 'build-std=std,panic_abort'],
    env: { RUSTFLAGS: THREADS_RUSTFLAGS },
    targetDir: join(targetDir(), 'threads'),
    wasmFeatures: ['--enable-threads'],
  },
];
mkdirSync(PKG, { recursive: true });
for (const module of MODULES) {
  const env = { ...module.env, ...(module.targetDir && { CARGO_TARGET_DIR: module.targetDir }) };
  const toolchain = module.toolchain ? [`+${module.toolchain}`] : [];
  run('cargo', [...toolchain, 'build', '--lib', '--profile', PROFILE, '--target', TARGET, ...module.cargoArgs], { env });
  const compiledDir = join(module.targetDir ?? targetDir(), TARGET, PROFILE);
  module.compiled = join(compiledDir, `${module.name}.compiled.wasm`);
  // The next build writes the same file: each module's is kept under its own name.
  copyFileSync(join(compiledDir, 'glimpse.wasm'), module.compiled);
  const compiled = readFileSync(module.compiled);
  // wasm-ld wraps every export in a call to the static constructors (`name.command_export` in
  // the module's names) unless the module calls them itself, as `start` in src/web/mod.rs
  // does: with the wrappers each JS value crossing into Rust ran them again.
  if (compiled.includes('.command_export')) {
    throw new Error(`${module.name}: wasm-ld wrapped the exports in calls to the static constructors; the start function must call __wasm_call_ctors`);
  }
  module.compiledSha256 = createHash('sha256').update(compiled).digest('hex');
}

// wasm-opt takes minutes: skip the rest when cargo's output is what pkg/ was built from.
const BUILD_INFO = join(PKG, 'build.json');
const previous = existsSync(BUILD_INFO) ? JSON.parse(readFileSync(BUILD_INFO, 'utf8')) : null;
const force = process.argv.includes('--force');
const current = (module) =>
  previous?.modules?.[module.name]?.compiledSha256 === module.compiledSha256 && existsSync(join(PKG, `${module.name}_bg.wasm`));
if (!force && MODULES.every(current)) {
  const now = new Date();
  utimesSync(BUILD_INFO, now, now); // `npm start` compares the sources' times with this file's
  console.log('pkg/ is up to date with the compiled modules (pass --force to rebuild them)');
  process.exit(0);
}

// Other clones on this machine (CI's among them) may have built this very module already:
// the last few are kept under ~/.cache/seed-wasm, keyed by what went into them.
const CACHE_ROOT = join(homedir(), '.cache', 'seed-wasm');
const files = (name) => [`${name}.js`, `${name}.d.ts`, `${name}_bg.wasm`, `${name}_bg.wasm.d.ts`];
const info = { modules: {} };
for (const module of MODULES) {
  const { name } = module;
  if (!force && current(module)) {
    info.modules[name] = previous.modules[name];
    continue;
  }
  const cacheKey = createHash('sha256')
    .update([name, module.compiledSha256, lockedVersion('wasm-bindgen'), ...WASM_FEATURES, ...(module.wasmFeatures ?? [])].join(' '))
    .digest('hex')
    .slice(0, 32);
  const cached = join(CACHE_ROOT, cacheKey);
  if (!force && existsSync(join(cached, 'build.json'))) {
    for (const file of files(name)) copyFileSync(join(cached, file), join(PKG, file));
    info.modules[name] = JSON.parse(readFileSync(join(cached, 'build.json'), 'utf8'));
    console.log(`pkg/${name}_bg.wasm restored from ${cached}`);
    continue;
  }
  for (const file of files(name)) rmSync(join(PKG, file), { force: true });
  run(wasmBindgen, ['--target', 'web', '--out-dir', PKG, '--out-name', name, module.compiled]);
  const output = join(PKG, `${name}_bg.wasm`);
  const unoptimized = join(PKG, `${name}_bg.unopt.wasm`);
  copyFileSync(output, unoptimized);
  run(wasmOpt, ['-O', ...WASM_FEATURES, ...(module.wasmFeatures ?? []), unoptimized, '-o', output]);
  const rawBytes = statSync(unoptimized).size;
  rmSync(unoptimized);
  const optimized = readFileSync(output);
  const sizes = { raw: rawBytes, optimized: optimized.length, gzipped: gzipSync(optimized, { level: 9 }).length };
  info.modules[name] = { compiledSha256: module.compiledSha256, sizes };
  console.log(`pkg/${name}_bg.wasm: raw ${kb(sizes.raw)}, optimized ${kb(sizes.optimized)}, gzipped ${kb(sizes.gzipped)}`);
  rmSync(cached, { recursive: true, force: true });
  mkdirSync(cached, { recursive: true });
  for (const file of files(name)) copyFileSync(join(PKG, file), join(cached, file));
  writeFileSync(join(cached, 'build.json'), JSON.stringify(info.modules[name], null, 2) + '\n');
}
// Written last: `npm start` takes it for the sign that pkg/ is complete.
writeFileSync(BUILD_INFO, JSON.stringify(info, null, 2) + '\n');
// The last three builds of each of the three modules.
pruneCache(CACHE_ROOT, 9);
