// The page keeps to its origin and to least privilege (issue #12): the dev server sends the
// page's Content-Security-Policy as a header too (with `frame-ancestors`, which the meta tag
// cannot carry) and `nosniff`, and serves only what the page needs; no policy violation is
// reported, by the page or its workers, while every panel is used; and oversized imports (an
// image, a class set, a label list) are refused with a clear message before they are read.
// Budget: each test under 60 s on the 2-core development machine without a GPU
// (`{ timeout: 60_000 }`; measured 2026-11-30 with builds running beside it: see each test).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pagePolicy } from '../../scripts/serve.mjs';
import { INFERENCE_TIMEOUT, photo, serveForTests, waitForModel, withBrowser } from './helpers.mjs';

const MAKE_CLIP = fileURLToPath(new URL('make-clip.sh', import.meta.url));
const suite = serveForTests({ scratchPrefix: 'glimpse-policy-' });

// Measured: 0.5 s.
test('the server sends the page policy as a header and serves only what the page needs', async () => {
  const policy = pagePolicy();
  assert.match(policy, /frame-ancestors 'none'$/);
  for (const path of ['/', '/index.html', '/demo/main.js', '/www/glimpse.js', '/pkg/glimpse_bg.wasm', '/pkg/glimpse_vision_bg.wasm', '/models/manifest.json', '/sw.js', '/manifest.webmanifest', '/tests/browser/blank.html']) {
    const response = await fetch(new URL(path, suite.server.url), { method: 'HEAD' });
    assert.equal(response.status, 200, path);
    assert.equal(response.headers.get('content-security-policy'), policy, path);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
  }
  // The repository's other files: its history, the build, the Python environment, sources.
  for (const path of ['/.git/HEAD', '/.git/config', '/target/', '/tests/reference/.venv/pyvenv.cfg', '/Cargo.toml', '/package.json', '/scripts/serve.mjs', '/src/lib.rs', '/tests/golden/zero_shot.json', '/www/../Cargo.toml', '/models/../Cargo.toml', '/demo/%2e%2e/Cargo.toml']) {
    const response = await fetch(new URL(path, suite.server.url));
    assert.equal(response.status, 404, path);
    assert.doesNotMatch(await response.text(), /\[package\]|ref: refs/, path);
  }
});

/** In the page or a worker: records every policy violation reported to it. */
function recordViolations() {
  self.cspViolations = [];
  self.addEventListener('securitypolicyviolation', (event) => self.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI}`));
}

// Measured: 24 s (the caption model's load and first words take most of it).
test('no Content-Security-Policy violation while every panel is used', { timeout: 60_000 }, async (t) => {
  const clip = join(suite.scratch, 'camera.y4m');
  execFileSync(MAKE_CLIP, [photo('imagenet_08_'), clip]);
  await withBrowser(t, suite.server.url, { camera: clip }, async ({ page, context, consoleLines }) => {
    await page.addInitScript(recordViolations);
    const response = await page.goto(`${suite.server.url}?backend=cpu`);
    assert.equal(response.headers()['content-security-policy'], pagePolicy());
    await waitForModel(page);
    for (const worker of page.workers()) await worker.evaluate(recordViolations);

    // A photo picked, with "Show where" and "Write a caption" on.
    await page.check('#where-toggle');
    await page.check('#caption-toggle');
    await page.setInputFiles('#file-input', photo('imagenet_16_'));
    await page.waitForFunction(() => document.getElementById('where-overlay').dataset.class !== undefined, null, { timeout: INFERENCE_TIMEOUT });
    await page.waitForFunction(() => document.getElementById('caption').textContent.trim().length > 0, null, { timeout: INFERENCE_TIMEOUT });
    // Labels of your own.
    await page.fill('#labels-input', 'dog, tent, food');
    await page.click('#labels-apply');
    await page.waitForFunction(() => /^Ranking/.test(document.getElementById('labels-status').textContent), null, { timeout: INFERENCE_TIMEOUT });
    // Teaching: two classes from files, trained, exported and imported again.
    for (const [name, prefix] of [['dog', 'imagenet_16_'], ['tent', 'imagenet_08_']]) {
      await page.fill('#class-name', name);
      await page.click('#class-add');
      await page.setInputFiles(`#class-list li[data-class="${name}"] input.class-files`, photo(prefix));
      await page.waitForFunction((name) => document.getElementById('teach-status').textContent.includes(`“${name}” has 1 example`), name, {
        timeout: INFERENCE_TIMEOUT,
      });
    }
    await page.click('#train');
    await page.waitForFunction(() => /^Trained/.test(document.getElementById('teach-status').textContent), null, { timeout: INFERENCE_TIMEOUT });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#teach-export')]);
    const exported = join(suite.scratch, 'classes.json');
    await download.saveAs(exported);
    await page.setInputFiles('#teach-import', exported);
    await page.waitForFunction(() => /^Imported 2 classes/.test(document.getElementById('teach-status').textContent), null, { timeout: INFERENCE_TIMEOUT });
    // The camera, live.
    await page.click('#camera-start');
    await page.waitForFunction(() => Number(document.body.dataset.liveResults ?? 0) >= 2, null, { timeout: INFERENCE_TIMEOUT });
    await page.click('#camera-stop');

    assert.equal(await page.locator('#error').isVisible(), false, await page.locator('#error-message').textContent());
    const workers = [...page.workers(), ...context.serviceWorkers()];
    const reported = {
      page: await page.evaluate(() => self.cspViolations),
      workers: (await Promise.all(workers.map((w) => w.evaluate(() => self.cspViolations ?? [])))).flat(),
      console: consoleLines.filter((line) => /Content Security Policy/i.test(line)),
    };
    assert.deepEqual(reported, { page: [], workers: [], console: [] });
    t.diagnostic(`no violation in the page and ${workers.length} workers`);
  });
});

// Measured: 13 s (the label model loads before the list is checked).
test('an oversized image, class set or label list is refused with its limit before it is read', { timeout: 60_000 }, async (t) => {
  await withBrowser(t, suite.server.url, {}, async ({ page }) => {
    await page.goto(new URL('tests/browser/blank.html', suite.server.url).href);
    const refused = await page.evaluate(async () => {
      const { Glimpse } = await import('/www/glimpse.js');
      const glimpse = await Glimpse.load({ models: '/models/', backend: 'cpu' });
      const teacher = glimpse.teach();
      const photo = new Uint8Array(await (await fetch('/models/photos/imagenet_00_243.jpg')).arrayBuffer());
      // Reading a Blob is what must not happen: count every read.
      let reads = 0;
      for (const method of ['arrayBuffer', 'text', 'bytes', 'stream']) {
        const original = Blob.prototype[method];
        if (original) Blob.prototype[method] = function (...args) { reads += 1; return original.apply(this, args); };
      }
      const outcome = (promise) => promise.then(() => 'accepted', (error) => `${error.name}: ${error.message}`);
      const big = new Blob([new Uint8Array(50_000_001)], { type: 'image/jpeg' });
      const classSet = (classes) => JSON.stringify({
        format: 'glimpse-teachable-classes', version: 1, backbone: 'efficientnet-lite0',
        classes: Array.from({ length: classes }, (_, i) => ({ name: `c${i}`, examples: [] })),
      });
      const result = {
        imageFile: await outcome(glimpse.classify(big)),
        imageBytes: await outcome(glimpse.classify(new Uint8Array(50_000_001))),
        pixels: await outcome(glimpse.classify({ width: 20_000, height: 20_000, data: new Uint8Array(4) })),
        classSetFile: await outcome(teacher.import(big)),
        reads,
        classes: await outcome(teacher.import(classSet(1001))),
        labels: await outcome(glimpse.classify(photo, { labels: Array.from({ length: 1001 }, (_, i) => `label ${i}`) })),
        longLabel: await outcome(glimpse.classify(photo, { labels: ['x'.repeat(201)] })),
      };
      glimpse.dispose();
      return result;
    });
    t.diagnostic(JSON.stringify(refused, null, 1));
    assert.deepEqual(refused, {
      imageFile: 'UnsupportedImageError: the image file is too large (50.0 MB; the limit is 50 MB)',
      imageBytes: 'UnsupportedImageError: the image file is too large (50.0 MB; the limit is 50 MB)',
      pixels: 'UnsupportedImageError: the image is too large (20000×20000 pixels; the limit is 100 megapixels)',
      classSetFile: 'InvalidArgumentError: this is not a usable teachable-classes file: it is 50.0 MB; the limit is 50 MB',
      reads: 0,
      classes: 'InvalidArgumentError: this is not a usable teachable-classes file: it lists 1001 classes; the limit is 1000',
      labels: refused.labels, // checked below: the engine's wording
      longLabel: refused.longLabel,
    });
    assert.match(refused.labels, /^InvalidArgumentError: .*at most 1000/);
    assert.match(refused.longLabel, /^InvalidArgumentError: .*longer than 200 characters/);
  });
});
