// The npm package as an app author gets it: `npm pack`, install the tarball into a copy of
// this Vite app, `vite build`, serve dist/ with the models beside it, classify a photo in
// Chromium. Proves the worker and the wasm file resolve through Vite with no config. The
// app's page and script are the ones every bundler test builds (tests/package/app); the steps
// are shared with those tests (tests/package/consumer.mjs).
// Run with `npm run test:vite` (needs the registry, or npm's cache, for vite itself).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireBuiltArtifacts } from '../browser/helpers.mjs';
import { APP_SOURCES, classifyPhotoInPage, exec, installApp, packPackage, serveApp } from '../package/consumer.mjs';

const APP = fileURLToPath(new URL('.', import.meta.url));

test('the packed package classifies a photo in a Vite-built app', { timeout: 600_000 }, async (t) => {
  requireBuiltArtifacts();
  const work = mkdtempSync(join(tmpdir(), 'glimpse-vite-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const app = installApp(work, packPackage(work), [
    ...['index.html', 'main.js'].map((name) => join(APP_SOURCES, name)),
    ...['package.json', 'package-lock.json'].map((name) => join(APP, name)),
  ]);
  exec(app, 'vite', ['build', '--logLevel', 'warn']);
  const server = await serveApp(t, join(app, 'dist'));
  t.diagnostic(await classifyPhotoInPage(t, `${server.url}?backend=cpu`));
});
