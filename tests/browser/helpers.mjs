// The browser tests' own helpers: the built files they need, the sample photos, the native
// CLI's answers to compare with, per-file set-up and small page helpers. The server and the
// Chromium launcher are shared with the browser bench (scripts/browser.mjs) and re-exported here.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { openBrowser, serve } from '../../scripts/browser.mjs';
import { ROOT, glimpseCommand } from '../../scripts/lib.mjs';

export { ROOT, openBrowser, serve };
export const PHOTOS = join(ROOT, 'models', 'photos');
export const WEIGHTS_PATH = '/models/efficientnet-lite0.int8.bpk';

/**
 * The longest one page step (a model load, an inference) is waited for. What bounds a test is
 * its own budget, stated with it: under 60 s on the 2-core, GPU-less development machine.
 */
export const INFERENCE_TIMEOUT = 120_000;

export function requireBuiltArtifacts() {
  const missing = [
    'pkg/glimpse.js',
    'pkg/glimpse_bg.wasm',
    'pkg/glimpse_vision.js',
    'pkg/glimpse_vision_bg.wasm',
    'pkg/glimpse_threads.js',
    'pkg/glimpse_threads_bg.wasm',
    'models/manifest.json',
  ].filter(
    (p) => !existsSync(join(ROOT, p)),
  );
  if (missing.length) {
    throw new Error(`missing ${missing.join(', ')}: run \`npm run build:wasm\` and \`npm run fetch-models\``);
  }
}

/** The sample photo whose name contains `label` (e.g. 'imagenet_01_'). */
export function photo(prefix) {
  const name = readdirSync(PHOTOS).find((f) => f.startsWith(prefix));
  if (!name) throw new Error(`no photo named ${prefix}* in ${PHOTOS}`);
  return join(PHOTOS, name);
}

/** The native CLI's top-1 class index for each file, keyed by file path. */
export function nativeTop1(files) {
  const [command, prefix] = glimpseCommand();
  const output = execFileSync(command, [...prefix, 'classify', '--json', '--top', '1', ...files], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  return new Map(JSON.parse(output).map((outcome) => [outcome.file, outcome.top[0]]));
}

/** The native CLI's caption of `file` (what the browser's must equal, word for word). */
export function nativeCaption(file) {
  const [command, prefix] = glimpseCommand();
  const output = execFileSync(command, [...prefix, 'classify', '--json', '--caption', file], { cwd: ROOT, encoding: 'utf8' });
  return JSON.parse(output)[0].caption;
}

/**
 * For a test file: serves the repo (and makes a scratch directory named `scratchPrefix`…)
 * before its tests, and stops (and removes) them after. Returns `{ server, scratch }`, filled
 * in once started. `isolated`: the pages cross-origin isolated (as `npm start` serves them).
 */
export function serveForTests({ scratchPrefix = null, isolated = false } = {}) {
  const suite = { server: null, scratch: null };
  before(async () => {
    requireBuiltArtifacts();
    suite.server = await serve({ isolated });
    if (scratchPrefix) suite.scratch = mkdtempSync(join(tmpdir(), scratchPrefix));
  });
  after(async () => {
    await suite.server?.close();
    if (suite.scratch) rmSync(suite.scratch, { recursive: true, force: true });
  });
  return suite;
}

/** Waits until the model is loaded; returns the badge text ('WebGPU' or 'CPU'). */
export async function waitForModel(page, timeout = INFERENCE_TIMEOUT) {
  await page.waitForFunction(
    () => {
      const badge = document.getElementById('backend-badge')?.dataset.backend;
      const error = !document.getElementById('error').hidden;
      return badge || error;
    },
    null,
    { timeout },
  );
  const error = await page.locator('#error').isVisible();
  if (error) throw new Error(`the page shows an error: ${await page.locator('#error-message').textContent()}`);
  return (await page.locator('#backend-badge').textContent()).trim();
}

/** Picks `file` in the file input, as a person would, and waits for the outcome. */
export async function classifyThroughPicker(page, file, timeout = INFERENCE_TIMEOUT) {
  const name = file.split('/').pop();
  await page.setInputFiles('#file-input', file);
  return waitForOutcome(page, name, timeout);
}

/**
 * Drops `file` on the page, or pastes it (`how`: 'drop' | 'paste'), the way the browser
 * delivers a dragged or pasted file, and waits for the outcome.
 */
export async function classifyThroughEvent(page, file, how, timeout = INFERENCE_TIMEOUT) {
  const name = file.split('/').pop();
  const bytes = [...readFileSync(file)];
  await page.evaluate(
    ({ name, bytes, how }) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/jpeg' }));
      const target = document.getElementById('drop-zone');
      if (how === 'drop') {
        target.dispatchEvent(new DragEvent('dragover', { bubbles: true, cancelable: true, dataTransfer: transfer }));
        target.dispatchEvent(new DragEvent('drop', { bubbles: true, cancelable: true, dataTransfer: transfer }));
      } else {
        document.dispatchEvent(new ClipboardEvent('paste', { bubbles: true, cancelable: true, clipboardData: transfer }));
      }
    },
    { name, bytes, how },
  );
  return waitForOutcome(page, name, timeout);
}

/** Waits until the page has classified `name`, or said it could not; returns what it shows. */
async function waitForOutcome(page, name, timeout) {
  // The caption shows the file's bare name once it is classified, "name: not classified" on failure.
  await page.waitForFunction(
    (name) => {
      const caption = document.getElementById('preview-caption').textContent;
      return caption === name || caption.endsWith('not classified');
    },
    name,
    { timeout },
  );
  return readResults(page);
}

/** What the page shows: the top-5 list, latency and the error box. */
export async function readResults(page) {
  return page.evaluate(() => ({
    top: Array.from(document.querySelectorAll('#results li'), (li) => ({
      index: Number(li.dataset.index),
      label: li.querySelector('.label').textContent,
      percent: li.querySelector('.prob').textContent,
    })),
    latency: document.getElementById('latency').textContent,
    fps: document.getElementById('fps').textContent,
    error: document.getElementById('error').hidden ? null : document.getElementById('error-message').textContent,
  }));
}

/** Requests that went anywhere but `origin` (data: and blob: URLs stay in the page). */
export function foreignRequests(urls, origin) {
  return urls.filter((url) => !url.startsWith(origin) && !/^(data|blob):/.test(url));
}

/**
 * Runs `body(browser)` in a fresh Chromium opened with `options`, then checks that no request
 * left `origin`. On failure the page's console lines go into the test's diagnostics.
 */
export async function withBrowser(t, origin, options, body) {
  const browser = await openBrowser(options);
  try {
    await body(browser);
    assert.deepEqual(foreignRequests(browser.pageRequests, origin), [], 'requests left the origin');
  } catch (error) {
    t.diagnostic(browser.consoleLines.join('\n'));
    throw error;
  } finally {
    await browser.close();
  }
}
