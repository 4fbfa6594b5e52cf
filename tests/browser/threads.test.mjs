// Threads in the browser. A cross-origin-isolated page (served with COOP/COEP, as `npm start`
// serves it) runs the CPU engine on the threaded build: a rayon pool of web workers on the
// engine's shared memory. A page without those headers runs the one-threaded builds and never
// fetches the threaded one.
// Budget: each test under 60 s on the 2-core development machine without a GPU (its timeout).

import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { classifyThroughEvent, nativeCaption, nativeTop1, photo, serveForTests, waitForModel, withBrowser } from './helpers.mjs';

const isolated = serveForTests({ isolated: true });
const plain = serveForTests();

/** A probability on two threads against one: the same kernels, split by rows. */
const PROB_TOLERANCE = 1e-5;

const blankPage = (server) => new URL('/tests/browser/blank.html', server.url).href;
const fetched = (server, build) => server.requests.filter((path) => path === `/pkg/${build}_bg.wasm`).length;

/** Runs in the page: each photo's top-5 from an engine on `threads` threads, and its info. */
async function topFives({ photos, threads }) {
  const { Glimpse } = await import('/www/glimpse.js');
  const glimpse = await Glimpse.load({ models: '/models/', backend: 'cpu', threads });
  const tops = [];
  for (const bytes of photos) {
    const { top } = await glimpse.classify(new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' }), { topK: 5 });
    tops.push(top.map(({ index, prob }) => ({ index, prob })));
  }
  const { info } = glimpse;
  glimpse.dispose();
  return { isolated: crossOriginIsolated, info, tops };
}

test('an isolated page classifies on 2 threads with the top-5 of one thread', { timeout: 60_000 }, async (t) => {
  const files = ['imagenet_00_', 'imagenet_01_', 'imagenet_08_', 'imagenet_13_'].map(photo);
  const native = nativeTop1(files);
  const photos = files.map((file) => [...readFileSync(file)]);
  const { server } = isolated;
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.goto(blankPage(server));
    const before = { threads: fetched(server, 'glimpse_threads'), vision: fetched(server, 'glimpse_vision') };
    const two = await page.evaluate(topFives, { photos, threads: 2 });
    assert.equal(two.isolated, true, 'the page is cross-origin isolated');
    assert.equal(two.info.backend, 'cpu');
    assert.equal(two.info.threads, 2, 'the engine reports 2 threads');
    assert.equal(fetched(server, 'glimpse_threads') - before.threads, 1, 'the threaded build is fetched once');
    assert.equal(fetched(server, 'glimpse_vision'), before.vision, 'and no one-threaded build');

    const one = await page.evaluate(topFives, { photos, threads: 1 });
    assert.equal(one.info.threads, 1);
    for (const [i, file] of files.entries()) {
      const [a, b] = [two.tops[i], one.tops[i]];
      t.diagnostic(`${basename(file)}: ${a.map((c) => `${c.index} ${c.prob.toFixed(4)}`).join(', ')}`);
      assert.deepEqual(a.map((c) => c.index), b.map((c) => c.index), `${basename(file)}: the same top-5 in the same order`);
      for (const [k, c] of a.entries()) assert.ok(Math.abs(c.prob - b[k].prob) <= PROB_TOLERANCE, `${basename(file)}: ${c.prob} vs ${b[k].prob}`);
      assert.equal(a[0].index, native.get(file).index, `${basename(file)}: the native top-1`);
    }
  });
});

test('the per-layer profile of the CPU engine runs on its threads', { timeout: 60_000 }, async (t) => {
  const { server } = isolated;
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.goto(blankPage(server));
    const profile = await page.evaluate(async () => {
      const { Glimpse } = await import('/www/glimpse.js');
      const glimpse = await Glimpse.load({ models: '/models/', backend: 'cpu', threads: 2 });
      const profile = await glimpse.engineProfile({ runs: 3 });
      glimpse.dispose();
      return profile;
    });
    t.diagnostic(`sum of the kinds ${profile.total.median.toFixed(1)} ms, forward ${profile.forward.median.toFixed(1)} ms`);
    assert.equal(profile.threads, 2);
    assert.equal(profile.runs, 3);
    for (const kind of ['expand 1×1', 'project 1×1', 'depthwise 5×5/2', 'head conv 1×1, 320→1280', 'pool + fc']) {
      assert.ok(profile.kinds[kind]?.min > 0, `${kind} is timed`);
    }
    assert.ok(profile.forward.min > 0 && profile.total.min >= profile.kinds['expand 1×1'].min);
  });
});

test('a page without the isolation headers runs on one thread and never fetches the threaded build', { timeout: 60_000 }, async (t) => {
  const file = photo('imagenet_08_');
  const native = nativeTop1([file]);
  const { server } = plain;
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.goto(blankPage(server));
    const result = await page.evaluate(topFives, { photos: [[...readFileSync(file)]], threads: 2 });
    assert.equal(result.isolated, false);
    assert.equal(result.info.threads, 1, 'one thread without isolation, whatever was asked');
    assert.equal(result.tops[0][0].index, native.get(file).index);
    assert.equal(fetched(server, 'glimpse_threads'), 0, 'the threaded build is not fetched');
  });
});

test('the isolated demo page says its threads and captions a dropped photo as natively', { timeout: 60_000 }, async (t) => {
  const file = photo('imagenet_00_');
  const expected = nativeCaption(file);
  const { server } = isolated;
  await withBrowser(t, server.url, {}, async ({ page }) => {
    await page.goto(`${server.url}?backend=cpu`);
    assert.equal(await waitForModel(page), 'CPU');
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const title = await page.locator('#backend-badge').getAttribute('title');
    t.diagnostic(`badge: "${title}" (${cores} cores)`);
    assert.equal(Number(await page.locator('#backend-badge').getAttribute('data-threads')), Math.min(4, cores));
    assert.match(title, /On the CPU, \d+ threads?\./);
    await page.check('#caption-toggle');
    await classifyThroughEvent(page, file, 'drop');
    await page.waitForFunction(() => ['done', 'fallback', 'error'].includes(document.getElementById('caption').dataset.state), null, {
      timeout: 50_000,
    });
    const shown = await page.locator('#caption').textContent();
    t.diagnostic(`caption: "${shown}"; native: "${expected}"`);
    assert.equal(await page.locator('#caption').getAttribute('data-state'), 'done');
    assert.equal(shown, expected);
  });
});
