// (b) The CPU path, chosen in the page and as the fallback when WebGPU is missing, gives the
// native CLI's top-1. (c) A second visit loads the model from the cache, and a damaged cache
// entry is fetched again. (d) A corrupt file shows an error and the next good file classifies.
// Model download failures are shown. (g) Nothing leaves the page's origin.
// Budget: each test here under 60 s on the 2-core development machine without a GPU
// (`{ timeout: 60_000 }`; measured 2026-11-30 with a build running beside it: 11.6 s, 4.0 s, 3.4 s, 4.1 s).

import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, before, test } from 'node:test';
import {
  WEIGHTS_PATH,
  classifyThroughEvent,
  classifyThroughPicker,
  nativeTop1,
  photo,
  requireBuiltArtifacts,
  serve,
  waitForModel,
  withBrowser,
} from './helpers.mjs';

let server;
before(async () => {
  requireBuiltArtifacts();
  server = await serve();
});
after(() => server?.close());

const WASM_PATH = '/pkg/glimpse_vision_bg.wasm';
const weightRequests = () => server.requests.filter((path) => path === WEIGHTS_PATH).length;


test('CPU chosen in the page: native top-1, cached model on the next visit, corrupt files', { timeout: 60_000 }, async (t) => {
  const files = [photo('imagenet_04_'), photo('imagenet_13_'), photo('imagenet_10_')];
  const native = nativeTop1(files);
  await withBrowser(t, server.url, { webgpu: true }, async ({ page }) => {
    // From WebGPU (named: 'auto' would time both backends first), switching the backend
    // reloads the page with ?backend=cpu.
    await page.goto(`${server.url}?backend=webgpu`);
    await waitForModel(page);
    await Promise.all([page.waitForURL(/backend=cpu/), page.selectOption('#backend-select', 'cpu')]);
    assert.equal(await waitForModel(page), 'CPU');
    assert.equal(await page.locator('#fallback-notice').isVisible(), false);

    for (const file of files) {
      const shown = await classifyThroughPicker(page, file);
      assert.equal(shown.error, null);
      assert.equal(shown.top[0].index, native.get(file).index, `${basename(file)}: page ${shown.top[0].label}, native ${native.get(file).label}`);
      t.diagnostic(`${basename(file)}: ${shown.top[0].label} ${shown.top[0].percent}, latency ${shown.latency}`);
    }

    // Dropped and pasted files take the same path.
    for (const how of ['drop', 'paste']) {
      const shown = await classifyThroughEvent(page, files[1], how);
      assert.equal(shown.error, null);
      assert.equal(shown.top[0].index, native.get(files[1]).index, `${how}: ${shown.top[0].label}`);
    }

    // (d) Not an image, though it starts like a JPEG.
    const corrupt = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(2000, 0x5a)]);
    await page.setInputFiles('#file-input', { name: 'broken.jpg', mimeType: 'image/jpeg', buffer: corrupt });
    await page.waitForSelector('#error:not([hidden])');
    const message = await page.locator('#error-message').textContent();
    assert.match(message, /cannot be classified/);
    t.diagnostic(`corrupt file: "${message}"`);
    const afterError = await classifyThroughPicker(page, files[0]);
    assert.equal(afterError.error, null);
    assert.equal(afterError.top[0].index, native.get(files[0]).index);

    // (c) A second visit reads the weights from the Cache API: no request reaches the server;
    // and the wasm from the HTTP cache (revalidated: not one byte of it is sent again).
    const before = weightRequests();
    const wasmBytesBefore = server.sent.get(WASM_PATH);
    const loadStart = Date.now();
    await page.reload();
    assert.equal(await waitForModel(page), 'CPU');
    t.diagnostic(`second visit: model ready in ${Date.now() - loadStart} ms`);
    assert.equal(weightRequests(), before, 'the weights were requested again');
    assert.equal(server.sent.get(WASM_PATH), wasmBytesBefore, 'the wasm was downloaded again');
    const fromCache = await classifyThroughPicker(page, files[1]);
    assert.equal(fromCache.top[0].index, native.get(files[1]).index);

    // A damaged cache entry fails its sha256 check and is downloaded again.
    await page.evaluate(async (path) => {
      const cache = await caches.open('glimpse-models-v1');
      await cache.put(new URL(path, location.href).href, new Response('damaged'));
    }, WEIGHTS_PATH);
    await page.reload();
    assert.equal(await waitForModel(page), 'CPU');
    assert.equal(weightRequests(), before + 1, 'the damaged cache entry was not replaced');
  });
});

test('Chromium without WebGPU falls back to the CPU with a notice', { timeout: 60_000 }, async (t) => {
  const file = photo('imagenet_08_');
  const native = nativeTop1([file]);
  await withBrowser(t, server.url, { webgpu: false }, async ({ page }) => {
    await page.goto(server.url);
    assert.equal(await waitForModel(page), 'CPU');
    const notice = page.locator('#fallback-notice');
    assert.equal(await notice.isVisible(), true);
    const text = await notice.textContent();
    assert.match(text, /WebGPU/);
    t.diagnostic(`notice: "${text}"`);
    const shown = await classifyThroughPicker(page, file);
    assert.equal(shown.top[0].index, native.get(file).index);
  });
});

test('model download failures are shown and the page keeps working', { timeout: 60_000 }, async (t) => {
  await withBrowser(t, server.url, { webgpu: false }, async ({ page }) => {
    // A models directory that does not exist.
    await page.goto(`${server.url}?models=no-such-models/`);
    await page.waitForSelector('#error:not([hidden])');
    const missing = await page.locator('#error-message').textContent();
    assert.match(missing, /404/);
    t.diagnostic(`missing model: "${missing}"`);
    // Picking a file still answers, with a message rather than silence.
    await page.setInputFiles('#file-input', photo('imagenet_04_'));
    assert.match(await page.locator('#error-message').textContent(), /not loaded/);

    // Weights that do not match the manifest (the wrong size, caught before they are hashed),
    // downloaded twice: the second try says so in one line.
    await page.route(`**${WEIGHTS_PATH}`, (route) => route.fulfill({ status: 200, body: Buffer.alloc(4096, 7) }));
    await page.goto(server.url);
    await page.waitForSelector('#error:not([hidden])');
    const corrupt = await page.locator('#error-message').textContent();
    assert.match(corrupt, /failed the integrity check: 4096 bytes where the manifest lists \d+ bytes/);
    t.diagnostic(`corrupt model: "${corrupt}"`);

    // Retrying once the server answers properly loads the model.
    await page.unroute(`**${WEIGHTS_PATH}`);
    await page.click('#retry-model');
    assert.equal(await waitForModel(page), 'CPU');
  });
});

test('a full storage quota is a notice, not a failure: the model still loads and classifies', { timeout: 60_000 }, async (t) => {
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.addInitScript(() => {
      Cache.prototype.put = () => Promise.reject(new DOMException('the quota has been exceeded', 'QuotaExceededError'));
    });
    await page.goto(`${server.url}?backend=cpu`);
    assert.equal(await waitForModel(page), 'CPU');
    const notice = page.locator('#fallback-notice');
    assert.match(await notice.textContent(), /storage quota is full/);
    const shown = await classifyThroughPicker(page, photo('imagenet_14_'));
    assert.equal(shown.error, null);
    assert.ok(shown.top.length === 5);
  });
});
