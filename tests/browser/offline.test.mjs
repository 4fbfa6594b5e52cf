// Offline: after one visit, the page loads and classifies with the network off, and a caption
// model loaded on that visit writes captions too. The service worker (sw.js → the package's
// www/offline-worker.js) keeps the page, its scripts and the wasm; the models come from the
// package's own Cache API store.
// Budget: under 90 s on the 2-core development machine (measured 2026-11-30: see the diagnostic).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { INFERENCE_TIMEOUT, classifyThroughEvent, nativeTop1, photo, serveForTests, waitForModel, withBrowser } from './helpers.mjs';

const suite = serveForTests();

/** Waits until the caption of the picture on show is written (or has failed: the test says). */
async function captionWritten(page) {
  await page.waitForFunction(
    () => ['done', 'fallback', 'error'].includes(document.getElementById('caption').dataset.state),
    null,
    { timeout: INFERENCE_TIMEOUT },
  );
  assert.notEqual(await page.locator('#caption').getAttribute('data-state'), 'error', await page.locator('#caption').textContent());
}

test('after one visit the page loads, classifies and captions with the network off', { timeout: 90_000 }, async (t) => {
  const file = photo('imagenet_08_');
  const expected = nativeTop1([file]).get(file);
  await withBrowser(t, suite.server.url, {}, async ({ page, context }) => {
    const started = Date.now();
    await page.goto(`${suite.server.url}?backend=cpu`);
    await waitForModel(page);
    await page.check('#caption-toggle');
    const online = await classifyThroughEvent(page, file);
    assert.equal(online.top[0].index, expected.index);
    await captionWritten(page);
    const caption = await page.locator('#caption').textContent();
    // The page's files are kept once the registration resolved; the page is controlled once
    // the worker has claimed it.
    await page.waitForFunction(() => document.body.dataset.offlineReady === 'true', null, { timeout: INFERENCE_TIMEOUT });
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      }
    });

    await context.setOffline(true);
    await page.reload();
    assert.equal(await waitForModel(page), 'CPU');
    const offline = await classifyThroughEvent(page, file);
    assert.equal(offline.error, null);
    assert.equal(offline.top[0].index, expected.index, `offline: ${offline.top[0].label}`);
    await captionWritten(page);
    assert.equal(await page.locator('#caption').textContent(), caption, 'the same caption offline');
    await context.setOffline(false);
    t.diagnostic(`offline: ${offline.top[0].label}, "${caption}" (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  });
});

test('the page can be installed: its web app manifest names it and its icons', async () => {
  const response = await fetch(new URL('manifest.webmanifest', suite.server.url));
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type'), /application\/manifest\+json/);
  const manifest = await response.json();
  assert.equal(manifest.display, 'standalone');
  for (const icon of manifest.icons) {
    const image = await fetch(new URL(icon.src, suite.server.url));
    assert.equal(image.status, 200, icon.src);
    const [width] = icon.sizes.split('x').map(Number);
    const bytes = new Uint8Array(await image.arrayBuffer());
    // PNG: the width is the big-endian u32 at byte 16.
    assert.equal(new DataView(bytes.buffer).getUint32(16), width, `${icon.src} is ${icon.sizes}`);
  }
});
