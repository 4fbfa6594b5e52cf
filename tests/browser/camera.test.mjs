// (e) A denied camera shows a message. (f) A fake camera playing a clip made from a sample
// photo gives live predictions with that photo's top-1 and a frame rate above zero; hiding the
// page stops the camera (its track ends) and showing it starts the camera again.
// Budget: each test here under 60 s on the 2-core development machine without a GPU
// (`{ timeout: 60_000 }`; measured 2026-11-30 with a build running beside it: 7.1 s, 12.0 s).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  INFERENCE_TIMEOUT,
  nativeTop1,
  openBrowser,
  photo,
  readResults,
  serveForTests,
  waitForModel,
  withBrowser,
} from './helpers.mjs';

const MAKE_CLIP = fileURLToPath(new URL('make-clip.sh', import.meta.url));

const suite = serveForTests({ scratchPrefix: 'glimpse-clip-' });

/** A camera clip of a foolbox photo (`prefix`), named `name`; its path and the photo's native top-1. */
function clipOf(prefix, name) {
  const source = photo(prefix);
  const clip = join(suite.scratch, name);
  execFileSync(MAKE_CLIP, [source, clip]);
  return { clip, expected: nativeTop1([source]).get(source) };
}

/** Opens the page on the CPU, starts the camera and waits for a few seconds of live results. */
async function startCamera(page) {
  await page.goto(`${suite.server.url}?backend=cpu`);
  await waitForModel(page);
  await page.click('#camera-start');
  await page.waitForFunction(() => /^[\d.]+ fps$/.test(document.getElementById('fps').textContent), null, {
    timeout: INFERENCE_TIMEOUT,
  });
  await page.waitForTimeout(3000);
}

test('a denied camera shows a message', { timeout: 60_000 }, async () => {
  const browser = await openBrowser({ camera: 'deny' });
  try {
    const { page } = browser;
    await page.goto(`${suite.server.url}?backend=cpu`);
    await waitForModel(page);
    await page.click('#camera-start');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.locator('#error-message').textContent(), /Camera access was denied/);
    assert.equal(await page.locator('#camera-start').isEnabled(), true);
  } finally {
    await browser.close();
  }
});

test('a camera playing a photo shows its top-1 live, with a frame rate; a hidden page gives the camera back', { timeout: 60_000 }, async (t) => {
  const { clip, expected } = clipOf('imagenet_08_', 'camera.y4m');

  await withBrowser(t, suite.server.url, { camera: clip }, async ({ page }) => {
    // A few seconds of live results, so the rate is measured over several frames.
    await startCamera(page);
    const shown = await readResults(page);
    assert.equal(shown.error, null);
    assert.equal(shown.top[0].index, expected.index, `camera: ${shown.top[0].label}, photo: ${expected.label}`);
    const fps = Number.parseFloat(shown.fps);
    assert.ok(fps > 0, `fps ${shown.fps}`);
    t.diagnostic(`camera: ${shown.top[0].label} ${shown.top[0].percent}, ${shown.fps}, latency ${shown.latency}`);

    // Hiding the tab stops the camera and live classification; showing it again starts both. Headless
    // Chromium never hides a tab, so the page is told it is hidden the way the browser would.
    const setHidden = (hidden) =>
      page.evaluate((hidden) => {
        if (hidden) {
          Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
        } else {
          delete document.hidden;
          delete document.visibilityState;
        }
        document.dispatchEvent(new Event('visibilitychange'));
      }, hidden);
    await page.evaluate(() => {
      window.resultsShown = 0;
      new MutationObserver(() => window.resultsShown++).observe(document.getElementById('results'), { childList: true });
      window.trackBefore = document.getElementById('camera-video').srcObject.getVideoTracks()[0];
    });
    await setHidden(true);
    // The camera itself is given back, not only its frames left unclassified.
    assert.deepEqual(
      await page.evaluate(() => ({ track: window.trackBefore.readyState, stream: document.getElementById('camera-video').srcObject })),
      { track: 'ended', stream: null },
    );
    await page.waitForTimeout(1000); // a frame already being classified may still land
    const shownWhenHidden = await page.evaluate(() => window.resultsShown);
    await page.waitForTimeout(2000);
    assert.equal(await page.evaluate(() => window.resultsShown), shownWhenHidden, 'classified frames while hidden');
    await setHidden(false);
    await page.waitForFunction((n) => window.resultsShown > n, shownWhenHidden, { timeout: INFERENCE_TIMEOUT });
    assert.equal(
      await page.evaluate(() => document.getElementById('camera-video').srcObject?.getVideoTracks()[0]?.readyState),
      'live',
      'the camera started again when the page was shown',
    );

    const cameras = await page.locator('#camera-select option').allTextContents();
    assert.ok(cameras.length >= 2, `the camera list shows the fake camera: ${cameras}`);

    await page.click('#camera-stop');
    assert.equal(await page.locator('#camera-start').isEnabled(), true);
  });
});

test('with "Show where" on, every live frame brings the map of what the classifier saw', { timeout: 60_000 }, async (t) => {
  const { clip, expected } = clipOf('imagenet_08_', 'camera-where.y4m');

  await withBrowser(t, suite.server.url, { camera: clip }, async ({ page }) => {
    await startCamera(page);
    const plainFps = (await readResults(page)).fps;
    await page.check('#where-toggle');
    // Each live result redraws the overlay from its own maps: count the redraws of the top
    // class's map against the results shown.
    await page.evaluate(() => {
      window.counts = { results: 0, maps: 0 };
      new MutationObserver(() => window.counts.results++).observe(document.getElementById('results'), { childList: true });
      new MutationObserver(() => window.counts.maps++).observe(document.getElementById('where-overlay'), {
        attributes: true,
        attributeFilter: ['data-peak-x', 'data-class'],
      });
    });
    await page.waitForFunction(() => window.counts.results >= 8, null, { timeout: INFERENCE_TIMEOUT });
    const counts = await page.evaluate(() => window.counts);
    const shown = await readResults(page);
    const overlay = await page.evaluate(() => ({ ...document.getElementById('where-overlay').dataset }));
    assert.equal(shown.top[0].index, expected.index, `camera: ${shown.top[0].label}, photo: ${expected.label}`);
    assert.equal(Number(overlay.class), expected.index, 'the overlay draws the top class');
    // The clip is a 640×480 frame; classification sees its middle 420×420 (x 0.17–0.83).
    const peakX = Number(overlay.peakX);
    assert.ok(peakX > 0.17 && peakX < 0.83, `the peak lies in the center crop: ${overlay.peakX}`);
    assert.ok(counts.maps >= counts.results / 2, `maps redrawn ${counts.maps} times for ${counts.results} results`);
    t.diagnostic(`without maps ${plainFps}, with maps ${shown.fps} (${counts.results} frames, CPU)`);
  });
});
