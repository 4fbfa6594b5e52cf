// The npm package as an app author gets it: `npm pack`, install the tarball into a copy of
// this Vite app, `vite build`, serve dist/ with the models beside it, classify a photo in
// Chromium. Proves the worker and the wasm file resolve through a bundler.
// Run with `npm run test:vite` (needs the registry, or npm's cache, for vite itself).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServer } from '../../scripts/serve.mjs';
import {
  INFERENCE_TIMEOUT,
  ROOT,
  nativeTop1,
  photo,
  requireBuiltArtifacts,
  withBrowser,
} from '../browser/helpers.mjs';

const APP = fileURLToPath(new URL('.', import.meta.url));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

/** Builds a copy of the app against the packed package; returns its dist/ folder. */
function buildApp(work) {
  npm(['pack', '--silent', '--pack-destination', work], ROOT);
  const tarball = join(work, readdirSync(work).find((name) => name.endsWith('.tgz')));
  const app = join(work, 'app');
  const copied = ['index.html', 'main.js', 'package.json', 'package-lock.json', 'vite.config.js'];
  mkdirSync(app);
  for (const name of copied) cpSync(join(APP, name), join(app, name));
  // Not `npm ci`: the lock is pruned to this platform's optional packages on some setups.
  npm(['install', '--no-save', '--no-audit', '--no-fund', tarball], app);
  npm(['exec', '--', 'vite', 'build', '--logLevel', 'warn'], app);
  const dist = join(app, 'dist');
  symlinkSync(join(ROOT, 'models'), join(dist, 'models'));
  return dist;
}

test('the packed package classifies a photo in a Vite-built app', { timeout: 600_000 }, async (t) => {
  requireBuiltArtifacts();
  const work = mkdtempSync(join(tmpdir(), 'glimpse-vite-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const server = await startServer({ root: buildApp(work), port: 0 });
  t.after(() => server.close());
  await withBrowser(t, server.url, {}, async ({ page }) => {
    const file = photo('imagenet_13_');
    await page.goto(`${server.url}?backend=cpu`);
    const status = page.locator('#status');
    await page.waitForFunction(() => !document.getElementById('status').textContent.startsWith('loading'), null, {
      timeout: INFERENCE_TIMEOUT,
    });
    assert.equal(await status.textContent(), 'ready on cpu');
    await page.setInputFiles('#photo', file);
    await page.waitForFunction(() => !/^(ready|classifying)/.test(document.getElementById('status').textContent), null, {
      timeout: INFERENCE_TIMEOUT,
    });
    assert.match(await status.textContent(), /^classified in/);
    const top1 = Number(await page.locator('#top li').first().getAttribute('data-index'));
    const native = nativeTop1([file]).get(file);
    assert.equal(top1, native.index, `${basename(file)}: native says ${native.label}`);
    t.diagnostic(`${basename(file)}: ${await page.locator('#top li').first().textContent()}, ${await status.textContent()}`);
  });
});
