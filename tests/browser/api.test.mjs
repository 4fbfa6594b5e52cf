// The ESM API (www/glimpse.js) with every kind of source it accepts, in a worker and inline,
// and its typed errors. CPU only: the sources, not the backend, are under test here.
// Budget: each test here under 60 s on the 2-core development machine without a GPU
// (`{ timeout: 60_000 }`; measured 2026-11-30 with a build running beside it: 7.0 s, 1.5 s, 0.5 s).

import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { nativeTop1, openBrowser, photo, requireBuiltArtifacts, serve } from './helpers.mjs';

let server;
let browser;
before(async () => {
  requireBuiltArtifacts();
  server = await serve();
  browser = await openBrowser();
  await browser.page.goto(`${server.url}?backend=cpu`);
});
after(async () => {
  await browser?.close();
  await server?.close();
});

// Runs in the page: the top-1 index for the photo given as each kind of source.
async function top1BySource({ bytes, inline }) {
  const { Glimpse } = await import('/www/glimpse.js');
  const glimpse = await Glimpse.load({ backend: 'cpu', inline });
  const blob = new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
  const url = URL.createObjectURL(blob);
  const image = new Image();
  image.src = url;
  await image.decode();
  const bitmap = await createImageBitmap(blob);
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
  const offscreen = new OffscreenCanvas(bitmap.width, bitmap.height);
  offscreen.getContext('2d').drawImage(bitmap, 0, 0);
  const imageData = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
  const sources = { blob, image, bitmap, canvas, offscreen, imageData };
  const top1 = {};
  for (const [kind, source] of Object.entries(sources)) {
    const { top, backend } = await glimpse.classify(source, { topK: 3 });
    top1[kind] = { index: top[0].index, count: top.length, backend };
  }
  glimpse.dispose();
  URL.revokeObjectURL(url);
  return top1;
}

for (const inline of [false, true]) {
  test(`every source kind gets the native top-1 (${inline ? 'inline' : 'worker'})`, { timeout: 60_000 }, async () => {
    const file = photo('imagenet_08_');
    const expected = nativeTop1([file]).get(file);
    const results = await browser.page.evaluate(top1BySource, { bytes: [...readFileSync(file)], inline });
    for (const [kind, { index, count, backend }] of Object.entries(results)) {
      assert.equal(index, expected.index, `${kind} of ${basename(file)}: got class ${index}, native ${expected.label}`);
      assert.equal(count, 3);
      assert.equal(backend, 'cpu');
    }
  });
}

test('a second engine in the page starts from the compiled module: the wasm is not fetched again', { timeout: 60_000 }, async () => {
  const wasmRequests = () => server.requests.filter((path) => path === '/pkg/glimpse_vision_bg.wasm').length;
  const before = wasmRequests();
  const tops = await browser.page.evaluate(async () => {
    const { Glimpse } = await import('/www/glimpse.js');
    const frame = new ImageData(64, 48);
    const tops = [];
    for (let i = 0; i < 2; i++) {
      const glimpse = await Glimpse.load({ backend: 'cpu' });
      tops.push((await glimpse.classify(frame)).top[0].index);
      glimpse.dispose();
    }
    return tops;
  });
  assert.equal(tops[1], tops[0]);
  // The page has loaded glimpse before this test (or this is its first): at most one fetch.
  assert.ok(wasmRequests() - before <= 1, `${wasmRequests() - before} requests for the wasm`);
});

test('a page that only classifies downloads the vision build; labels fetch the full build once, and a taught class goes along', { timeout: 60_000 }, async () => {
  const fetched = (build) => server.requests.filter((path) => path === `/pkg/${build}_bg.wasm`).length;
  // A browser of its own: the demo page in the shared one registers the offline worker,
  // which fetches both builds to keep them.
  const fresh = await openBrowser();
  const { page } = fresh;
  try {
    await page.goto(new URL('/tests/browser/blank.html', server.url).href);
    const before = { vision: fetched('glimpse_vision'), full: fetched('glimpse') };
    const photos = { yurt: [...readFileSync(photo('imagenet_08_'))], chair: [...readFileSync(photo('imagenet_01_'))] };
    const taughtFirst = await page.evaluate(async (photos) => {
      const blobOf = (bytes) => new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
      const { Glimpse } = await import('/www/glimpse.js');
      window.glimpse = await Glimpse.load({ models: '/models/', backend: 'cpu' });
      window.teacher = window.glimpse.teach();
      for (const name of ['yurt', 'yurt', 'chair', 'chair']) await window.teacher.add(name, blobOf(photos[name]));
      await window.teacher.train();
      window.chair = blobOf(photos.chair);
      return (await window.teacher.classify(window.chair)).taught[0].label;
    }, photos);
    const classified = { vision: fetched('glimpse_vision'), full: fetched('glimpse') };
    assert.equal(taughtFirst, 'chair');
    assert.equal(classified.vision - before.vision, 1, 'the vision build is fetched once');
    assert.equal(classified.full, before.full, 'classifying and teaching fetch no full build');

    const withLabels = await page.evaluate(async () => {
      const { taught, labels } = await window.teacher.classify(window.chair, { labels: 'dog, folding chair, banana' });
      const again = await window.teacher.classify(window.chair, { labels: 'dog, folding chair, banana' });
      return { taught: taught[0].label, labels: labels.map((l) => l.label), again: again.taught[0].label };
    });
    assert.equal(fetched('glimpse') - classified.full, 1, 'the full build is fetched once');
    assert.equal(withLabels.taught, taughtFirst, 'the taught set came along to the full build');
    assert.equal(withLabels.again, taughtFirst);
    assert.equal(withLabels.labels[0], 'folding chair', 'the photo is ImageNet class 559, folding chair');
  } finally {
    await fresh.close();
  }
});

test('failures reject with the documented error classes', { timeout: 60_000 }, async () => {
  const outcome = await browser.page.evaluate(async () => {
    const api = await import('/www/glimpse.js');
    const caught = async (promise) => {
      try {
        await promise;
        return 'resolved';
      } catch (error) {
        return { name: error.name, message: error.message, typed: error instanceof api.GlimpseError };
      }
    };
    const glimpse = await api.Glimpse.load({ backend: 'cpu' });
    const result = {
      notAnImage: await caught(glimpse.classify(42)),
      emptyFile: await caught(glimpse.classify(new Blob([]))),
      garbage: await caught(glimpse.classify(new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])]))),
      unloadedImage: await caught(glimpse.classify(new Image())),
      tinyFrame: await caught(glimpse.classify(new ImageData(1, 1))),
      unknownBackend: await caught(api.Glimpse.load({ backend: 'tpu' })),
      missingModels: await caught(api.Glimpse.load({ models: '/nowhere/' })),
    };
    // The engine still works after all of that.
    result.stillWorks = (await glimpse.classify(new ImageData(64, 64))).top.length;
    glimpse.dispose();
    result.afterDispose = await caught(glimpse.classify(new ImageData(64, 64)));
    return result;
  });
  for (const key of ['notAnImage', 'emptyFile', 'garbage', 'unloadedImage', 'tinyFrame']) {
    assert.equal(outcome[key].name, 'UnsupportedImageError', `${key}: ${JSON.stringify(outcome[key])}`);
    assert.ok(outcome[key].typed, key);
  }
  assert.equal(outcome.unknownBackend.name, 'BackendError');
  assert.equal(outcome.missingModels.name, 'ModelLoadError');
  assert.match(outcome.missingModels.message, /404/);
  assert.equal(outcome.stillWorks, 5);
  assert.equal(outcome.afterDispose.name, 'BackendError');
});
