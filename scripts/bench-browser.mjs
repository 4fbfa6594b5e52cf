#!/usr/bin/env node
// npm run bench:browser [-- --runs 20 --gpu-runs 20 --backends cpu,cpu-threads,webgpu --threads 2 --live-rounds 4]
//
// One headless Chromium session measures glimpse (through its public API) and, side by side,
// onnxruntime-web running the ONNX export of the same reference model
// (models/efficientnet-lite0.onnx, from tests/reference/export_onnx.py) with its `wasm`
// (one thread, and `--threads` threads) and `webgpu` providers. Prints a Markdown table.
// The page is cross-origin isolated (as `npm start` serves it), which threads need: 'cpu' is
// glimpse's one-threaded build and onnxruntime-web with `numThreads: 1`, 'cpu-threads' the
// threaded build and `numThreads: --threads`.
//
// What is timed per image: glimpse.classify() of a 640×480 frame, end to end (transfer to the
// worker, resize and crop, normalize, network, top-5); onnxruntime-web's session.run() on an
// input tensor that is already 224×224 and normalized, so the peer does strictly less work.
// WebGPU here is SwiftShader (the GPU emulated on the CPU) unless Chromium finds a real GPU.
// With WebGPU among the backends it also runs the suite's one real-model WebGPU check: a
// caption of the same photo on WebGPU and on the CPU, token by token (minutes on SwiftShader,
// so the browser tests do this only with a tiny model).
// Live: the page itself with Chromium's fake camera playing a photo at 30 fps (faster than the
// CPU classifies, so the engine sets the pace), on the CPU, "Show where"
// off and on in alternating 8-second windows (so load that comes and goes on the machine
// falls on both alike); each window's frame rate is counted from the results shown.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { openBrowser, serve } from './browser.mjs';
import { firstVisitTable } from './first-visit.mjs';
import { ROOT } from './lib.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    'gpu-runs': { type: 'string', default: '20' },
    'caption-runs': { type: 'string', default: '3' },
    'gpu-caption-runs': { type: 'string', default: '1' },
    backends: { type: 'string', default: 'cpu,cpu-threads,webgpu' },
    threads: { type: 'string', default: '2' },
    'live-rounds': { type: 'string', default: '4' },
  },
});
const backends = values.backends.split(',');
/** What each of `--backends` runs: glimpse's backend and CPU threads (the peer's likewise). */
const ENGINES = {
  cpu: { backend: 'cpu', threads: 1 },
  'cpu-threads': { backend: 'cpu', threads: Number(values.threads) },
  webgpu: { backend: 'webgpu', threads: 1 },
};
for (const backend of backends) if (!ENGINES[backend]) throw new Error(`unknown backend '${backend}' (use ${Object.keys(ENGINES).join(', ')})`);
const runsFor = (backend) => Number(backend === 'webgpu' ? values['gpu-runs'] : values.runs);
const threadsName = (threads) => `${threads} thread${threads === 1 ? '' : 's'}`;
const ONNX = join(ROOT, 'models', 'efficientnet-lite0.onnx');
const ORT_DIST = join(ROOT, 'node_modules', 'onnxruntime-web', 'dist');

/**
 * In the page: a first visit's load of glimpse on `backend` (nothing cached), in ms, then a
 * few classifications, as a visitor's first frames (what the browser keeps of the compiled
 * module for the next visit depends on the code that ran).
 */
async function glimpseFirstVisit({ backend, threads }) {
  const { Glimpse, clearModelCache } = await import('/www/glimpse.js');
  await clearModelCache();
  const start = performance.now();
  const glimpse = await Glimpse.load({ models: '/models/', backend, threads });
  const ms = performance.now() - start;
  const frame = new ImageData(640, 480);
  for (let i = 0; i < 5; i++) await glimpse.classify(frame);
  glimpse.dispose();
  return ms;
}

/**
 * In the page, reloaded after `glimpseFirstVisit`: a later visit's load (models from the Cache
 * API, the wasm revalidated in the HTTP cache), its first and steady inferences, and the load
 * of another engine in the same page (what a restart after a crash costs).
 */
async function glimpseLaterVisit({ backend, threads, runs }) {
  const { Glimpse } = await import('/www/glimpse.js');
  const loadOnce = async () => {
    const start = performance.now();
    const glimpse = await Glimpse.load({ models: '/models/', backend, threads });
    return { glimpse, ms: performance.now() - start };
  };
  const { glimpse, ms: cachedMs } = await loadOnce();
  const frame = new ImageData(640, 480);
  for (let i = 0; i < frame.data.length; i++) frame.data[i] = (i * 37) & 255;
  const time = async () => {
    const start = performance.now();
    await glimpse.classify(frame);
    return performance.now() - start;
  };
  const firstMs = await time();
  await time();
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await time());
  const { backend: used, threads: cpuThreads } = glimpse.info;
  // Where the engine's time goes, layer kind by layer kind (on the CPU the replay `glimpse bench
  // --profile` runs natively; on WebGPU each layer is waited for by reading its output back).
  const profile = await glimpse.engineProfile({ runs });
  glimpse.dispose();
  const another = await loadOnce();
  another.glimpse.dispose();
  const engine = `glimpse ${used === 'webgpu' ? 'WebGPU' : `CPU (wasm SIMD, ${cpuThreads} thread${cpuThreads === 1 ? '' : 's'})`}`;
  return { engine, used, threads: cpuThreads ?? 1, cachedMs, samePageMs: another.ms, firstMs, samples, profile };
}

/**
 * In the page: captions on `backend` through the public API: caption model load (GGUF from
 * the network), then `runs` captions of the same classification; time to first token (the
 * prompt's pass), and decode tokens/s over the tokens after the first. `first` is the first
 * caption (the warm-up where there is one): the only one that reads the prompt's beginning,
 * which the later ones reuse.
 */
async function benchCaption({ backend, threads, runs, warmUp }) {
  const { Glimpse } = await import('/www/glimpse.js');
  const glimpse = await Glimpse.load({ models: '/models/', backend, threads });
  let start = performance.now();
  await glimpse.loadCaptionModel();
  const loadMs = performance.now() - start;
  const photo = await (await fetch('/models/photos/imagenet_00_243.jpg')).blob();
  const result = await glimpse.classify(photo);
  const samples = [];
  const first = warmUp ? await glimpse.caption(result) : null; // prepares the kernels of each shape
  for (let i = 0; i < runs; i++) samples.push(await glimpse.caption(result));
  const { backend: used, threads: cpuThreads } = glimpse.info;
  // Where a decoded token's time goes (the same profile as `glimpse bench --profile`).
  const profile = used === 'cpu' ? await glimpse.captionProfile({ tokens: 32 }) : null;
  glimpse.dispose();
  return { used, threads: cpuThreads ?? 1, loadMs, first: first ?? samples[0], samples: first ? samples : samples.slice(1), profile };
}

/**
 * In the page: the real caption model on WebGPU against the CPU (the browser tests run only a
 * tiny model on WebGPU): one photo classified on the CPU, then a caption of its classes on each
 * backend through the wasm engine, each step's greedy token and logit kept to compare.
 */
async function compareCaptionBackends({ ggufPath }) {
  const { default: init, Engine, Picture } = await import('/pkg/glimpse.js');
  await init();
  const load = async (path) => new Uint8Array(await (await fetch(path)).arrayBuffer());
  const [weights, gguf, photo] = await Promise.all(
    ['/models/efficientnet-lite0.int8.bpk', ggufPath, '/models/photos/imagenet_00_243.jpg'].map(load),
  );
  const runs = {};
  let top;
  for (const backend of ['cpu', 'webgpu']) {
    const engine = await Engine.create(backend, weights);
    top ??= (await engine.classify(Picture.fromEncoded(photo), { topK: 5 })).top;
    engine.loadCaptionModel(gguf);
    const start = performance.now();
    const id = engine.captionStart(top);
    const steps = [];
    for (let step = { done: false }; !step.done; ) {
      step = await engine.captionStep(id);
      steps.push(step);
    }
    runs[backend] = { steps, text: steps.at(-1).caption.text, ms: performance.now() - start };
    engine.free();
  }
  return runs;
}

/** In the page: 5 classes × 20 examples added to a teacher (CPU), then trained. */
async function benchTeach() {
  const { Glimpse } = await import('/www/glimpse.js');
  const glimpse = await Glimpse.load({ models: '/models/', backend: 'cpu' });
  const teacher = glimpse.teach();
  const frame = (seed) => {
    const image = new ImageData(320, 240);
    for (let i = 0; i < image.data.length; i++) image.data[i] = (i * seed * 13 + seed * 101) & 255;
    return image;
  };
  let start = performance.now();
  for (let c = 0; c < 5; c++) for (let e = 0; e < 20; e++) await teacher.add(`class ${c}`, frame(c * 20 + e + 1));
  const addMs = performance.now() - start;
  start = performance.now();
  await teacher.train();
  const trainMs = performance.now() - start;
  glimpse.dispose();
  return { addMs, trainMs };
}

/**
 * In the page: onnxruntime-web with execution provider `provider`, its wasm on `threads`
 * threads (set once per page: onnxruntime-web reads it when it first starts).
 */
async function benchOrt({ provider, runs, threads }) {
  const ort = await import('/node_modules/onnxruntime-web/dist/ort.webgpu.min.mjs');
  ort.env.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
  ort.env.wasm.numThreads = threads;
  const fetchModel = async (cache) => {
    const start = performance.now();
    const bytes = new Uint8Array(await (await fetch('/models/efficientnet-lite0.onnx', { cache })).arrayBuffer());
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider] });
    return { session, ms: performance.now() - start };
  };
  const network = await fetchModel('no-store');
  await network.session.release();
  const { session, ms: cachedMs } = await fetchModel('force-cache');
  const input = new ort.Tensor('float32', new Float32Array(3 * 224 * 224).map((_, i) => ((i * 37) % 255) / 128 - 1), [1, 3, 224, 224]);
  const feeds = { [session.inputNames[0]]: input };
  const time = async () => {
    const start = performance.now();
    const out = await session.run(feeds);
    await out[session.outputNames[0]].getData?.();
    return performance.now() - start;
  };
  const firstMs = await time();
  await time();
  const samples = [];
  for (let i = 0; i < runs; i++) samples.push(await time());
  await session.release();
  return {
    engine: `onnxruntime-web ${ort.env.versions?.web ?? ''} ${provider === 'webgpu' ? 'WebGPU' : `wasm (${threads} thread${threads === 1 ? '' : 's'})`}`,
    used: provider === 'webgpu' ? 'webgpu' : 'cpu',
    threads,
    networkMs: network.ms,
    cachedMs,
    firstMs,
    samples,
  };
}

/**
 * The page on the CPU with the fake camera playing `clip`: frames per second of live results
 * in windows of `windowMs`, "Show where" off then on, `rounds` times.
 */
async function benchLiveWhere({ clip, rounds, windowMs = 8000, settleMs = 2000 }) {
  const browser = await openBrowser({ camera: clip });
  try {
    const { page } = browser;
    await page.goto(`${server.url}?backend=cpu`);
    await page.waitForFunction(() => document.getElementById('backend-badge')?.dataset.backend, null, { timeout: 300_000 });
    await page.evaluate(() => {
      window.shownAt = [];
      new MutationObserver(() => window.shownAt.push(performance.now())).observe(document.getElementById('results'), { childList: true });
    });
    await page.click('#camera-start');
    await page.waitForFunction(() => window.shownAt.length >= 5, null, { timeout: 120_000 });
    const windows = { plain: [], where: [] };
    for (let round = 0; round < rounds; round++) {
      for (const where of [false, true]) {
        await page.setChecked('#where-toggle', where);
        await page.waitForTimeout(settleMs);
        const from = await page.evaluate(() => window.shownAt.length);
        await page.waitForTimeout(windowMs);
        const fps = await page.evaluate((from) => {
          const times = window.shownAt.slice(from);
          return times.length > 1 ? ((times.length - 1) * 1000) / (times.at(-1) - times[0]) : 0;
        }, from);
        windows[where ? 'where' : 'plain'].push(fps);
      }
    }
    return windows;
  } finally {
    await browser.close();
  }
}

const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const fmt = (x) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

// Without the page's Content-Security-Policy: onnxruntime-web's Emscripten glue holds a
// `new Function`, which the policy forbids; the bench measures speed, not the policy.
const server = await serve({ headers: { 'X-Content-Type-Options': 'nosniff' }, isolated: true });
const browser = await openBrowser({ webgpu: true });
const rows = [];
const notes = [];
const captions = [];
let agreement = null;
let teach = null;
try {
  const { page } = browser;
  await page.goto(`${server.url}www/glimpse.d.ts`); // any page of the origin; the APIs are imported
  const cdp = await page.context().newCDPSession(page);
  for (const backend of backends) {
    const runs = runsFor(backend);
    const engine = ENGINES[backend];
    // A first visit: nothing in the HTTP cache (nor V8's code cache kept with it) or the Cache API.
    await cdp.send('Network.clearBrowserCache');
    const networkMs = await page.evaluate(glimpseFirstVisit, engine);
    await page.reload();
    rows.push({ networkMs, ...(await page.evaluate(glimpseLaterVisit, { ...engine, runs })), runs });
    if (!existsSync(ONNX) || !existsSync(ORT_DIST)) {
      notes.push('onnxruntime-web: not measured (needs the npm packages (`node scripts/setup.mjs`) and models/efficientnet-lite0.onnx from tests/reference/export_onnx.py)');
      continue;
    }
    const provider = engine.backend === 'webgpu' ? 'webgpu' : 'wasm';
    try {
      await page.reload(); // onnxruntime-web's threads are fixed once it has started in a page
      rows.push({ ...(await page.evaluate(benchOrt, { provider, runs, threads: engine.threads })), runs });
    } catch (error) {
      notes.push(`onnxruntime-web ${provider}: failed: ${error.message.split('\n')[0]}`);
    }
  }
  for (const backend of backends) {
    try {
      const runs = Number(values[backend === 'webgpu' ? 'gpu-caption-runs' : 'caption-runs']);
      if (runs === 0) continue;
      // On SwiftShader one caption takes minutes: measured once, kernel preparation included.
      captions.push(await page.evaluate(benchCaption, { ...ENGINES[backend], runs, warmUp: backend !== 'webgpu' }));
    } catch (error) {
      notes.push(`captions on ${backend}: failed: ${error.message.split('\n')[0]}`);
    }
  }
  if (backends.includes('webgpu')) {
    try {
      const manifest = JSON.parse(readFileSync(join(ROOT, 'models', 'manifest.json'), 'utf8'));
      const ggufPath = `/models/${manifest.models.find((m) => m.name === 'smollm2-135m-instruct').file}`;
      agreement = await page.evaluate(compareCaptionBackends, { ggufPath });
    } catch (error) {
      notes.push(`WebGPU against the CPU (captions): failed: ${error.message.split('\n')[0]}`);
    }
  }
  teach = await page.evaluate(benchTeach);
} finally {
  await browser.close();
}
let live = null;
try {
  const rounds = Number(values['live-rounds']);
  if (rounds > 0) {
    const scratch = mkdtempSync(join(tmpdir(), 'glimpse-bench-'));
    try {
      const clip = join(scratch, 'camera.y4m');
      execFileSync(join(ROOT, 'tests', 'browser', 'make-clip.sh'), [join(ROOT, 'models', 'photos', 'imagenet_08_915.jpg'), clip, '30']);
      live = await benchLiveWhere({ clip, rounds });
    } catch (error) {
      notes.push(`live camera with "Show where": failed: ${error.message.split('\n')[0]}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
} finally {
  await server.close();
}

const peerOf = (row) => rows.find((r) => r.engine.startsWith('onnxruntime') && r.used === row.used && r.threads === row.threads);
console.log(`Headless Chromium, ${new Date().toISOString().slice(0, 10)}; runs after warm-up: CPU ${values.runs}, WebGPU ${values['gpu-runs']}\n`);
console.log('| engine | model load (network) | model load (cached) | cached / network | another engine, same page | first inference | median | min | median vs onnxruntime-web |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  const peer = row.engine.startsWith('glimpse') ? peerOf(row) : null;
  const ratio = peer ? `${(median(row.samples) / median(peer.samples)).toFixed(2)}×` : '–';
  console.log(
    `| ${row.engine} | ${fmt(row.networkMs)} | ${fmt(row.cachedMs)} | ${(row.cachedMs / row.networkMs).toFixed(2)}× | ${row.samePageMs === undefined ? '–' : fmt(row.samePageMs)} | ${fmt(row.firstMs)} | ${fmt(median(row.samples))} | ${fmt(Math.min(...row.samples))} | ${ratio} |`,
  );
}
const cell = (spread) => (spread ? `${spread.median.toFixed(2)} | ${spread.min.toFixed(2)}` : '– | –');
/** The per-layer-kind table of `profiled` rows' profiles, kinds by the first's medians. */
function printProfile(profiled, title, runs) {
  const kinds = Object.entries(profiled[0].profile.kinds)
    .sort(([, a], [, b]) => b.median - a.median)
    .map(([kind]) => kind);
  console.log(`\n${title} (ms, median | min of ${runs}, summed over each kind's layers)\n`);
  console.log(`| kind | ${profiled.map((row) => `${row.engine} median | min`).join(' | ')} |`);
  console.log(`|---|${profiled.map(() => '---:|---:').join('|')}|`);
  for (const kind of kinds) console.log(`| ${kind} | ${profiled.map((row) => cell(row.profile.kinds[kind])).join(' | ')} |`);
  console.log(`| sum of the kinds | ${profiled.map((row) => cell(row.profile.total)).join(' | ')} |`);
}
const profiledCpu = rows.filter((row) => row.profile?.backend === 'cpu');
if (profiledCpu.length) {
  printProfile(profiledCpu, "glimpse's CPU engine per layer kind, one 640×480 frame's forward pass replayed op by op", values.runs);
  console.log(`| the forward pass, no clocks | ${profiledCpu.map((row) => cell(row.profile.forward)).join(' | ')} |`);
  for (const step of Object.keys(profiledCpu[0].profile.frame)) {
    console.log(`| frame: ${step} | ${profiledCpu.map((row) => cell(row.profile.frame[step])).join(' | ')} |`);
  }
  // What classify() spends beyond these (the frame's trip to the worker and back, the top-5):
  // the frame's median less the medians above, so only a rough figure.
  const rest = (row) => median(row.samples) - row.profile.forward.median - Object.values(row.profile.frame).reduce((sum, s) => sum + s.median, 0);
  console.log(`| the rest of classify() (transfer, read-out; medians subtracted) | ${profiledCpu.map((row) => `${rest(row).toFixed(2)} | –`).join(' | ')} |`);
}
const profiledGpu = rows.filter((row) => row.profile?.backend === 'webgpu');
if (profiledGpu.length) {
  printProfile(
    profiledGpu,
    "glimpse's WebGPU engine per layer kind, one frame's forward pass, each layer waited for by reading its output back, less a second read of it",
    values['gpu-runs'],
  );
  console.log(`| the second reads, taken off (${profiledGpu[0].profile.layers} per pass) | ${profiledGpu.map((row) => cell(row.profile.readbacks)).join(' | ')} |`);
  console.log(`| the forward pass, no clocks (one read) | ${profiledGpu.map((row) => cell(row.profile.forward)).join(' | ')} |`);
}
const wasmSize = (name) => {
  const wasm = readFileSync(join(ROOT, 'pkg', name));
  return `${mib(wasm.length)} (${mib(gzipSync(wasm, { level: 9 }).length)} gzipped)`;
};
console.log(
  `\nglimpse wasm: vision build ${wasmSize('glimpse_vision_bg.wasm')}, full build (labels and captions, fetched on first use) ${wasmSize('glimpse_bg.wasm')}, threaded CPU build (cross-origin-isolated pages) ${wasmSize('glimpse_threads_bg.wasm')}; weights ${mib(statSync(join(ROOT, 'models', 'efficientnet-lite0.int8.bpk')).size)} (int8)`,
);
console.log(`\n${firstVisitTable().join('\n')}`);
const ortWasm = join(ORT_DIST, 'ort-wasm-simd-threaded.jsep.wasm');
if (existsSync(ortWasm)) {
  const bytes = readFileSync(ortWasm);
  console.log(`onnxruntime-web wasm (jsep): ${mib(bytes.length)} (${mib(gzipSync(bytes, { level: 9 }).length)} gzipped); model ${existsSync(ONNX) ? mib(statSync(ONNX).size) : '–'} (f32)`);
}

if (captions.length) {
  console.log(`\nCaptions (SmolLM2-135M-Instruct Q4_1, the bull mastiff photo; the first caption, whose prompt is read whole, then the median of ${values['caption-runs']} on the CPU (on WebGPU ${values['gpu-caption-runs']} in all, the first included) that reuse the prompt's beginning)\n`);
  console.log('| backend | model load | prompt tokens | first caption: time to first token | prompt tokens/s | later captions: time to first token | prompt tokens reused | decode tokens/s | tokens |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const { used, threads, loadMs, first, samples } of captions) {
    const later = samples.length ? fmt(median(samples.map((c) => c.firstTokenMs))) : '–';
    const decoded = samples.length ? samples : [first];
    const decode = median(decoded.map((c) => (c.tokens - 1) / ((c.ms - c.firstTokenMs) / 1000)));
    const prompt = first.promptTokens;
    console.log(
      `| ${used === 'webgpu' ? 'WebGPU' : `CPU (wasm SIMD, ${threadsName(threads)})`} | ${fmt(loadMs)} | ${prompt} | ${fmt(first.firstTokenMs)} | ${(prompt / (first.firstTokenMs / 1000)).toFixed(0)} | ${later} | ${samples[0]?.promptReused ?? '–'} | ${decode.toFixed(1)} | ${first.tokens} |`,
    );
  }
}
const decodeProfiled = captions.filter((c) => c.profile);
if (decodeProfiled.length) {
  const first = decodeProfiled[0].profile;
  const roles = Object.entries(first.products).sort(([, a], [, b]) => b.median - a.median).map(([role]) => role);
  const name = ({ threads }) => `CPU, ${threadsName(threads)}`;
  console.log(`\nA decoded token on the CPU engine, after a ${first.prompt}-token prompt, ${first.tokens} tokens (ms per token, median | min; each role summed over the layers)\n`);
  console.log(`| part | ${decodeProfiled.map((c) => `${name(c)} median | min`).join(' | ')} |`);
  console.log(`|---|${decodeProfiled.map(() => '---:|---:').join('|')}|`);
  const cell = (s) => (s ? `${s.median.toFixed(2)} | ${s.min.toFixed(2)}` : '– | –');
  for (const role of roles) console.log(`| ${role} | ${decodeProfiled.map((c) => cell(c.profile.products[role])).join(' | ')} |`);
  console.log(`| the rest (RoPE, norms, SiLU, adds, embedding, argmax) | ${decodeProfiled.map((c) => cell(c.profile.rest)).join(' | ')} |`);
  console.log(`| the whole step | ${decodeProfiled.map((c) => cell(c.profile.step)).join(' | ')} |`);
  console.log(`| the step without clocks (mean; the model's own loop, as natively) | ${decodeProfiled.map((c) => `${c.profile.unclocked_step.toFixed(2)} | –`).join(' | ')} |`);
}
if (agreement) {
  // The same agreement the browser tests demand of the tiny model: every greedy token, and
  // each chosen token's logit within |a − b| / max(|b|, 1).
  const { cpu, webgpu } = agreement;
  const steps = Math.min(cpu.steps.length, webgpu.steps.length);
  let firstDifference = -1;
  let worst = 0;
  for (let i = 0; i < steps; i++) {
    if (firstDifference < 0 && cpu.steps[i].token !== webgpu.steps[i].token) firstDifference = i;
    if (firstDifference < 0) worst = Math.max(worst, Math.abs(webgpu.steps[i].logit - cpu.steps[i].logit) / Math.max(Math.abs(cpu.steps[i].logit), 1));
  }
  const same = firstDifference < 0 && cpu.steps.length === webgpu.steps.length;
  console.log(`\nWebGPU against the CPU, SmolLM2-135M, the bull mastiff photo: ${same ? `all ${steps} greedy tokens identical` : `tokens differ${firstDifference >= 0 ? ` from step ${firstDifference + 1}` : ` in length (${webgpu.steps.length} vs ${cpu.steps.length})`}`}; chosen-token logits within ${worst.toExponential(2)} relative (to the first difference); captions ${webgpu.text === cpu.text ? 'identical' : `differ: "${webgpu.text}" vs "${cpu.text}"`} (WebGPU ${fmt(webgpu.ms)}, CPU ${fmt(cpu.ms)})`);
}
if (live) {
  const [plain, where] = [median(live.plain), median(live.where)];
  console.log(`\nLive camera on the page (CPU, 640×480 fake camera at 30 fps, ${live.plain.length} windows of 8 s each way, alternating): "Show where" off ${plain.toFixed(2)} fps (windows ${live.plain.map((x) => x.toFixed(2)).join(', ')}), on ${where.toFixed(2)} fps (windows ${live.where.map((x) => x.toFixed(2)).join(', ')}): ${((where / plain - 1) * 100).toFixed(1)}%`);
}
if (teach) {
  console.log(`\nTeachable classes (CPU): 5 classes × 20 examples added in ${fmt(teach.addMs)} (${fmt(teach.addMs / 100)} per example, 3 views each); training ${fmt(teach.trainMs)}`);
}
for (const note of notes) console.log(note);
