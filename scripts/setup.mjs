#!/usr/bin/env node
// Installs what building and testing need, once, on a fresh machine; fast when all is there.
//   node scripts/setup.mjs            wasm target, wasm-bindgen-cli (the lockfile's version), npm packages
//   node scripts/setup.mjs --browser  and Debian's chromium and ffmpeg (for the browser tests)

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const TOOLS = join(homedir(), '.cache', 'tools');

function run(command, args) {
  console.log(`$ ${[command, ...args].join(' ')}`);
  execFileSync(command, args, { cwd: ROOT, stdio: 'inherit' });
}

function succeeds(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

const installedTargets = succeeds('rustup', ['target', 'list', '--installed']) ?? '';
if (!installedTargets.includes('wasm32-unknown-unknown')) run('rustup', ['target', 'add', 'wasm32-unknown-unknown']);

const lock = readFileSync(join(ROOT, 'Cargo.lock'), 'utf8');
const bindgenVersion = lock.match(/name = "wasm-bindgen"\nversion = "([^"]+)"/)[1];
const candidates = [process.env.WASM_BINDGEN, join(TOOLS, 'bin', 'wasm-bindgen'), 'wasm-bindgen'].filter(Boolean);
if (!candidates.some((c) => succeeds(c, ['--version'])?.trim().endsWith(bindgenVersion))) {
  // `--locked` fails to resolve here; the version pin is what matters.
  run('cargo', ['install', 'wasm-bindgen-cli', '--version', bindgenVersion, '--root', TOOLS]);
}

const npmPackages = ['playwright-core', 'binaryen', 'onnxruntime-web'];
if (!npmPackages.every((p) => existsSync(join(ROOT, 'node_modules', p, 'package.json')))) {
  run('npm', ['ci', '--no-audit', '--no-fund']);
}

if (process.argv.includes('--browser')) {
  const missing = [
    ['chromium', '/usr/bin/chromium'],
    ['ffmpeg', '/usr/bin/ffmpeg'],
  ].filter(([, path]) => !existsSync(path));
  if (missing.length) {
    const names = missing.map(([name]) => name);
    if (process.getuid?.() !== 0) {
      throw new Error(`the browser tests need Debian's ${names.join(' and ')}: sudo apt-get install -y ${names.join(' ')}`);
    }
    run('apt-get', ['update', '-qq']);
    run('apt-get', ['install', '-y', '-qq', ...names]);
  }
}
