// The published package's shape, without a browser: what `npm pack` puts in the tarball,
// publint's and arethetypeswrong's verdicts on package.json, and the declarations
// (www/glimpse.d.ts) against a strict TypeScript consumer (tests/types/consumer.ts), and the
// README's integrator examples being the ones tests/package/bundlers.test.mjs runs.
// Budget: under 20 s in all on the 2-core development machine (each tool packs on its own;
// measured 2026-11-30: 5.4 s).

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { test } from 'node:test';
import { ROOT, requireBuiltArtifacts } from '../browser/helpers.mjs';

const bin = (name) => join(ROOT, 'node_modules', '.bin', name);

/** Runs a tool from node_modules/.bin in the repository; resolves to its exit code and output. */
function tool(name, args) {
  const { status, stdout, stderr } = spawnSync(bin(name), args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status, output: `${stdout}${stderr}` };
}

// What an app gets: the API and its types (www/), the wasm engine and its bindings (pkg/),
// the models command and its converter (pkg-convert/), and what npm always adds. No tests, demo, Rust sources, wasm-bindgen's own .d.ts (nothing
// imports it and `exports` hides it) or source maps.
const EXPECTED_FILES = [
  'README.md',
  'package.json',
  'pkg-convert/glimpse-convert.wasm',
  'pkg/glimpse.js',
  'pkg/glimpse_bg.wasm',
  'pkg/glimpse_threads.js',
  'pkg/glimpse_threads_bg.wasm',
  'pkg/glimpse_vision.js',
  'pkg/glimpse_vision_bg.wasm',
  'www/backend-choice.js',
  'www/class-store.js',
  'www/engine-host.js',
  'www/errors.js',
  'www/frames.js',
  'www/glimpse.d.ts',
  'www/glimpse.js',
  'www/model-store.js',
  'www/models-cli.mjs',
  'www/node.js',
  'www/offline-worker.js',
  'www/offline.js',
  'www/pool-worker.js',
  'www/teacher.js',
  'www/worker.js',
];

/**
 * Everything but the engine and the README (which npm always packs, and which grows with the
 * benchmark record) is a few small text files (the three builds' bindings the largest, about
 * 73, 67 and 48 kB; 314 KiB in all on 2026-12-07); a larger sum is something packed by mistake.
 */
const NON_WASM_BUDGET = 384 * 1024;

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(2)} MiB (${bytes} bytes)`;

test('the tarball holds exactly the package files, each relative import among them', (t) => {
  requireBuiltArtifacts();
  const [pack] = JSON.parse(
    execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }),
  );
  const paths = pack.files.map((file) => file.path).sort();
  assert.deepEqual(paths, EXPECTED_FILES);

  // A file the package loads by relative URL (import, import(), new URL(…, import.meta.url),
  // a source map comment) must be in the tarball, or an app fails only at run time.
  const packed = new Set(paths);
  for (const path of paths.filter((p) => p.endsWith('.js'))) {
    const source = readFileSync(join(ROOT, path), 'utf8');
    const references = [
      ...source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bnew URL\(\s*)(['"])(\.{0,2}\/?[^'"]+?)\1/g),
    ]
      .map((match) => match[2])
      .filter((ref) => ref.startsWith('.') || /\.(js|wasm)$/.test(ref));
    for (const map of source.matchAll(/[#@] sourceMappingURL=(\S+)/g)) references.push(map[1]);
    for (const ref of references) {
      const target = posix.normalize(posix.join(posix.dirname(path), ref));
      assert.ok(packed.has(target), `${path} loads ${ref}, which is not packed`);
    }
  }

  const nonWasm = pack.files
    .filter((file) => !file.path.endsWith('.wasm') && file.path !== 'README.md')
    .reduce((sum, file) => sum + file.size, 0);
  assert.ok(nonWasm <= NON_WASM_BUDGET, `the files beside the wasm and the README add up to ${kb(nonWasm)}`);
  t.diagnostic(`packed ${mb(pack.size)}, unpacked ${mb(pack.unpackedSize)}; beside the wasm and the README: ${kb(nonWasm)}`);
});

test('publint finds nothing to fix in package.json or the packed files', () => {
  const { status, output } = tool('publint', ['--strict']);
  assert.equal(status, 0, output);
  assert.match(output, /All good!/, output);
});

test('arethetypeswrong resolves the types for ESM importers and bundlers', (t) => {
  // The package is ESM for browsers: `require('@seed/glimpse')` from CommonJS is not supported
  // (Node 20 cannot require ESM), so the node16-from-CJS resolution's CJSResolvesToESM is
  // expected; node10 does not read `exports`. The esm-only profile leaves exactly those two out.
  const { status, output } = tool('attw', ['--pack', '.', '--profile', 'esm-only', '--format', 'json']);
  const report = JSON.parse(output.slice(output.indexOf('{')));
  const ignored = new Set(['node10', 'node16-cjs']);
  const problems = Object.values(report.problems ?? {})
    .flat()
    .filter((problem) => !ignored.has(problem.resolutionKind));
  assert.deepEqual(problems, []);
  assert.equal(status, 0, output);
  const resolutions = report.analysis.entrypoints['.'].resolutions;
  for (const kind of ['node16-esm', 'bundler']) {
    assert.equal(resolutions[kind].resolution?.fileName, '/node_modules/@seed/glimpse/www/glimpse.d.ts', kind);
  }
  t.diagnostic(`attw ${report.analysis.buildTools['@arethetypeswrong/cli']}: types resolve for node16-esm and bundler`);
});

test('the declarations fit a strict TypeScript app that uses the whole API', () => {
  const { status, output } = tool('tsc', ['-p', 'tests/types']);
  assert.equal(status, 0, output);
});

test('the README shows the React, plain-HTML and Node.js examples that bundlers.test.mjs runs, verbatim', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const example of ['plain.html', 'react.jsx', 'node.mjs']) {
    const source = readFileSync(join(ROOT, 'tests', 'package', 'app', example), 'utf8').trimEnd();
    assert.ok(readme.includes(source), `README.md does not show tests/package/app/${example} as it is`);
  }
});
