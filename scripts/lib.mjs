// What every script shares: the repository root, running a command the way the scripts show
// it, and finding the tools (wasm-bindgen, the native `glimpse` binary, cargo's target dir).

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** Where the set-up installs tools (wasm-bindgen-cli) outside the clone. */
export const TOOLS = join(homedir(), '.cache', 'tools');

/** Prints `$ command args…`, then runs it in ROOT with the output shown; throws if it fails. */
export function run(command, args = [], { env = {}, ...options } = {}) {
  console.log(`$ ${[command, ...args].join(' ')}`);
  execFileSync(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env }, ...options });
}

/** The command's standard output, or null when it cannot be run or fails. */
export function succeeds(command, args = []) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

/**
 * The nightly toolchain the threaded wasm build needs (atomics, and the standard library
 * rebuilt with them: `-Z build-std`), pinned so that a fresh machine builds the same module.
 * Everything else builds with the stable toolchain.
 */
export const NIGHTLY = 'nightly-2026-05-20';

/** The version of `crate` that Cargo.lock pins. */
export function lockedVersion(crate) {
  const lock = readFileSync(join(ROOT, 'Cargo.lock'), 'utf8');
  const match = lock.match(new RegExp(`name = "${crate}"\\nversion = "([^"]+)"`));
  if (!match) throw new Error(`${crate} is not in Cargo.lock`);
  return match[1];
}

/** Cargo's build directory: CARGO_TARGET_DIR when set, else ./target. */
export function targetDir() {
  return process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
}

/**
 * The wasm-bindgen CLI whose version is Cargo.lock's (the bindings must match the crate):
 * WASM_BINDGEN, then the PATH, ~/.cache/tools and ~/.cargo. Null when none is.
 */
export function findWasmBindgen({ quiet = false } = {}) {
  const version = lockedVersion('wasm-bindgen');
  const candidates = [
    process.env.WASM_BINDGEN,
    'wasm-bindgen',
    join(TOOLS, 'bin', 'wasm-bindgen'),
    join(homedir(), '.cargo', 'bin', 'wasm-bindgen'),
  ].filter(Boolean);
  for (const candidate of candidates) {
    const output = succeeds(candidate, ['--version'])?.trim();
    if (!output) continue;
    if (output.endsWith(version)) return candidate;
    if (!quiet) console.warn(`skipping ${candidate}: ${output}, but Cargo.lock has wasm-bindgen ${version}`);
  }
  return null;
}

/**
 * How to run the native CLI: `[command, leadingArgs]`. GLIMPSE_BIN when set; else the release
 * binary already built in the target dir (`built: true`, the default; the tests compare with
 * it); else `cargo run --release` (`--quiet` unless `quiet: false`), which builds it first.
 */
export function glimpseCommand({ built = true, quiet = true } = {}) {
  if (process.env.GLIMPSE_BIN) return [process.env.GLIMPSE_BIN, []];
  const binary = join(targetDir(), 'release', 'glimpse');
  if (built && existsSync(binary)) return [binary, []];
  return ['cargo', ['run', '--release', ...(quiet ? ['--quiet'] : []), '--']];
}

/** Keeps the `keep` most recently used entries of the cache folder `root` and deletes the rest. */
export function pruneCache(root, keep = 3) {
  const older = readdirSync(root)
    .map((name) => ({ path: join(root, name), time: statSync(join(root, name)).mtimeMs }))
    .sort((a, b) => b.time - a.time)
    .slice(keep);
  for (const { path } of older) rmSync(path, { recursive: true, force: true });
}
