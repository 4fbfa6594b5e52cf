#!/usr/bin/env node
// Installs what building and testing need, once, on a fresh machine; fast when all is there.
//   node scripts/setup.mjs            wasm target, the pinned nightly (threaded build), wasm-bindgen-cli
//                                     (the lockfile's version), npm packages
//   node scripts/setup.mjs --browser  and Debian's chromium and ffmpeg (for the browser tests)

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NIGHTLY, ROOT, TOOLS, findWasmBindgen, lockedVersion, run, succeeds } from './lib.mjs';

const installedTargets = succeeds('rustup', ['target', 'list', '--installed']) ?? '';
if (!installedTargets.includes('wasm32-unknown-unknown')) run('rustup', ['target', 'add', 'wasm32-unknown-unknown']);
// The threaded wasm build's toolchain (scripts/lib.mjs): it rebuilds the standard library from
// its source, so no prebuilt wasm32 target is needed.
const nightlySource = succeeds('rustup', ['+' + NIGHTLY, 'component', 'list', '--installed']) ?? '';
if (!nightlySource.includes('rust-src')) run('rustup', ['toolchain', 'install', NIGHTLY, '--profile', 'minimal', '--component', 'rust-src']);

if (!findWasmBindgen({ quiet: true })) {
  // `--locked` fails to resolve here; the version pin is what matters.
  run('cargo', ['install', 'wasm-bindgen-cli', '--version', lockedVersion('wasm-bindgen'), '--root', TOOLS]);
}

// The npm packages: exactly package-lock.json's versions of the devDependencies.
const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
const { devDependencies } = readJson(join(ROOT, 'package.json'));
const lock = readJson(join(ROOT, 'package-lock.json')).packages;

/** The devDependencies that are missing from node_modules or not at the lockfile's version. */
function npmMismatches() {
  return Object.keys(devDependencies).flatMap((name) => {
    const wanted = lock[`node_modules/${name}`]?.version;
    if (!wanted) throw new Error(`package-lock.json has no ${name}: run \`npm install\` and commit the lockfile`);
    const manifest = join(ROOT, 'node_modules', name, 'package.json');
    const installed = existsSync(manifest) ? readJson(manifest).version : null;
    return installed === wanted ? [] : [`${name} ${installed ?? 'missing'} (lockfile: ${wanted})`];
  });
}

if (npmMismatches().length) {
  try {
    run('npm', ['ci', '--no-audit', '--no-fund']);
  } catch {
    // Some npm configurations refuse `npm ci` (a lockfile pruned to another platform's optional
    // packages, a policy on clean installs). `npm install --no-save` still installs the
    // lockfile's versions and leaves package.json and the lockfile as they are; checked below.
    console.warn('`npm ci` failed; installing the lockfile\'s versions with `npm install --no-save` instead');
    run('npm', ['install', '--no-save', '--no-audit', '--no-fund']);
  }
  const wrong = npmMismatches();
  if (wrong.length) throw new Error(`npm installed other versions than the lockfile's: ${wrong.join(', ')}`);
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
