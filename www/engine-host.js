// Runs the wasm `Engine`: inside the module worker (worker.js) or, with `inline: true`, on the
// page's own thread. Inputs arrive as plain, transferable descriptions of a picture:
//   { kind: 'encoded', bytes }                 an image file (JPEG, PNG, WebP, GIF, BMP)
//   { kind: 'rgba', width, height, pixels }    raw RGBA pixels (ArrayBuffer)
//   { kind: 'bitmap', bitmap }                 an ImageBitmap (a video frame, a canvas, ...)

import * as fullBuild from '../pkg/glimpse.js';
import * as threadsBuild from '../pkg/glimpse_threads.js';
import * as visionBuild from '../pkg/glimpse_vision.js';
import { BackendError, errorFromWire, errorToWire } from './errors.js';
import { inNode, wasmBytes } from './node.js';

/**
 * The engine's builds: 'vision' (classification and teaching: the smaller download a page
 * starts with), 'full' (labels and captions too, fetched when first asked for; the one
 * Node.js runs) and 'threads' (everything but WebGPU, on a pool of threads: the CPU engine of
 * a cross-origin-isolated page). One thread runs one of them. Their bindings are imported
 * statically (a few tens of kB of JS each): a module worker that imported them on demand would
 * need code splitting, which some bundlers' worker builds refuse (Vite's default iife worker
 * format); a build's wasm is only fetched when an engine of that build starts.
 */
const BUILDS = { vision: visionBuild, full: fullBuild, threads: threadsBuild };

let wasm = null; // the bindings of the build this thread runs ({ Engine, Picture, compiledModule })
let wasmReady = null; // resolves to its instance's exports
let wasmMemory = null; // the instance's memory, once loaded (for engine.stats)
let wasmIdentity = null; // the module's identity when it came compiled from the page
let pool = null; // the 'threads' build's pool: resolves to its thread count once running

/** Waits for `worker` to post `{ type }`; rejects on its 'pool.failed' or a failed start. */
function poolMessage(worker, type) {
  return new Promise((resolve, reject) => {
    worker.addEventListener('message', function listen({ data }) {
      if (data?.type !== type && data?.type !== 'pool.failed') return;
      worker.removeEventListener('message', listen);
      if (data.type === 'pool.failed') reject(new BackendError(`a CPU thread could not start: ${data.message}`));
      else resolve();
    });
    worker.addEventListener('error', (event) => reject(new BackendError(`a CPU thread could not start: ${event.message ?? 'its script failed'}`)), { once: true });
  });
}

/**
 * Starts the threaded build's pool of `count` threads, each a worker on this instance's shared
 * memory. Every worker has the module running before the pool is built: this thread blocks on
 * the pool as soon as it classifies, and a blocked thread cannot start a worker.
 */
async function startPool(count) {
  const workers = Array.from(
    { length: count },
    (_, i) => new Worker(new URL('./pool-worker.js', import.meta.url), { type: 'module', name: `glimpse-cpu-${i + 1}` }),
  );
  const module = wasm.compiledModule();
  await Promise.all(
    workers.map((worker) => {
      const ready = poolMessage(worker, 'pool.ready');
      worker.postMessage({ type: 'pool.init', module, memory: wasmMemory });
      return ready;
    }),
  );
  const running = workers.map((worker) => poolMessage(worker, 'pool.running'));
  let next = 0;
  wasm.startThreadPool(count, (start) => workers[next++].postMessage({ type: 'pool.run', start }));
  await Promise.all(running);
  return wasm.cpuThreads();
}

/** Engine objects alive, counted as they are made and freed (engine.stats). */
const live = { pictures: 0, captions: new Set(), sets: new Set() };

/**
 * The engine (wgpu in Rust) does not report a lost GPU device: its next read-back fails or
 * never ends. So every device it asks for is watched here, the one place JS sees it, and a
 * loss nobody asked for (a driver reset, a GPU process crash, `device.destroy()`) goes to the
 * current host's `onGpuLost`.
 */
const watchedDevices = new Set(); // devices of the engine in use; one that is freed on purpose leaves
let gpuLostListener = null;

/** How long a failure on the GPU waits for `device.lost` to say whether the device went. */
const LOST_GRACE_MS = 250;

function watchGpuDevices() {
  const prototype = globalThis.GPUAdapter?.prototype;
  if (!prototype || prototype.requestDevice.glimpseWatched) return;
  const requestDevice = prototype.requestDevice;
  const watched = async function (...args) {
    const device = await requestDevice.apply(this, args);
    watchedDevices.add(device);
    device.lost.then((info) => {
      if (!watchedDevices.delete(device)) return;
      const detail = [info?.reason, info?.message].filter(Boolean).join(': ');
      gpuLostListener?.(`the GPU device was lost${detail ? ` (${detail})` : ''}`);
    });
    return device;
  };
  watched.glimpseWatched = true;
  prototype.requestDevice = watched;
}

/** What a GPU error says when its device is gone (wgpu's and the browser's wordings). */
const DEVICE_LOST = /\bdevice\b.*\b(lost|destroyed)\b|\bDeviceLost\b/i;

/** A wasm trap (a Rust panic) leaves the engine's state half-written: it must not be used again. */
function isTrap(error) {
  return typeof WebAssembly !== 'undefined' && error instanceof WebAssembly.RuntimeError;
}

/** Why WebGPU cannot be used here, or null when an adapter is available. */
async function webgpuUnavailableReason() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return inNode ? 'Node.js does not offer WebGPU' : 'this browser does not offer WebGPU (navigator.gpu is missing)';
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return 'no WebGPU adapter is available (the GPU may be blocklisted or disabled)';
  } catch (error) {
    return `requesting a WebGPU adapter failed: ${error.message}`;
  }
  return null;
}

/**
 * The wasm engine rejects with JS Errors whose `name` is the kind (`UnsupportedImageError`, …)
 * and whose message is the detail alone; this makes them instances of the package's classes.
 */
function asTyped(error) {
  const typed = errorFromWire(errorToWire(error));
  if (isTrap(error) || error?.trap) typed.trap = true;
  return typed;
}

/**
 * Loads the wasm module and creates an engine on `backend` ('auto' | 'webgpu' | 'cpu').
 * `build`: 'vision', 'full' or 'threads' (see BUILDS; Node.js always runs 'full'); `threads`:
 * the 'threads' build's pool size (a worker's engine only: the page's own thread must not
 * block). `compiled`: the module another engine of the page already compiled (`{ module,
 * identity }`, see `shareableModule`), instantiated instead of fetching and compiling it again.
 * Resolves to `{ engine, backend: 'webgpu' | 'cpu', threads, fallbackReason }` (`threads`: the
 * CPU threads it computes on, null on WebGPU).
 */
export async function createEngine({ backend, weights, compiled = null, build = 'full', threads = 1 }) {
  if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
    throw new BackendError(`unknown backend '${backend}' (use 'auto', 'webgpu' or 'cpu')`);
  }
  if (!BUILDS[build]) throw new BackendError(`unknown engine build '${build}' (use 'vision', 'full' or 'threads')`);
  if (build === 'threads' && backend === 'webgpu') throw new BackendError('the threaded engine build runs on the CPU only');
  const bindings = BUILDS[inNode ? 'full' : build];
  if (wasm && wasm !== bindings) throw new BackendError(`this thread already runs another engine build, not '${build}'`);
  wasm = bindings;
  if (compiled) wasmIdentity ??= compiled.identity;
  wasmReady ??= (async () => {
    const source = inNode ? { module_or_path: await wasmBytes() } : compiled ? { module_or_path: compiled.module } : undefined;
    return wasm.default(source);
  })();
  wasmMemory = (await wasmReady).memory;
  const { Engine } = wasm;
  if (build === 'threads') pool ??= startPool(threads);
  const cpuThreads = build === 'threads' ? await pool : 1;

  let requested = backend;
  let fallbackReason = null;
  if (build === 'threads' && backend === 'auto') {
    // Only started for 'auto' when no WebGPU adapter is there to compare (glimpse.js).
    requested = 'cpu';
    fallbackReason = (await webgpuUnavailableReason()) ?? 'the threaded CPU engine was chosen';
  } else if (backend !== 'cpu') {
    watchGpuDevices();
    const reason = await webgpuUnavailableReason();
    if (reason && backend === 'webgpu') throw new BackendError(`WebGPU was requested but ${reason}`);
    if (reason) {
      requested = 'cpu';
      fallbackReason = reason;
    }
  }
  try {
    const engine = await Engine.create(requested, new Uint8Array(weights));
    const on = engine.backend;
    return { engine, backend: on, threads: on === 'cpu' ? cpuThreads : null, fallbackReason: fallbackReason ?? engine.fallbackReason ?? null };
  } catch (error) {
    throw asTyped(error);
  }
}

let canvas = null;

function bitmapPixels(bitmap) {
  const { width, height } = bitmap;
  if (!canvas) canvas = new OffscreenCanvas(width, height);
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, width, height).data;
}

/** Decodes an input description into the engine's `Picture` (the caller frees it). */
function pictureOf(input) {
  switch (input.kind) {
    case 'encoded':
      return wasm.Picture.fromEncoded(new Uint8Array(input.bytes));
    case 'rgba':
      return wasm.Picture.fromRgba(input.width, input.height, new Uint8Array(input.pixels));
    case 'bitmap': {
      const { width, height } = input.bitmap;
      return wasm.Picture.fromRgba(width, height, bitmapPixels(input.bitmap));
    }
    default:
      throw new BackendError(`unknown input kind '${input.kind}'`);
  }
}

/** Runs `work(picture)` on a decoded input, keeping the engine's error kinds. */
async function withPicture(input, work) {
  let picture = null;
  try {
    picture = pictureOf(input);
    live.pictures += 1;
    return await work(picture);
  } catch (error) {
    throw asTyped(error);
  } finally {
    if (picture) {
      picture.free();
      live.pictures -= 1;
    }
  }
}

async function typed(work) {
  try {
    return await work();
  } catch (error) {
    throw asTyped(error);
  }
}

/**
 * Classifies one input. `options`: `{ topK, labels?, set? }`. Resolves to
 * `{ top, labels?, taught?, ms }`.
 */
export async function classifyInput(engine, input, options) {
  const start = performance.now();
  const result = await withPicture(input, (picture) => engine.classify(picture, options));
  // The engine hands maps over as plain arrays, inside the result's JSON (one crossing out
  // of wasm); the API promises Float32Arrays.
  for (const { where } of result.top) if (where) where.map = Float32Array.from(where.map);
  return { ...result, ms: performance.now() - start };
}

/**
 * The module that runs, as `"<url> <bytes>"` (resource timing's record of the .wasm fetched,
 * or the identity handed over with a compiled module), or null when the browser kept no
 * record: what a measurement of the backends is remembered with, so that a new build is
 * measured again.
 */
function moduleIdentity() {
  if (wasmIdentity) return wasmIdentity;
  const entries = globalThis.performance?.getEntriesByType?.('resource') ?? [];
  const wasm = entries.filter((entry) => /\.wasm(?:$|[?#])/.test(entry.name)).at(-1);
  return wasm ? `${wasm.name} ${wasm.decodedBodySize}` : null;
}

/**
 * The compiled module, for the page to hand to its next engines (a restart after a crash, a
 * second `Glimpse.load`): they skip the download and the compilation, and V8 shares the
 * machine code it has already optimized between them. Null where there is nothing to share
 * (Node, or a module not yet loaded).
 */
function shareableModule() {
  return inNode ? null : { module: wasm.compiledModule(), identity: moduleIdentity() };
}

/**
 * Times whole classifications of one 640×480 frame (a camera's), after `warmUp` untimed ones
 * (a GPU compiles its kernels on the first). Stops early once the times show the engine
 * cannot beat `beat` ms (its best is already over twice that): a slow GPU is not waited for.
 * Resolves to the median of the timed runs, in ms.
 */
async function timeInference(engine, { runs = 3, warmUp = 1, beat = Infinity }) {
  const [width, height] = [640, 480];
  const pixels = new Uint8Array(width * height * 4);
  for (let i = 0; i < pixels.length; i += 1) pixels[i] = (i * 37) & 255;
  const input = { kind: 'rgba', width, height, pixels: pixels.buffer };
  const times = [];
  for (let i = 0; i < warmUp + runs; i += 1) {
    const start = performance.now();
    await classifyInput(engine, input, { topK: 1 });
    if (i < warmUp) continue;
    times.push(performance.now() - start);
    if (Math.min(...times) > 2 * beat) break;
  }
  times.sort((a, b) => a - b);
  const middle = Math.floor(times.length / 2);
  return times.length % 2 ? times[middle] : (times[middle - 1] + times[middle]) / 2;
}

/** A caption the engine started: counted alive until it is done or cancelled. */
function started(caption) {
  live.captions.add(caption);
  return caption;
}

/**
 * One engine and the messages it answers; the module worker (worker.js) and the inline mode
 * both go through here. Message types are `area.verb`:
 *   engine.load { backend, weights, build, threads, compiled? }
 *                                           → { backend, threads, fallbackReason, module, compiled }
 *   engine.classify { input, options }      → { top, labels?, taught?, ms }
 *   engine.time { runs, warmUp, beat }      → median ms of a 640×480 frame's classification
 *   labels.load { weights, tokenizer, table }
 *   caption.begin { bytes } · caption.chunk { chunk } · caption.finish { sha256 }
 *                                           the caption model, streamed in
 *   caption.start { top } → id · caption.step { caption } → { piece, token, logit, done, caption? }
 *   caption.cancel { caption }
 *   engine.stats                          → { wasmMemoryBytes, live: { pictures, captions, sets } }
 *   engine.profile { runs }               → the engine's per-layer profile (Engine.profileLayers)
 *   caption.profile { tokens }            → a decoded token's parts (Engine.profileDecode)
 *   teach.new → set · teach.drop · teach.add { name, input } · teach.remove { name } ·
 *   teach.train · teach.export → JSON · teach.import { json }   (each with `set`; → the set's summary)
 * (`engine.dispose` is the worker's own: it frees the engine and closes the worker.)
 */
export class EngineHost {
  engine = null;
  backend = null;
  /** Why the engine cannot go on (a trap, a lost GPU device), once it cannot. */
  broken = null;
  /** True when what broke it was its GPU device: the next engine runs on the CPU. */
  gpuLost = false;
  #lostSeen = null; // resolves when a device of this engine is lost
  /**
   * Caption id → its next step, computed while the last one travels to the page and the page
   * asks again (in a worker, a round trip of about 0.4 ms a token: 4% of a decoded token's
   * time on the CPU). A step depends only on the caption's own state, so it is the step the
   * next `caption.step` would compute.
   */
  #nextSteps = new Map();
  /** Work to start once the current answer has been posted (see `answered`); null: none ever. */
  #afterAnswer = null;

  /**
   * `onGpuLost(reason)`: the engine's GPU device was lost; it must be started again.
   * `stepAhead`: compute each caption's next step before it is asked for, starting when
   * `answered()` is called (a worker's host: after posting each answer).
   */
  constructor({ onGpuLost, stepAhead = false } = {}) {
    if (stepAhead) this.#afterAnswer = [];
    let seen;
    this.#lostSeen = new Promise((resolve) => (seen = resolve));
    gpuLostListener = (reason) => {
      seen(reason);
      if (this.broken) return;
      this.broken = reason;
      this.gpuLost = true;
      onGpuLost?.(reason);
    };
  }

  async handle(message) {
    if (this.broken) throw new BackendError(`the engine stopped: ${this.broken}`);
    try {
      return await this.#handle(message);
    } catch (error) {
      const typed = asTyped(error);
      if (this.backend === 'webgpu' && (typed.trap || DEVICE_LOST.test(typed.message))) {
        // A failure on the GPU: the device's loss, if that is what it was, is reported a moment later.
        const lost = await Promise.race([this.#lostSeen, new Promise((resolve) => setTimeout(resolve, LOST_GRACE_MS))]);
        if (lost || DEVICE_LOST.test(typed.message)) {
          this.broken ??= lost ?? typed.message;
          this.gpuLost = true;
        }
      }
      if (typed.trap) this.broken ??= typed.message;
      throw typed;
    }
  }

  async #handle(message) {
    if (message.type === 'engine.load') {
      const oldDevices = [...watchedDevices];
      const loaded = await createEngine(message);
      this.#free(oldDevices);
      this.engine = loaded.engine;
      this.backend = loaded.backend; // kept here: a trapped engine cannot be asked
      return {
        backend: loaded.backend,
        threads: loaded.threads,
        fallbackReason: loaded.fallbackReason,
        module: moduleIdentity(),
        compiled: shareableModule(),
      };
    }
    const engine = this.engine;
    if (!engine) throw new BackendError('the engine is not loaded (or was disposed)');
    switch (message.type) {
      case 'engine.classify':
        return classifyInput(engine, message.input, message.options);
      case 'engine.time':
        return timeInference(engine, message);
      case 'engine.profile':
        return typed(() => engine.profileLayers(message.runs));
      case 'caption.profile':
        return typed(() => engine.profileDecode(message.tokens));
      case 'engine.stats':
        return {
          wasmMemoryBytes: wasmMemory?.buffer.byteLength ?? 0,
          live: { pictures: live.pictures, captions: live.captions.size, sets: live.sets.size },
        };
      case 'labels.load':
        return typed(() =>
          engine.loadLabelModel(
            new Uint8Array(message.weights),
            new Uint8Array(message.tokenizer),
            new Uint8Array(message.table),
          ),
        );
      case 'caption.begin':
        return typed(() => engine.beginCaptionModel(message.bytes));
      case 'caption.chunk':
        return typed(() => engine.appendCaptionModel(message.chunk));
      case 'caption.finish':
        return typed(() => engine.finishCaptionModel(message.sha256));
      case 'caption.start':
        return started(await typed(() => engine.captionStart(message.classification)));
      case 'caption.startFor':
        return started(await withPicture(message.input, (picture) => engine.captionStartFor(picture)));
      case 'caption.step': {
        const id = message.caption;
        const ahead = this.#nextSteps.get(id);
        this.#nextSteps.delete(id);
        const step = await (ahead ?? typed(() => engine.captionStep(id)));
        if (step.done) live.captions.delete(id);
        else this.#stepAhead(engine, id);
        return step;
      }
      case 'caption.cancel': {
        // A step under way holds the caption's state until it ends: cancel after it.
        await this.#nextSteps.get(message.caption)?.catch(() => {});
        this.#nextSteps.delete(message.caption);
        live.captions.delete(message.caption);
        return engine.captionCancel(message.caption);
      }
      case 'teach.new': {
        const set = engine.newSet();
        live.sets.add(set);
        return set;
      }
      case 'teach.drop':
        live.sets.delete(message.set);
        return engine.dropSet(message.set);
      case 'teach.add':
        return withPicture(message.input, (picture) => engine.addExample(message.set, message.name, picture));
      case 'teach.remove':
        return typed(() => engine.removeClass(message.set, message.name));
      case 'teach.train':
        return typed(() => engine.train(message.set));
      case 'teach.export':
        return typed(() => engine.exportSet(message.set));
      case 'teach.import':
        return typed(() => engine.importSet(message.set, message.json));
      default:
        throw new BackendError(`unknown message type '${message.type}'`);
    }
  }

  /** Starts what waited for the answer just posted. */
  answered() {
    const work = this.#afterAnswer ?? [];
    if (this.#afterAnswer) this.#afterAnswer = [];
    for (const start of work) start();
  }

  /** Caption `id`'s next step, started by `answered()`; its failure is the next request's. */
  #stepAhead(engine, id) {
    if (!this.#afterAnswer) return;
    let start;
    const next = new Promise((resolve) => (start = resolve)).then(() => {
      if (this.engine !== engine || this.broken) throw new BackendError('the engine stopped before the caption\'s next step');
      return typed(() => engine.captionStep(id));
    });
    next.catch(() => {}); // reported when the step is asked for, not as an unhandled rejection
    this.#nextSteps.set(id, next);
    this.#afterAnswer.push(start);
  }

  /** Frees the engine; its GPU `devices` going with it is no loss. */
  #free(devices = [...watchedDevices]) {
    for (const device of devices) watchedDevices.delete(device);
    this.engine?.free();
    this.engine = null;
    this.#nextSteps.clear();
  }

  dispose() {
    this.#free();
  }
}
