// (a) WebGPU in Chromium (SwiftShader): photos picked in the file input get the native CLI's
// top-1 class and the badge says WebGPU. (g) Nothing leaves the page's origin. 'auto' times
// both backends, keeps the faster, and remembers the choice for the browser, GPU and build.
// The per-layer profile also runs on WebGPU. SwiftShader emulates the GPU on the CPU, so this
// file keeps to a few inferences.
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
    await page.goto(`${server.url}?backend=webgpu`);
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

/** The page's badge: the backend shown and what 'auto' measured (null when nothing was). */
async function badge(page) {
  return page.evaluate(() => {
    const { backend, timings } = document.getElementById('backend-badge').dataset;
    return { backend, timings: timings ? JSON.parse(timings) : null, title: document.getElementById('backend-badge').title };
  });
}

test("'auto' times both backends, keeps the faster, and measures again only for a new build", { timeout: 120_000 }, async (t) => {
  await withBrowser(t, server.url, { webgpu: true }, async ({ page }) => {
    await page.goto(server.url);
    await waitForModel(page);
    const first = await badge(page);
    assert.ok(first.timings, 'the badge carries the measurement');
    const { webgpu, cpu, remembered } = first.timings;
    assert.equal(remembered, false);
    assert.ok(webgpu > 0 && cpu > 0, `timings ${JSON.stringify(first.timings)}`);
    assert.equal(first.backend, webgpu < cpu ? 'webgpu' : 'cpu', 'the faster backend runs');
    assert.match(first.title, /WebGPU \d+ ms, CPU \d+ ms/);
    t.diagnostic(`measured per 640×480 frame: WebGPU ${webgpu.toFixed(0)} ms, CPU ${cpu.toFixed(0)} ms → ${first.backend}`);
    // The page classifies on the chosen backend.
    const shown = await classifyThroughPicker(page, photo('imagenet_08_'));
    assert.equal(shown.error, null);

    // The next visit starts on the remembered backend without measuring.
    await page.reload();
    await waitForModel(page);
    const second = await badge(page);
    assert.equal(second.backend, first.backend);
    assert.deepEqual({ ...second.timings, remembered: false }, first.timings);
    assert.equal(second.timings.remembered, true);

    // A record from another build of the module is not trusted: both are timed again.
    await page.evaluate(() => {
      const record = JSON.parse(localStorage.getItem('glimpse.backend-measured'));
      localStorage.setItem('glimpse.backend-measured', JSON.stringify({ ...record, module: 'an older build' }));
    });
    await page.reload();
    await waitForModel(page);
    const third = await badge(page);
    assert.equal(third.timings.remembered, false);
    assert.notEqual(third.timings.measuredAt, first.timings.measuredAt);
  });
});

test("'auto' follows the measurement: whichever backend is made the slower, the other is kept", { timeout: 120_000 }, async (t) => {
  await withBrowser(t, server.url, { webgpu: true }, async ({ page }) => {
    await page.goto(server.url);
    const chosen = await page.evaluate(async () => {
      const { Glimpse } = await import('/www/glimpse.js');
      const chosen = {};
      // A minute added to one backend's measured time makes it the slower on any machine.
      for (const slower of ['cpu', 'webgpu']) {
        const glimpse = await Glimpse.load({ models: '/models/', backend: 'auto', __penaltyForTests: { [slower]: 60_000 } });
        const { top } = await glimpse.classify(new ImageData(64, 48));
        chosen[slower] = { backend: glimpse.backend, timings: glimpse.info.timings, classified: top.length > 0 };
        glimpse.dispose();
      }
      return chosen;
    });
    assert.equal(chosen.cpu.backend, 'webgpu', `CPU made the slower: ${JSON.stringify(chosen.cpu.timings)}`);
    assert.equal(chosen.webgpu.backend, 'cpu', `WebGPU made the slower: ${JSON.stringify(chosen.webgpu.timings)}`);
    for (const { timings, classified } of Object.values(chosen)) {
      assert.equal(timings.remembered, false);
      assert.ok(classified);
    }
    t.diagnostic(`CPU slower → ${chosen.cpu.backend}; WebGPU slower → ${chosen.webgpu.backend}`);
  });
});

test('on WebGPU the per-layer profile times every kind of layer the CPU profile has, each waited for by reading it back', { timeout: 60_000 }, async (t) => {
  await withBrowser(t, server.url, { webgpu: true }, async ({ page }) => {
    await page.goto(new URL('/tests/browser/blank.html', server.url).href);
    const profile = await page.evaluate(async () => {
      const { Glimpse } = await import('/www/glimpse.js');
      const glimpse = await Glimpse.load({ models: '/models/', backend: 'webgpu' });
      const profile = await glimpse.engineProfile({ runs: 1 });
      glimpse.dispose();
      return profile;
    });
    t.diagnostic(
      `sum of the kinds ${profile.total.median.toFixed(1)} ms (reads taken off: ${profile.readbacks.median.toFixed(1)} ms), forward ${profile.forward.median.toFixed(1)} ms`,
    );
    assert.deepEqual([profile.backend, profile.threads, profile.runs], ['webgpu', null, 1]);
    // The kinds of Lite0's layers, named as the CPU profile names them.
    const kinds = ['depthwise 3×3/1', 'depthwise 3×3/2', 'depthwise 5×5/1', 'depthwise 5×5/2', 'expand 1×1', 'head conv 1×1, 320→1280', 'pool + fc', 'project 1×1', 'stem conv 3×3/2, 3→32'];
    assert.deepEqual(Object.keys(profile.kinds).sort(), kinds);
    for (const kind of kinds) assert.ok(profile.kinds[kind].min > 0, `${kind} is timed`);
    // The stem, 15 expansions, 16 depthwise and 16 projections, the head, pool + fc.
    assert.equal(profile.layers, 50);
    assert.ok(profile.readbacks.min > 0 && profile.forward.min > 0);
  });
});
