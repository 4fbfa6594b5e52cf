#!/usr/bin/env node
// Soak: a long camera session through the package's API, then captions started and cancelled,
// then examples added and removed, watching memory and frame results all along.
//
//   npm run soak                                   10,000 frames on the CPU, 200 captions, 100 cycles
//   npm run soak -- --frames 600 --every 100 --captions 10 --cycles 10    (CI's short version)
//   npm run soak -- --backend webgpu --frames 300 --every 50              (WebGPU on SwiftShader)
//
// Chromium's fake camera plays a clip made from a foolbox photo; labels and a taught class set
// (two classes from two photos) are on for every frame. Every `--every` frames, after a forced
// garbage collection, it samples the page's JS heap (CDP Performance.getMetrics), the engine's
// wasm memory and its count of live objects (`engineStats()`), and the frame rate. It checks,
// and exits non-zero otherwise: in each phase, after its warm-up (the camera's first sample, a
// first caption, a first cycle), the heap and the wasm memory grow at most 5%; no engine object is left alive; every frame result arrives once and in order
// (`frame` counts up by one); the frame rate of each window (frames between two samples over
// the time between them) stays within 10% of their median
// (CPU only: SwiftShader's timing is too uneven to hold to that).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openBrowser, serve } from './browser.mjs';
import { ROOT } from './lib.mjs';

const PHOTOS = join(ROOT, 'models', 'photos');
const CAMERA_PHOTO = 'imagenet_08_915.jpg'; // the yurt
const TAUGHT = { tent: 'imagenet_08_915.jpg', dog: 'imagenet_16_251.jpg' };
const LABELS = ['dog', 'bird', 'vehicle', 'building', 'food'];

/** What the soak allows: growth after warm-up, and the frame rate's spread. */
export const LIMITS = { growth: 0.05, fpsSpread: 0.1 };

const MiB = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** In the page: loads the engine, teaches the set, starts the camera and watches it. */
async function startInPage({ backend, taught, labels }) {
  const { Glimpse } = await import('/www/glimpse.js');
  const glimpse = await Glimpse.load({ backend, models: '/models/' });
  await glimpse.loadLabelModel();
  const teacher = glimpse.teach();
  for (const [name, bytes] of Object.entries(taught)) {
    const blob = new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
    await teacher.add(name, blob);
    await teacher.add(name, blob);
  }
  await teacher.train();
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
  document.body.append(video);
  await video.play();
  // Only counts are kept: a list of 10,000 results would itself be a leak.
  const soak = { glimpse, teacher, video, count: 0, lastFrame: 0, outOfOrder: 0, errors: 0, lastError: null, fps: 0 };
  window.soak = soak;
  soak.stop = glimpse.watch(video, (result) => {
    soak.count += 1;
    if (result.frame !== soak.lastFrame + 1) soak.outOfOrder += 1;
    soak.lastFrame = result.frame;
    soak.fps = result.fps;
  }, {
    classify: (frame) => teacher.classify(frame, { labels }),
    onError: (error) => {
      soak.errors += 1;
      soak.lastError = `${error.name}: ${error.message}`;
    },
  });
  return glimpse.backend;
}

/**
 * In the engine's worker: counts the GPU buffers the engine makes (`GPUDevice.createBuffer`)
 * and frees (`GPUBuffer.destroy`) from now on, with their bytes, in `self.gpuBuffers`. (wgpu
 * and burn keep their own pools; this is what the browser is actually asked to hold.)
 */
function countGpuBuffers() {
  if (!self.GPUDevice || self.gpuBuffers) return;
  const counts = { created: 0, destroyed: 0, bytes: 0 };
  const made = new WeakSet();
  self.gpuBuffers = counts;
  const { createBuffer } = GPUDevice.prototype;
  GPUDevice.prototype.createBuffer = function (descriptor) {
    const buffer = createBuffer.call(this, descriptor);
    made.add(buffer);
    counts.created += 1;
    counts.bytes += buffer.size;
    return buffer;
  };
  const { destroy } = GPUBuffer.prototype;
  GPUBuffer.prototype.destroy = function () {
    if (made.delete(this)) {
      counts.destroyed += 1;
      counts.bytes -= this.size;
    }
    return destroy.call(this);
  };
}

/** In the page: `count` captions of a photo, each cancelled at its first word. */
async function captionsInPage({ count, bytes }) {
  const { glimpse } = window.soak;
  const blob = new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
  let cancelled = 0;
  for (let i = 0; i < count; i += 1) {
    const controller = new AbortController();
    try {
      await glimpse.caption(blob, { onToken: () => controller.abort(), signal: controller.signal });
    } catch (error) {
      if (error.name !== 'AbortError') throw error;
      cancelled += 1;
    }
  }
  return cancelled;
}

/** In the page: `count` times, an example added to a new class, then the class removed. */
async function cyclesInPage({ count, bytes }) {
  const { teacher } = window.soak;
  const blob = new Blob([new Uint8Array(bytes)], { type: 'image/jpeg' });
  for (let i = 0; i < count; i += 1) {
    await teacher.add('passing', blob);
    await teacher.remove('passing');
  }
}

/**
 * Runs the soak; resolves to `{ samples, failures, frames }` (`failures`: what broke the
 * limits, one line each). `log` gets a line per sample. `checkRate: false` reports the frame
 * rate without holding it to the limit (a short run on a busy machine is no measure of it);
 * `noise` bytes of growth are not counted (a page heap of 1.5 MiB moves by more than 5% from
 * one collection to the next with nothing leaking; a long run shows a leak far above that).
 */
export async function runSoak({
  frames = 10_000,
  every = 500,
  captions = 200,
  cycles = 100,
  backend = 'cpu',
  checkRate = backend === 'cpu',
  noise = 0,
  log = console.log,
} = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'glimpse-soak-'));
  const clip = join(scratch, 'camera.y4m');
  execFileSync(join(ROOT, 'tests', 'browser', 'make-clip.sh'), [join(PHOTOS, CAMERA_PHOTO), clip]);
  const server = await serve();
  const browser = await openBrowser({ camera: clip, webgpu: backend === 'webgpu' });
  const samples = [];
  const failures = [];
  try {
    const { page, context } = browser;
    const cdp = await context.newCDPSession(page);
    await cdp.send('Performance.enable');
    await page.goto(`${server.url}tests/browser/blank.html`);
    // The counter goes into the engine's worker as soon as it starts, before the engine asks
    // for its GPU device (the weights are read from the cache first).
    const counted = [];
    if (backend === 'webgpu') page.on('worker', (worker) => counted.push(worker.evaluate(countGpuBuffers).catch(() => {})));
    const read = (name) => [...readFileSync(join(PHOTOS, name))];
    const taught = Object.fromEntries(Object.entries(TAUGHT).map(([name, file]) => [name, read(file)]));
    const running = await page.evaluate(startInPage, { backend, taught, labels: LABELS });
    log(`soak: ${frames} frames on ${running}, sampled every ${every}; then ${captions} captions cancelled, ${cycles} add/remove cycles`);

    const sample = async (phase) => {
      await cdp.send('HeapProfiler.collectGarbage');
      const { metrics } = await cdp.send('Performance.getMetrics');
      const heap = metrics.find((m) => m.name === 'JSHeapUsedSize').value;
      const state = await page.evaluate(async () => {
        const { glimpse, count, lastFrame, outOfOrder, errors, lastError, fps } = window.soak;
        return { stats: await glimpse.engineStats(), count, lastFrame, outOfOrder, errors, lastError, fps };
      });
      // The window's rate: frames since the last sample over the time since it (the watch's own
      // `fps` covers only its last three seconds).
      const worker = page.workers()[0];
      const gpu = backend === 'webgpu' && worker ? await worker.evaluate(() => self.gpuBuffers ?? null) : null;
      const at = performance.now();
      const previous = samples.at(-1);
      const fps = previous ? ((state.count - previous.frames) * 1000) / (at - previous.at) : state.fps;
      const entry = {
        phase, at, frames: state.count, heap, wasm: state.stats.wasmMemoryBytes, live: state.stats.live, fps, state,
        ...(gpu && { gpuBuffers: gpu.created - gpu.destroyed, gpuBytes: gpu.bytes }),
      };
      samples.push(entry);
      log(
        `${phase.padEnd(9)} frames ${String(state.count).padStart(6)}  heap ${MiB(heap)}  wasm ${MiB(entry.wasm)}  ` +
          `live ${JSON.stringify(entry.live)}  ${phase === 'camera' ? `${fps.toFixed(2)} fps` : ''}` +
          (gpu ? `  GPU buffers ${entry.gpuBuffers} (${MiB(entry.gpuBytes)})` : '') +
          (state.errors ? `  errors ${state.errors} (${state.lastError})` : ''),
      );
      return entry;
    };

    for (let mark = every; mark <= frames; mark += every) {
      await page.waitForFunction((mark) => window.soak.count >= mark || window.soak.errors > 0, mark, { timeout: 0, polling: 500 });
      const entry = await sample('camera');
      if (entry.state.errors) break;
    }
    await page.evaluate(() => window.soak.stop());
    const afterCamera = samples.at(-1);

    // Each later phase is warmed up once first (the caption model's 98 MB load into the engine
    // is growth the phase is expected to make once), then measured against that.
    const photo = read(CAMERA_PHOTO);
    let cancelled = 0;
    if (captions > 0) {
      await page.evaluate(captionsInPage, { count: 1, bytes: photo });
      await sample('captions0');
      cancelled = await page.evaluate(captionsInPage, { count: captions, bytes: photo });
      await sample('captions');
    }
    if (cycles > 0) {
      await page.evaluate(cyclesInPage, { count: 1, bytes: photo });
      await sample('teaching0');
      await page.evaluate(cyclesInPage, { count: cycles, bytes: photo });
      await sample('teaching');
    }

    // The checks.
    const last = samples.at(-1);
    if (afterCamera.state.errors) failures.push(`${afterCamera.state.errors} frames failed: ${afterCamera.state.lastError}`);
    if (afterCamera.frames < frames) failures.push(`only ${afterCamera.frames} of ${frames} frames were classified`);
    if (afterCamera.state.outOfOrder) failures.push(`${afterCamera.state.outOfOrder} frame results came out of order or were lost`);
    if (afterCamera.state.lastFrame !== afterCamera.state.count) {
      failures.push(`frame numbers reached ${afterCamera.state.lastFrame} for ${afterCamera.state.count} results`);
    }
    if (cancelled !== captions) failures.push(`${captions - cancelled} of ${captions} captions were not cancelled`);
    const phases = [
      ['the camera', samples[0], afterCamera],
      ['the captions', samples.find((s) => s.phase === 'captions0'), samples.find((s) => s.phase === 'captions')],
      ['teaching', samples.find((s) => s.phase === 'teaching0'), samples.find((s) => s.phase === 'teaching')],
    ].filter(([, warm, end]) => warm && end);
    for (const [phase, warm, end] of phases) {
      for (const [what, key] of [['the JS heap', 'heap'], ['the wasm memory', 'wasm'], ['the GPU buffers', 'gpuBytes']]) {
        if (warm[key] === undefined) continue;
        const growth = end[key] / warm[key] - 1;
        if (growth > LIMITS.growth && end[key] - warm[key] > noise) {
          failures.push(`during ${phase}, ${what} grew ${(growth * 100).toFixed(1)}% after warm-up (${MiB(warm[key])} → ${MiB(end[key])})`);
        }
      }
    }
    const leftAlive = Object.entries(last.live).filter(([kind, n]) => n !== (kind === 'sets' ? 1 : 0));
    if (leftAlive.length) failures.push(`engine objects left alive: ${JSON.stringify(last.live)} (the taught set is the one expected)`);
    // The first window includes the camera's start; the rest are steady state.
    const rates = samples.filter((s) => s.phase === 'camera').slice(1).map((s) => s.fps);
    if (checkRate && rates.length > 1) {
      const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
      const worst = Math.max(...rates.map((r) => Math.abs(r / median - 1)));
      if (worst > LIMITS.fpsSpread) failures.push(`the frame rate strayed ${(worst * 100).toFixed(0)}% from its median ${median.toFixed(2)} fps`);
    }
    return { samples, failures, frames: afterCamera.frames };
  } finally {
    await browser.close();
    await server.close();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The camera phase as an SVG line chart: wasm memory and JS heap (MiB, left scale) and the
 * frame rate (right scale) against frames classified.
 */
export function plotSoak(samples, { title }) {
  const camera = samples.filter((s) => s.phase === 'camera');
  const [width, height, left, right, top, bottom] = [640, 300, 56, 56, 48, 40];
  const [plotW, plotH] = [width - left - right, height - top - bottom];
  const maxFrames = Math.max(...camera.map((s) => s.frames));
  const mib = (bytes) => bytes / 1024 / 1024;
  const maxMiB = Math.ceil(Math.max(...camera.map((s) => mib(s.wasm))) / 50) * 50 || 50;
  const maxFps = Math.ceil((Math.max(...camera.map((s) => s.fps)) * 1.2) / 5) * 5 || 5;
  const x = (frames) => left + (frames / maxFrames) * plotW;
  const yMiB = (value) => top + plotH - (value / maxMiB) * plotH;
  const yFps = (value) => top + plotH - (value / maxFps) * plotH;
  const line = (points, colour, dash = '') =>
    `<polyline fill="none" stroke="${colour}" stroke-width="2"${dash && ` stroke-dasharray="${dash}"`} points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`;
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const text = (tx, ty, body, anchor = 'middle') => `<text x="${tx.toFixed(1)}" y="${ty.toFixed(1)}" text-anchor="${anchor}">${body}</text>`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    text(width / 2, 18, title),
    ...ticks.map((t) => `<line x1="${left}" x2="${left + plotW}" y1="${yMiB(t * maxMiB)}" y2="${yMiB(t * maxMiB)}" stroke="#ddd"/>`),
    ...ticks.map((t) => text(left - 6, yMiB(t * maxMiB) + 4, `${Math.round(t * maxMiB)}`, 'end')),
    ...ticks.map((t) => text(left + plotW + 6, yFps(t * maxFps) + 4, `${(t * maxFps).toFixed(1)}`, 'start')),
    ...ticks.map((t) => text(x(t * maxFrames), top + plotH + 16, `${Math.round(t * maxFrames)}`)),
    text(left + plotW / 2, height - 6, 'frames classified'),
    text(14, top + plotH / 2, 'MiB', 'middle'),
    text(width - 14, top + plotH / 2, 'fps', 'middle'),
    line(camera.map((s) => [x(s.frames), yMiB(mib(s.wasm))]), '#1f5bd8'),
    line(camera.map((s) => [x(s.frames), yMiB(mib(s.heap))]), '#2a9d4b'),
    line(camera.slice(1).map((s) => [x(s.frames), yFps(s.fps)]), '#d8541f', '5 3'),
    text(width / 2, 34, '<tspan fill="#1f5bd8">wasm memory</tspan> · <tspan fill="#2a9d4b">JS heap</tspan> (MiB, left) · <tspan fill="#d8541f">frame rate</tspan> (fps, right)'),
    '</svg>',
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      frames: { type: 'string', default: '10000' },
      every: { type: 'string', default: '500' },
      captions: { type: 'string', default: '200' },
      cycles: { type: 'string', default: '100' },
      backend: { type: 'string', default: 'cpu' },
      plot: { type: 'string' },
    },
  });
  const started = Date.now();
  const { failures, samples } = await runSoak({
    frames: Number(values.frames),
    every: Number(values.every),
    captions: Number(values.captions),
    cycles: Number(values.cycles),
    backend: values.backend,
  });
  console.log(`soak: ${((Date.now() - started) / 60000).toFixed(1)} min`);
  if (values.plot) {
    const title = `Soak on the ${values.backend === 'webgpu' ? 'WebGPU' : 'CPU'} backend, ${new Date().toISOString().slice(0, 10)}`;
    writeFileSync(values.plot, plotSoak(samples, { title }) + '\n');
    console.log(`soak: plot written to ${values.plot}`);
  }
  if (failures.length) {
    for (const failure of failures) console.error(`FAILED: ${failure}`);
    process.exit(1);
  }
  console.log('soak: passed');
}
