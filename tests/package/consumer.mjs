// What the tests of the published package share (tests/vite-app and tests/package): the
// package as an app author gets it (`npm pack`, the tarball installed into a copy of a consumer
// app), the built app served with the models beside it, and a photo classified in Chromium.
//
// Every consumer page keeps one contract, so one check fits them all: `#status` says
// "loading…", then "ready on <backend>" (or "<ErrorName>: <message>"); `#photo` is a file
// input; after a pick, `#status` says "classified in N ms" and `#top li[data-index]` lists the
// classes, best first, each as "label (percent)" (with `data-index` where the page adds it).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { startServer } from '../../scripts/serve.mjs';
import { INFERENCE_TIMEOUT, ROOT, nativeTop1, photo, withBrowser } from '../browser/helpers.mjs';

/** The consumer apps' shared sources (index.html and main.js are built by every bundler). */
export const APP_SOURCES = new URL('./app/', import.meta.url).pathname;

/** Runs npm in `cwd`; its output is returned, its warnings shown. */
export function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 << 20 });
}

/** Packs the repository as npm would publish it into `work`; returns the tarball's path. */
export function packPackage(work) {
  const name = npm(['pack', '--silent', '--pack-destination', work], ROOT).trim().split('\n').pop();
  return join(work, name);
}

/**
 * A consumer app in `work/app`: `files` (paths) copied in, its own package-lock's
 * dependencies and the tarball installed. Returns the app's folder.
 */
export function installApp(work, tarball, files) {
  const app = join(work, 'app');
  mkdirSync(app, { recursive: true });
  for (const file of files) cpSync(file, join(app, basename(file)));
  // Not `npm ci`: some npm configurations refuse it, and the lock is pruned to this platform's
  // optional packages on some set-ups; `--no-save` still installs the lockfile's versions.
  npm(['install', '--no-save', '--no-audit', '--no-fund', tarball], app);
  return app;
}

/** Runs a command from the app's node_modules/.bin (a bundler), in the app. */
export function exec(app, command, args) {
  npm(['exec', '--', command, ...args], app);
}

/**
 * Serves `root` (a built app) with the models at /models/, as the README asks of an app.
 * `headers` go on every response. Stopped when the test ends.
 */
export async function serveApp(t, root, { headers } = {}) {
  const models = join(root, 'models');
  if (!existsSync(models)) symlinkSync(join(ROOT, 'models'), models);
  const server = await startServer({ root, port: 0, headers });
  t.after(() => server.close());
  return server;
}

/** The photo every consumer classifies, and the native CLI's answer for it (asked once). */
let PHOTO = null;
let nativeAnswer = null;

/**
 * Opens `url` (a consumer page) in a fresh Chromium without WebGPU, waits for the model,
 * picks the photo and checks the page's top-1 against the native CLI. The page must run on
 * the CPU: with `?backend=cpu`, or with 'auto', since a Chromium started without
 * --enable-unsafe-webgpu offers no WebGPU adapter here. Fails on any Content-Security-Policy
 * violation the document reports (the worker's own show as a failed load). Returns what the
 * page showed, for the test's diagnostics.
 */
export async function classifyPhotoInPage(t, url) {
  PHOTO ??= photo('imagenet_13_');
  nativeAnswer ??= nativeTop1([PHOTO]).get(PHOTO);
  let shown;
  await withBrowser(t, new URL(url).origin, {}, async ({ page }) => {
    await page.addInitScript(() => {
      window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (event) =>
        window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI}`),
      );
    });
    await page.goto(url);
    const status = page.locator('#status');
    await page.waitForFunction(() => !/^loading/.test(document.getElementById('status')?.textContent ?? 'loading'), null, {
      timeout: INFERENCE_TIMEOUT,
    });
    assert.equal(await status.textContent(), 'ready on cpu');
    await page.setInputFiles('#photo', PHOTO);
    await page.waitForFunction(() => !/^(ready|classifying)/.test(document.getElementById('status').textContent), null, {
      timeout: INFERENCE_TIMEOUT,
    });
    assert.match(await status.textContent(), /^classified in/);
    const first = page.locator('#top li').first();
    const text = await first.textContent();
    const expected = `${basename(PHOTO)}: native says ${nativeAnswer.label} (${nativeAnswer.index})`;
    assert.ok(text.startsWith(`${nativeAnswer.label} (`), `${expected}, the page ${text}`);
    // ImageNet has a few repeated names (two "crane"s): the index settles it where the page shows it.
    const index = await first.getAttribute('data-index');
    if (index !== null) assert.equal(Number(index), nativeAnswer.index, expected);
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    shown = `${basename(PHOTO)}: ${text}, ${await status.textContent()}`;
  });
  return shown;
}

