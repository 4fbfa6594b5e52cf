// The packed package in the apps integrators write (the Vite one is tests/vite-app): webpack 5
// with its defaults, esbuild, the README's React example (built by esbuild) and its plain-HTML
// example (no bundler: the installed package's files served from node_modules), and its Node.js
// example (the CPU engine on the calling thread, models read from a path). One `npm pack`
// and one install serve every app; each is built, served with the models beside it under the
// README's Content-Security-Policy, and classifies a photo in Chromium on the CPU, giving the
// native CLI's top-1.
// Budget: under 90 s in all on the 2-core development machine (measured 2026-11-30: 35 s; the
// pack and install 8 s, webpack's build 2.4 s, esbuild's 0.5 s, each page 3–4 s).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { INFERENCE_TIMEOUT, ROOT, nativeTop1, requireBuiltArtifacts, withBrowser } from '../browser/helpers.mjs';
import { APP_SOURCES, classifyPhotoInPage, exec, installApp, packPackage, serveApp } from './consumer.mjs';

/**
 * The policy the README gives: nothing but the page's origin, and WebAssembly compilation
 * ('wasm-unsafe-eval', which allows no JavaScript eval). The worker is a same-origin script
 * (worker-src); models and the wasm file are fetched (connect-src).
 */
const README_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'";
/** The pages' own needs on top: their favicon is `data:,` (so that none is requested). */
const PAGE_CSP = `${README_CSP}; img-src data:`;

const seconds = (since) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

let work;
let app;
before(() => {
  requireBuiltArtifacts();
  work = mkdtempSync(join(tmpdir(), 'glimpse-bundlers-'));
  const started = performance.now();
  app = installApp(work, packPackage(work), readdirSync(APP_SOURCES).map((name) => join(APP_SOURCES, name)));
  console.log(`packed and installed in ${seconds(started)}`);
});
after(() => work && rmSync(work, { recursive: true, force: true }));

const packageFile = (path) => join(app, 'node_modules', '@seed', 'glimpse', path);

/** Copies the pages into a built app's folder. */
function addPages(dist, ...pages) {
  for (const page of pages) cpSync(join(app, page), join(dist, page));
}

/** The CSP with the hash of each inline script in `html`, the way a page allows its own scripts. */
function cspAllowingInlineScripts(html) {
  const hashes = [...html.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)].map(
    ([, script]) => `'sha256-${createHash('sha256').update(script).digest('base64')}'`,
  );
  return PAGE_CSP.replace("script-src 'self'", `script-src 'self' ${hashes.join(' ')}`);
}

test('webpack 5 with its defaults bundles the worker and the wasm file', { timeout: 180_000 }, async (t) => {
  const started = performance.now();
  // No webpack config: `new Worker(new URL(…, import.meta.url))` and `new URL('….wasm',
  // import.meta.url)` are webpack 5's own syntax for a worker chunk and an asset.
  exec(app, 'webpack', ['./main.js', '--mode', 'production', '--output-path', 'dist-webpack']);
  const dist = join(app, 'dist-webpack');
  addPages(dist, 'index.html');
  t.diagnostic(`webpack build ${seconds(started)}`);
  const server = await serveApp(t, dist, { headers: { 'Content-Security-Policy': PAGE_CSP } });
  t.diagnostic(await classifyPhotoInPage(t, `${server.url}?backend=cpu`));
  t.diagnostic(`webpack test ${seconds(started)}`);
});

test('esbuild bundles the app and the README React example, the worker as a second entry point', { timeout: 180_000 }, async (t) => {
  const started = performance.now();
  // esbuild leaves `new URL(…, import.meta.url)` as it is: the worker is built as an entry
  // point beside the app's bundle and the wasm file copied there, which is where the bundle's
  // URLs point (the README says so).
  exec(app, 'esbuild', [
    'main.js',
    'react.jsx',
    'worker=node_modules/@seed/glimpse/www/worker.js',
    '--bundle',
    '--format=esm',
    '--minify',
    '--jsx=automatic',
    '--define:process.env.NODE_ENV="production"',
    '--outdir=dist-esbuild',
    '--log-level=warning',
  ]);
  const dist = join(app, 'dist-esbuild');
  for (const wasm of ['glimpse_bg.wasm', 'glimpse_vision_bg.wasm']) cpSync(packageFile(`pkg/${wasm}`), join(dist, wasm));
  addPages(dist, 'index.html', 'react.html');
  t.diagnostic(`esbuild build ${seconds(started)}`);
  const server = await serveApp(t, dist, { headers: { 'Content-Security-Policy': PAGE_CSP } });
  await t.test('the app', async (t) => t.diagnostic(await classifyPhotoInPage(t, `${server.url}?backend=cpu`)));
  await t.test('the React example', async (t) => t.diagnostic(await classifyPhotoInPage(t, `${server.url}react.html`)));
  t.diagnostic(`esbuild test ${seconds(started)}`);
});

test('the README plain-HTML example runs the installed package without a bundler', { timeout: 120_000 }, async (t) => {
  const started = performance.now();
  const csp = cspAllowingInlineScripts(readFileSync(join(app, 'plain.html'), 'utf8'));
  const server = await serveApp(t, app, { headers: { 'Content-Security-Policy': csp } });
  t.diagnostic(await classifyPhotoInPage(t, `${server.url}plain.html`));
  t.diagnostic(`plain page test ${seconds(started)}`);
});

test('without wasm-unsafe-eval in the CSP the engine cannot start, and the page is told why', { timeout: 120_000 }, async (t) => {
  // The control for the tests above: proves the policy reaches the worker, which compiles the wasm.
  const html = readFileSync(join(app, 'plain.html'), 'utf8');
  const csp = cspAllowingInlineScripts(html).replace(" 'wasm-unsafe-eval'", '');
  const server = await serveApp(t, app, { headers: { 'Content-Security-Policy': csp } });
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.goto(`${server.url}plain.html`);
    await page.waitForFunction(() => !/^loading/.test(document.getElementById('status').textContent), null, {
      timeout: INFERENCE_TIMEOUT,
    });
    const status = await page.locator('#status').textContent();
    assert.match(status, /^BackendError: .*WebAssembly/);
    t.diagnostic(status);
  });
});

test('in Node.js the installed package classifies the foolbox photos as the native CLI does, and captions', { timeout: 180_000 }, async (t) => {
  const started = performance.now();
  const photos = readdirSync(join(ROOT, 'models', 'photos'))
    .filter((name) => name.endsWith('.jpg'))
    .sort()
    .map((name) => join(ROOT, 'models', 'photos', name));
  // The models as a path; no server, no browser, no worker.
  const output = execFileSync(process.execPath, ['node.mjs', join(ROOT, 'models'), ...photos], {
    cwd: app,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const { results, caption } = JSON.parse(output);
  const native = nativeTop1(photos);
  for (const { file, top } of results) {
    assert.equal(top.index, native.get(file).index, `${file}: Node ${top.label}, native ${native.get(file).label}`);
  }
  assert.equal(results.length, photos.length);
  assert.match(caption, /^A .*\.$/);
  t.diagnostic(`${results.length}/${photos.length} top-1 as native; caption "${caption}"; ${seconds(started)}`);
});
