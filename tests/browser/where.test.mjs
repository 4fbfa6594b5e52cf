// "Show where" and the caption's evidence in the page, on the CPU path (wasm). The picture is a
// composite the test makes in the browser: two foolbox photos side by side (a yurt on the
// left, a bull mastiff on the right), each scaled to the same height.
// (a) With "Show where" on, the overlay is drawn over the picture, and pointing at a top-5 bar
//     draws that class's map: the left subject's peaks in the left half, the right one's in the
//     right half. (The overlay's data-peak-x says where the drawn map peaks, 0–1 across.)
// (b) With "Write a caption" on too, the caption comes with chips for its objects, and pointing
//     at a chip outlines its box over the picture. With GLIMPSE_SCREENSHOT=PATH, the page in
//     that state is saved there (the README's screenshot: docs/screenshot.png).
// Budget: each test under 60 s on the 2-core development machine without a GPU
// (`{ timeout: 60_000 }`; measured 2026-11-30 with a native build running beside it: 8.9 s
// and 17.3 s, the caption model's load and the caption's passes most of the second).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { INFERENCE_TIMEOUT, classifyThroughEvent, photo, serveForTests, waitForModel, withBrowser } from './helpers.mjs';

const BUDGET = 60_000;
const LEFT = { photo: 'imagenet_08_', index: 915, label: 'yurt' };
const RIGHT = { photo: 'imagenet_00_', index: 243, label: 'bull mastiff' };
/** The composite's height in pixels (as tests/cam.rs makes it). */
const HEIGHT = 320;
/** The screenshot's width in CSS pixels: the README's, small enough to stay under 300 KB. */
const SHOT_WIDTH = 920;

const suite = serveForTests({ scratchPrefix: 'glimpse-where-' });

/**
 * Writes the composite (a JPEG the browser encodes from the two photos side by side) into the
 * scratch directory; returns its path.
 */
async function makeComposite(page) {
  const [left, right] = [LEFT, RIGHT].map((side) => [...readFileSync(photo(side.photo))]);
  const bytes = await page.evaluate(
    async ({ left, right, height }) => {
      const decode = (bytes) => createImageBitmap(new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }));
      const [a, b] = await Promise.all([decode(left), decode(right)]);
      const widthOf = (bitmap) => Math.round((bitmap.width * height) / bitmap.height);
      const canvas = new OffscreenCanvas(widthOf(a) + widthOf(b), height);
      const context = canvas.getContext('2d');
      context.drawImage(a, 0, 0, widthOf(a), height);
      context.drawImage(b, widthOf(a), 0, widthOf(b), height);
      const blob = await canvas.convertToBlob({ type: 'image/jpeg', quality: 0.92 });
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    { left, right, height: HEIGHT },
  );
  const file = join(suite.scratch, `${LEFT.label}-and-${RIGHT.label.replace(' ', '-')}.jpg`);
  writeFileSync(file, Buffer.from(bytes));
  return file;
}

/** What the overlay holds: `{ visible, class, peakX, peakY, box }`. */
function overlayState(page) {
  return page.evaluate(() => {
    const overlay = document.getElementById('where-overlay');
    const { class: index, peakX, peakY, box } = overlay.dataset;
    return { visible: !overlay.hidden, class: index === undefined ? null : Number(index), peakX: Number(peakX), peakY: Number(peakY), box: box ?? null };
  });
}

/** Points at the top-5 bar of class `index` and waits until the overlay draws its map. */
async function pointAtClass(page, index) {
  await page.hover(`#results li[data-index="${index}"]`);
  await page.waitForFunction((index) => document.getElementById('where-overlay').dataset.class === String(index), index, {
    timeout: 5_000,
  });
  return overlayState(page);
}

/** Opens the page on the CPU with "Show where" on (and "Write a caption" when `caption`). */
async function openWithWhere(page, { caption = false } = {}) {
  await page.goto(`${suite.server.url}?backend=cpu`);
  assert.equal(await waitForModel(page), 'CPU');
  await page.check('#where-toggle');
  if (caption) await page.check('#caption-toggle');
}

test(`"Show where" draws each class's map on its own side of a composite (budget ${BUDGET / 1000} s)`, { timeout: BUDGET }, async (t) => {
  const started = Date.now();
  await withBrowser(t, suite.server.url, {}, async ({ page }) => {
    await openWithWhere(page);
    const composite = await makeComposite(page);
    const shown = await classifyThroughEvent(page, composite, 'drop');
    assert.equal(shown.error, null);
    t.diagnostic(`top-5: ${shown.top.map((p) => `${p.label} ${p.percent}`).join(', ')} (${shown.latency})`);

    // Unpointed, the top class's map is drawn over the picture.
    const drawn = await overlayState(page);
    assert.ok(drawn.visible, 'the overlay shows');
    assert.equal(drawn.class, shown.top[0].index, 'the top class is drawn');
    const box = await page.evaluate(() => {
      const rect = (id) => document.getElementById(id).getBoundingClientRect();
      return { overlay: rect('where-overlay').toJSON(), image: rect('preview-image').toJSON() };
    });
    for (const side of ['x', 'y', 'width', 'height']) {
      assert.ok(Math.abs(box.overlay[side] - box.image[side]) < 1, `the overlay lies over the picture (${side})`);
    }

    for (const [side, expected] of [
      [LEFT, (x) => x < 0.5],
      [RIGHT, (x) => x > 0.5],
    ]) {
      assert.ok(shown.top.some((p) => p.index === side.index), `${side.label} is in the top-5`);
      const pointed = await pointAtClass(page, side.index);
      t.diagnostic(`${side.label}: map peaks at x ${pointed.peakX}, y ${pointed.peakY}`);
      assert.ok(expected(pointed.peakX), `${side.label}'s map peaks at x ${pointed.peakX}`);
    }

    // Pointing away brings back the top class; turning it off clears the overlay.
    await page.mouse.move(0, 0);
    await page.waitForFunction((index) => document.getElementById('where-overlay').dataset.class === String(index), shown.top[0].index);
    await page.uncheck('#where-toggle');
    assert.equal((await overlayState(page)).visible, false, 'off: no overlay');
  });
  t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s`);
});

test(`a caption's chips point at where its objects are (CPU; budget ${BUDGET / 1000} s)`, { timeout: BUDGET }, async (t) => {
  const started = Date.now();
  await withBrowser(t, suite.server.url, {}, async ({ page }) => {
    await page.setViewportSize({ width: SHOT_WIDTH, height: 720 });
    await openWithWhere(page, { caption: true });
    const composite = await makeComposite(page);
    await classifyThroughEvent(page, composite, 'drop');
    await page.waitForFunction(
      () => ['done', 'fallback', 'error'].includes(document.getElementById('caption').dataset.state),
      null,
      { timeout: INFERENCE_TIMEOUT },
    );
    const caption = await page.locator('#caption').textContent();
    const chips = await page.locator('#caption-objects .chip').allTextContents();
    t.diagnostic(`caption: "${caption}" (${await page.locator('#caption-status').textContent()}); chips: ${chips.join(' | ')}`);
    assert.notEqual(await page.locator('#caption').getAttribute('data-state'), 'error');
    assert.ok(chips.length >= 1, 'at least one chip');

    const chip = page.locator('#caption-objects .chip[data-box]').first();
    await chip.hover();
    await page.waitForFunction(() => document.getElementById('where-overlay').dataset.box !== undefined, null, { timeout: 5_000 });
    const drawn = await overlayState(page);
    assert.ok(drawn.visible, 'the overlay shows the box');
    assert.equal(drawn.box, await chip.getAttribute('data-box'), 'the pointed chip’s box is drawn');

    if (process.env.GLIMPSE_SCREENSHOT) {
      // The picture with its map and the pointed chip's box, the results and the caption.
      const bottom = await page.evaluate(() => document.querySelector('.view').getBoundingClientRect().bottom + window.scrollY);
      const clip = { x: 0, y: 0, width: SHOT_WIDTH, height: Math.ceil(bottom + 8) };
      await page.screenshot({ path: process.env.GLIMPSE_SCREENSHOT, clip, fullPage: true });
      t.diagnostic(`screenshot: ${process.env.GLIMPSE_SCREENSHOT}`);
    }
    await page.mouse.move(0, 0);
    await page.waitForFunction(() => document.getElementById('where-overlay').dataset.box === undefined);
  });
  t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s`);
});
