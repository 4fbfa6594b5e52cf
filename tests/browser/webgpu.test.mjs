// (a) WebGPU in Chromium (SwiftShader): photos picked in the file input get the native CLI's
// top-1 class and the badge says WebGPU. (g) Nothing leaves the page's origin.
// SwiftShader emulates the GPU on the CPU, so this file keeps to two inferences.
// Budget: under 60 s on the 2-core development machine, where WebGPU is SwiftShader
// (`{ timeout: 60_000 }`; measured 2026-11-30 with a build running beside it: 15.3 s).

import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, before, test } from 'node:test';
import { classifyThroughPicker, nativeTop1, photo, requireBuiltArtifacts, serve, waitForModel, withBrowser } from './helpers.mjs';

let server;
before(async () => {
  requireBuiltArtifacts();
  server = await serve();
});
after(() => server?.close());

test('WebGPU: picked photos get the native top-1 and the badge says WebGPU', { timeout: 60_000 }, async (t) => {
  const files = [photo('imagenet_01_'), photo('imagenet_08_')];
  const native = nativeTop1(files);
  await withBrowser(t, server.url, { webgpu: true }, async ({ page }) => {
    const loadStart = Date.now();
    await page.goto(server.url);
    assert.equal(await waitForModel(page), 'WebGPU');
    t.diagnostic(`model loaded on WebGPU in ${Date.now() - loadStart} ms`);
    assert.equal(await page.locator('#fallback-notice').isVisible(), false);

    for (const file of files) {
      const shown = await classifyThroughPicker(page, file);
      assert.equal(shown.error, null);
      const expected = native.get(file);
      assert.equal(shown.top.length, 5);
      assert.equal(shown.top[0].index, expected.index, `${basename(file)}: page ${shown.top[0].label}, native ${expected.label}`);
      t.diagnostic(`${basename(file)}: ${shown.top[0].label} ${shown.top[0].percent} (native: ${expected.label}), latency ${shown.latency}`);
    }
  });
});
