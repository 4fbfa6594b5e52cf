// Captions in the browser: (1) the caption model on WebGPU gives the reference's top-20 logits
// and first 16 greedy tokens for one golden prompt, and the page on WebGPU captions a dropped
// photo as the native CLI does; (2) on the CPU path a dropped photo gets a
// streamed caption equal to the native CLI's; (3) with the fake camera a caption is written
// while live classification goes on.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  INFERENCE_TIMEOUT,
  ROOT,
  classifyThroughEvent,
  photo,
  serveForTests,
  waitForModel,
  withBrowser,
} from './helpers.mjs';

const MAKE_CLIP = fileURLToPath(new URL('make-clip.sh', import.meta.url));
const CAPTION_TIMEOUT = 300_000;
const RELATIVE_TOLERANCE = 1e-2;

const suite = serveForTests({ scratchPrefix: 'glimpse-caption-' });

function nativeCaption(file) {
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target');
  const built = process.env.GLIMPSE_BIN ?? join(targetDir, 'release', 'glimpse');
  const [command, args] = existsSync(built) ? [built, []] : ['cargo', ['run', '--release', '--quiet', '--']];
  const output = execFileSync(command, [...args, 'classify', '--json', '--caption', file], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(output)[0].caption;
}

test('on WebGPU the caption model matches the reference, and the page streams a caption', { timeout: 1_200_000 }, async (t) => {
  const golden = JSON.parse(readFileSync(join(ROOT, 'tests/golden/smollm/decode.json'), 'utf8'));
  const { prompt_ids: promptIds, last_logits_top20: reference, greedy_ids: greedy } = golden.cases[0];
  await withBrowser(t, suite.server.url, { webgpu: true }, async ({ page }) => {
    await page.goto(`${suite.server.url}/tests/browser/blank.html`);
    const started = Date.now();
    const probe = await page.evaluate(
      async ({ promptIds, steps }) => {
        const { default: init, Engine } = await import('/pkg/glimpse.js');
        await init();
        const manifest = await (await fetch('/models/manifest.json')).json();
        const file = (name, dtype) => manifest.models.find((m) => m.name === name && (!dtype || m.dtype === dtype)).file;
        const bytes = async (name, dtype) => new Uint8Array(await (await fetch(`/models/${file(name, dtype)}`)).arrayBuffer());
        const engine = await Engine.create('webgpu', await bytes('efficientnet-lite0', 'f16'));
        engine.loadCaptionModel(await bytes('smollm2-135m-instruct'));
        const [top20, greedy] = await engine.probeCaptionModel(Uint32Array.from(promptIds), steps);
        return { backend: engine.backend, top20, greedy };
      },
      { promptIds, steps: greedy.length },
    );
    t.diagnostic(`WebGPU probe: ${promptIds.length}-token prompt + ${greedy.length} tokens in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    assert.equal(probe.backend, 'webgpu');
    assert.deepEqual(probe.greedy, greedy, 'greedy tokens');
    let worst = 0;
    for (const [i, [id, value]] of reference.entries()) {
      const [ourId, ours] = probe.top20[i];
      assert.equal(ourId, id, `top-20 position ${i}`);
      worst = Math.max(worst, Math.abs(ours - value) / Math.max(Math.abs(value), 1e-6));
    }
    t.diagnostic(`top-20 logits: worst relative difference ${worst.toExponential(2)}`);
    assert.ok(worst <= RELATIVE_TOLERANCE, `relative difference ${worst}`);

    // The page on WebGPU: a dropped photo gets the native caption, streamed.
    const file = photo('imagenet_00_');
    await page.goto(`${suite.server.url}?backend=webgpu`);
    assert.equal(await waitForModel(page), 'WebGPU');
    await page.check('#caption-toggle');
    await classifyThroughEvent(page, file, 'drop');
    await page.waitForFunction(() => document.getElementById('caption').dataset.state === 'writing', null, {
      timeout: CAPTION_TIMEOUT,
    });
    await page.waitForFunction(
      () => ['done', 'fallback', 'error'].includes(document.getElementById('caption').dataset.state),
      null,
      { timeout: CAPTION_TIMEOUT },
    );
    const shown = await page.locator('#caption').textContent();
    t.diagnostic(`WebGPU page caption: "${shown}" (${await page.locator('#caption-status').textContent()})`);
    assert.equal(shown, nativeCaption(file));
  });
});

test('a dropped photo gets a streamed caption equal to the native one (CPU)', { timeout: CAPTION_TIMEOUT }, async (t) => {
  const file = photo('imagenet_00_');
  const expected = nativeCaption(file);
  await withBrowser(t, suite.server.url, {}, async ({ page }) => {
    await page.goto(`${suite.server.url}?backend=cpu`);
    await waitForModel(page);
    await page.check('#caption-toggle');
    // Count the caption's visible changes: streamed text changes many times.
    await page.evaluate(() => {
      window.captionChanges = 0;
      new MutationObserver(() => (window.captionChanges += 1)).observe(document.getElementById('caption'), {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await classifyThroughEvent(page, file, 'drop');
    await page.waitForFunction(
      () => ['done', 'fallback', 'error'].includes(document.getElementById('caption').dataset.state),
      null,
      { timeout: CAPTION_TIMEOUT },
    );
    const shown = await page.locator('#caption').textContent();
    const status = await page.locator('#caption-status').textContent();
    t.diagnostic(`caption: "${shown}" (${status}); native: "${expected}"`);
    assert.equal(await page.locator('#caption').getAttribute('data-state'), 'done');
    assert.equal(shown, expected);
    assert.ok((await page.evaluate(() => window.captionChanges)) >= 4, 'the caption was streamed');
  });
});

test('a missing or corrupt caption model costs the caption, not the classification', { timeout: CAPTION_TIMEOUT }, async (t) => {
  const file = photo('imagenet_04_');
  await withBrowser(t, suite.server.url, {}, async ({ page }) => {
    await page.goto(`${suite.server.url}?backend=cpu`);
    await waitForModel(page);
    await page.check('#caption-toggle');
    for (const [what, reply, message] of [
      ['missing', { status: 404, body: 'not here' }, /No caption: .*not found \(HTTP 404\)/],
      ['corrupt', { status: 200, body: Buffer.from('GGUF but not really') }, /No caption: .*integrity check/],
    ]) {
      await page.route('**/*.gguf', (route) => route.fulfill(reply));
      await classifyThroughEvent(page, file, 'drop');
      await page.waitForFunction(() => document.getElementById('caption').dataset.state === 'error', null, {
        timeout: CAPTION_TIMEOUT,
      });
      const status = await page.locator('#caption-status').textContent();
      t.diagnostic(`${what}: "${status}"`);
      assert.match(status, message);
      assert.equal(await page.locator('#results li').count(), 5, 'the photo is still classified');
      assert.equal(await page.locator('#error').isVisible(), false);
      await page.unroute('**/*.gguf');
    }
  });
});

test('with the fake camera a caption is written while classification goes on', { timeout: CAPTION_TIMEOUT }, async (t) => {
  const clip = join(suite.scratch, 'yurt.y4m');
  execFileSync(MAKE_CLIP, [photo('imagenet_08_'), clip]);
  await withBrowser(t, suite.server.url, { camera: clip }, async ({ page }) => {
    await page.goto(`${suite.server.url}?backend=cpu`);
    await waitForModel(page);
    await page.check('#caption-toggle');
    await page.click('#camera-start');
    await page.waitForFunction(() => document.getElementById('caption').dataset.state === 'writing', null, {
      timeout: CAPTION_TIMEOUT,
    });
    // Results keep arriving while the caption is being written.
    const liveResults = () => page.evaluate(() => Number(document.body.dataset.liveResults ?? 0));
    const atStart = await liveResults();
    await page.waitForFunction(() => document.getElementById('caption').dataset.state !== 'writing', null, {
      timeout: CAPTION_TIMEOUT,
    });
    const during = (await liveResults()) - atStart;
    const caption = await page.locator('#caption').textContent();
    t.diagnostic(`camera caption: "${caption}" (${await page.locator('#caption-status').textContent()}), ${during} live results meanwhile`);
    assert.ok(during >= 2, 'classification went on during the caption');
    assert.match(caption, /yurt/i);
    await page.click('#camera-stop');
  });
});
