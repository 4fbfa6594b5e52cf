#!/usr/bin/env node
// npm run bench:browser [-- --runs N --backends cpu,webgpu]: per-image latency of the page's
// engine in headless Chromium, through the public API (Glimpse.load / classify), on each backend.
// WebGPU here is SwiftShader (the GPU emulated on the CPU) unless Chromium finds a real GPU.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { openBrowser, photo, serve } from '../tests/browser/helpers.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    backends: { type: 'string', default: 'cpu,webgpu' },
  },
});
const runs = Number(values.runs);
const backends = values.backends.split(',');

// Runs in the page: load on `backend`, classify the photo `runs` times after one warm-up.
async function benchInPage({ backend, runs, photoBytes }) {
  const { Glimpse, clearModelCache } = await import('/www/glimpse.js');
  await clearModelCache();
  let start = performance.now();
  const glimpse = await Glimpse.load({ models: '/models/', backend });
  const loadMs = performance.now() - start;
  const file = new Blob([new Uint8Array(photoBytes)], { type: 'image/jpeg' });
  const frame = new ImageData(640, 480);
  const time = async (source) => {
    start = performance.now();
    await glimpse.classify(source);
    return performance.now() - start;
  };
  const firstMs = await time(file);
  const fileMs = [];
  const frameMs = [];
  for (let i = 0; i < runs; i++) {
    fileMs.push(await time(file));
    frameMs.push(await time(frame));
  }
  glimpse.dispose();
  return { backend: glimpse.backend, loadMs, firstMs, fileMs, frameMs };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x) => `${x.toFixed(0)} ms`;

const server = await serve();
const browser = await openBrowser({ webgpu: true });
try {
  const { page } = browser;
  await page.goto(`${server.url}www/glimpse.d.ts`); // any page of the origin; the API is imported
  const photoBytes = [...readFileSync(photo('imagenet_13_'))];
  console.log(`Chromium headless, ${runs} runs per measurement (after one warm-up)`);
  console.log('backend  model load  first image  JPEG file (median)  640×480 frame (median)');
  for (const backend of backends) {
    const r = await page.evaluate(benchInPage, { backend, runs, photoBytes });
    console.log(
      `${r.backend.padEnd(8)} ${ms(r.loadMs).padStart(10)}  ${ms(r.firstMs).padStart(11)}  ` +
        `${ms(median(r.fileMs)).padStart(18)}  ${ms(median(r.frameMs)).padStart(22)}`,
    );
  }
} finally {
  await browser.close();
  await server.close();
}
