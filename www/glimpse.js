// Glimpse: private, on-device image classification in the browser.
//
//   const glimpse = await Glimpse.load({ onProgress: ({ loaded, total }) => ... });
//   const { top, ms, backend } = await glimpse.classify(imageElementOrBlob);
//   const { labels } = await glimpse.classify(image, { labels: ['dog', 'bird', 'vehicle'] });
//   const stop = glimpse.watch(videoElement, ({ top, fps }) => ...);
//   const teacher = glimpse.teach(); await teacher.add('mug', photo); await teacher.train();
//   const { text } = await glimpse.caption(photoOrResult, { onToken: (piece) => ..., signal });

import { BackendError, InvalidArgumentError, ModelLoadError, errorFromWire } from './errors.js';
import { toInput } from './frames.js';
import { startFastest } from './backend-choice.js';
import { loadModelFile, loadWeights, streamModelFile } from './model-store.js';
import { Teacher } from './teacher.js';

export {
  BackendError,
  GlimpseError,
  InvalidArgumentError,
  ModelLoadError,
  UnsupportedImageError,
} from './errors.js';
export { clearModelCache } from './model-store.js';
export { forgetBackendChoice } from './backend-choice.js';
export { registerOfflineWorker } from './offline.js';
export { deleteClassSet, loadClassSet, saveClassSet } from './class-store.js';
export { Teacher } from './teacher.js';

/**
 * Talks to the engine in a module worker. A worker that fails (an uncaught error, a wasm
 * trap, its GPU device lost) is ended: what was asked of it rejects with a BackendError, and
 * `onDeath(reason, { gpuLost })` tells the Glimpse, which starts a new one for the next request.
 */
class WorkerConnection {
  #worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'glimpse' });
  #pending = new Map();
  #nextId = 1;
  #unusable = null; // the reason, once the worker failed or was disposed
  onDeath = null;

  constructor() {
    this.#worker.onmessage = ({ data }) => {
      if (data.event === 'gpu-lost') return this.#die(data.reason, { gpuLost: true });
      const pending = this.#pending.get(data.id);
      if (!pending) return;
      if (data.fatal) return this.#die(data.fatal.reason, data.fatal);
      this.#pending.delete(data.id);
      if (data.ok) pending.resolve(data.result);
      else pending.reject(errorFromWire(data.error));
    };
    // Also a worker that fails to start (a missing pkg/ build, a syntax error) must not leave
    // promises hanging.
    this.#worker.onerror = (event) => {
      event.preventDefault?.();
      this.#die(event.message || 'the classifier worker could not start');
    };
  }

  #die(reason, { gpuLost = false } = {}) {
    if (this.#unusable) return;
    this.#unusable = new BackendError(`the engine stopped: ${reason}`);
    this.#worker.terminate();
    for (const { reject } of this.#pending.values()) reject(this.#unusable);
    this.#pending.clear();
    this.onDeath?.(reason, { gpuLost });
  }

  call(message, transfer = []) {
    if (this.#unusable) return Promise.reject(this.#unusable);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...message, id }, transfer);
    });
  }

  dispose() {
    if (this.#unusable) return;
    this.#worker.postMessage({ type: 'engine.dispose' });
    this.#unusable = new BackendError('the classifier was disposed');
    for (const { reject } of this.#pending.values()) reject(this.#unusable);
    this.#pending.clear();
  }
}

/** Runs the engine on this thread (for pages that cannot start module workers). */
class InlineConnection {
  onDeath = null;
  #host = import('./engine-host.js').then(
    ({ EngineHost }) => new EngineHost({ onGpuLost: (reason) => this.onDeath?.(reason, { gpuLost: true }) }),
  );

  async call(message) {
    const host = await this.#host;
    try {
      return await host.handle(message);
    } catch (error) {
      if (host.broken) this.onDeath?.(host.broken, { gpuLost: host.gpuLost });
      throw error;
    }
  }

  dispose() {
    this.#host.then((host) => host.dispose());
  }
}

/**
 * Checks that `labels` is a comma-separated string or an array of strings. The engine tidies
 * them (split at commas, trimmed, blanks and repeats dropped) and rejects an empty list.
 */
function checkLabels(labels) {
  if (typeof labels === 'string') return labels;
  if (!Array.isArray(labels)) {
    throw new InvalidArgumentError('labels must be an array of strings or a comma-separated string');
  }
  if (!labels.every((label) => typeof label === 'string')) throw new InvalidArgumentError('every label must be a string');
  return labels;
}

const BACKENDS = ['auto', 'webgpu', 'cpu'];

/** More restarts than this within RESTART_WINDOW_MS mean the engine cannot run here. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

/** Messages that change a taught set: a snapshot of the set is taken after each. */
const TEACH_CHANGES = new Set(['teach.add', 'teach.remove', 'teach.train', 'teach.import']);

const LABEL_FILES = [
  { name: 'all-minilm-l6-v2', dtype: 'f16', what: 'label model' },
  { name: 'all-minilm-l6-v2-tokenizer', what: 'label model tokenizer' },
  { name: 'imagenet-class-embeddings', dtype: 'f16', what: 'class embedding table' },
];
const CAPTION_MODEL = 'smollm2-135m-instruct';

/** What only the engine's full build answers (labels and captions; see engine-host.js). */
const NEEDS_FULL_BUILD = new Set([
  'labels.load',
  'caption.begin',
  'caption.chunk',
  'caption.finish',
  'caption.start',
  'caption.startFor',
  'caption.step',
  'caption.cancel',
]);

/**
 * Each wasm build as the page's first engine of it compiled it (`{ module, identity }`),
 * handed to every later engine of that build, or null before one has loaded.
 */
const compiledWasm = { vision: null, full: null, threads: null };

/**
 * Starts an engine of `build` ('vision' | 'full' | 'threads') on `connection`; resolves to
 * what it says of itself.
 */
async function loadEngine(connection, { backend, weights, build, threads }) {
  const message = { type: 'engine.load', backend, weights, build, threads, compiled: compiledWasm[build] };
  const { compiled, ...info } = await connection.call(message, [weights]);
  compiledWasm[build] ??= compiled ?? null;
  return info;
}

/** Whether the engine runs on the calling thread: asked for, or Node.js (no web Worker). */
function onCallingThread(inline) {
  return inline || typeof Worker === 'undefined';
}

/**
 * The CPU threads an engine gets: `threads` as asked (default: the machine's cores, at most
 * 4) where the page is cross-origin isolated (threads share the engine's memory, which
 * browsers allow only then) and the engine runs in a worker (the page's thread must never
 * wait on others), else 1.
 */
function cpuThreads(threads, inline) {
  if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1)) {
    throw new InvalidArgumentError(`threads must be a whole number of at least 1, not ${threads}`);
  }
  if (!globalThis.crossOriginIsolated || onCallingThread(inline)) return 1;
  return threads ?? Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 1));
}

/**
 * Which wasm build an engine runs: the full one on the calling thread (and in Node.js); the
 * threaded one for a CPU engine with more than one thread (also for 'auto', which reaches an
 * engine only when there is no WebGPU adapter to compare); else the vision build until labels
 * or captions (`text`) are asked for, then the full one.
 */
function buildFor({ backend, inline, threads, text }) {
  if (onCallingThread(inline)) return 'full';
  if (backend !== 'webgpu' && threads > 1) return 'threads';
  return text ? 'full' : 'vision';
}

function startConnection(inline) {
  return onCallingThread(inline) ? new InlineConnection() : new WorkerConnection();
}

export class Glimpse {
  #connection;
  #info;
  // Classifications run one at a time, in the order they were asked for.
  #queue = Promise.resolve();

  #models;
  #options; // { backend, inline, threads, text, dtype, onRestart }: how to start the engine again
  #labelModel = null; // the promise of the label model's loading, once asked for
  #captionModel = null; // likewise for the caption model
  #loaded = { labels: false, caption: false }; // what a new engine must be given again

  // Taught sets live in the engine, which may be restarted: a Teacher holds a key of ours, and
  // each set's last snapshot (its export) is imported into the new engine.
  #sets = new Map(); // key → { id: the engine's id, snapshot: JSON | null }
  #nextSet = 1;

  #death = null; // { reason, gpuLost } once the engine stopped, until it is started again
  #restarts = []; // when the engine was started again, for MAX_RESTARTS
  #disposed = false;

  constructor(connection, info, models, options) {
    this.#info = info;
    this.#models = models;
    this.#options = options;
    this.#attach(connection);
  }

  #attach(connection) {
    this.#connection = connection;
    connection.onDeath = (reason, { gpuLost }) => {
      if (connection === this.#connection) this.#death = { reason, gpuLost };
    };
  }

  /**
   * Downloads (or reads from the cache) the model and starts the engine.
   * `backend`: 'auto', 'webgpu' or 'cpu'. 'auto' with a WebGPU adapter times a few
   * classifications on each backend and keeps the faster (remembered in this browser for
   * its GPU and this build of the module; see `info.timings`); without one, the CPU.
   * `onProgress({ loaded, total, fromCache })` reports the model download.
   * `onRestart({ reason, backend, fallbackReason })`: the engine stopped (a crash, a lost GPU
   * device) and a new one took its place, with the taught sets and loaded models.
   */
  static async load({ models = 'models/', backend = 'auto', onProgress, inline = false, threads, dtype, onRestart, __penaltyForTests } = {}) {
    if (!BACKENDS.includes(backend)) {
      throw new BackendError(`unknown backend '${backend}' (use ${BACKENDS.map((b) => `'${b}'`).join(', ')})`);
    }
    const threadCount = cpuThreads(threads, inline);
    const { weights, notCached } = await loadWeights({ modelsUrl: models, dtype, onProgress });
    const start = async (on) => {
      const connection = startConnection(inline);
      try {
        // Each engine gets its own copy: the buffer moves to the worker.
        const copy = weights.slice(0);
        const build = buildFor({ backend: on, inline, threads: threadCount, text: false });
        return { connection, info: await loadEngine(connection, { backend: on, weights: copy, build, threads: threadCount }) };
      } catch (error) {
        connection.dispose();
        if (error instanceof BackendError || error instanceof ModelLoadError) throw error;
        throw new BackendError(`the classifier could not start: ${error.message}`, { cause: error });
      }
    };
    // `__penaltyForTests` (`{ cpu?, webgpu? }`, ms added to a backend's measured time): the
    // tests make either backend the slower, to see the choice follow the measurement.
    const measured = backend === 'auto' ? await startFastest(start, __penaltyForTests) : null;
    const { connection, info } = measured ?? (await start(backend));
    const timings = measured?.timings ?? null;
    // A measured choice stands for restarts too (a lost GPU device still sends them to the CPU).
    const restartOn = timings ? info.backend : backend;
    return new Glimpse(connection, { ...info, notCached: notCached ?? null, timings }, models, {
      backend: restartOn,
      inline,
      threads: threadCount,
      text: false,
      dtype,
      onRestart,
    });
  }

  /**
   * `{ backend, fallbackReason, notCached, timings }`: see the getters; `timings` is what
   * `backend: 'auto'` measured to choose, `{ webgpu, cpu, remembered, measuredAt }` (median ms
   * of a 640×480 frame's classification on each; `remembered`: measured on an earlier load
   * in this browser), or null when nothing was compared (a backend asked for by name, no
   * WebGPU adapter).
   */
  get info() {
    const { backend, threads, fallbackReason, notCached, timings } = this.#info;
    return { backend, threads, fallbackReason, notCached, timings: timings ? { ...timings } : null };
  }

  /**
   * What the engine holds, for diagnostics and leak checks: `{ wasmMemoryBytes, live: {
   * pictures, captions, sets } }` (the wasm instance's memory, and the engine objects alive).
   */
  engineStats() {
    return this.#send({ type: 'engine.stats' });
  }

  /**
   * Where the engine's time goes per frame, for diagnostics and benchmarks: `runs` passes of
   * one 640×480 frame replayed layer by layer, `{ kinds: { [kind]: { median, min } }, total,
   * forward, frame, runs, backend, threads }` in ms (`forward`: the same pass without clocks;
   * `frame`: the frame's center crop read from its RGBA bytes, and normalized). On WebGPU
   * each layer is waited for by reading its output back, less a second read of it
   * (`readbacks`: those reads per pass; `layers`: how many a pass has).
   */
  engineProfile({ runs = 10 } = {}) {
    return this.#send({ type: 'engine.profile', runs });
  }

  /**
   * Where a decoded caption token's time goes on the CPU engine: `tokens` greedy tokens after a
   * synthetic 150-token prompt, `{ products: { [role]: { median, min } }, rest, step,
   * unclocked_step, prompt, tokens }` in ms per token (`products` by matrix role, e.g. "gate, up
   * (1536×576)", summed over the layers; `rest`: norms and the rest; `unclocked_step`: the mean
   * step of as many tokens with no clock inside it). Loads the caption model first.
   */
  async captionProfile({ tokens = 32 } = {}) {
    await this.loadCaptionModel();
    return this.#send({ type: 'caption.profile', tokens });
  }

  /** 'webgpu' or 'cpu'. */
  get backend() {
    return this.#info.backend;
  }

  /** Why 'auto' fell back to the CPU (or a lost GPU device sent the engine there), or null. */
  get fallbackReason() {
    return this.#info.fallbackReason;
  }

  /** Why the downloaded model could not be kept in the browser's cache (a full quota), or null. */
  get notCached() {
    return this.#info.notCached;
  }

  /** Runs `work` after everything asked of the engine before it. */
  #enqueue(work) {
    const result = this.#queue.then(work, work);
    this.#queue = result.catch(() => {});
    return result;
  }

  /** Sends a message to the engine (see EngineHost), in turn after everything asked before it. */
  #send(message, transfer) {
    return this.#enqueue(() => this.#call(message, transfer));
  }

  /**
   * Sends a message now (the caller holds the queue), starting the engine again first if it
   * stopped; taught sets' keys become the engine's ids.
   */
  async #call(message, transfer) {
    if (this.#disposed) throw new BackendError('the classifier was disposed');
    if (this.#death) await this.#restart();
    if (NEEDS_FULL_BUILD.has(message.type) && !this.#options.text) await this.#moveToFullBuild();
    const connection = this.#connection;
    if (message.type === 'teach.new') {
      const key = this.#nextSet++;
      this.#sets.set(key, { id: await connection.call(message), snapshot: null });
      return key;
    }
    const set = this.#sets.get(message.set ?? message.options?.set);
    if (message.type === 'teach.drop') this.#sets.delete(message.set);
    if (message.type === 'teach.export' && set?.snapshot) return set.snapshot;
    let engineMessage = message;
    if (message.options?.set !== undefined) engineMessage = { ...message, options: { ...message.options, set: set?.id } };
    else if (message.set !== undefined) engineMessage = { ...message, set: set?.id };
    const result = await connection.call(engineMessage, transfer);
    // Taken before the change is reported done, so a crash after it loses nothing reported.
    if (set && TEACH_CHANGES.has(message.type)) set.snapshot = await connection.call({ type: 'teach.export', set: set.id });
    return result;
  }

  /**
   * Starts a new engine in place of one that stopped: the weights come from the cache, the
   * taught sets from their snapshots, and the label and caption models are loaded again when
   * they were. A lost GPU device sends it to the CPU for good.
   */
  async #restart() {
    const { reason, gpuLost } = this.#death;
    const now = performance.now();
    this.#restarts = this.#restarts.filter((time) => now - time < RESTART_WINDOW_MS);
    if (this.#restarts.length >= MAX_RESTARTS) {
      throw new BackendError(`the engine stopped ${MAX_RESTARTS + 1} times within a minute (last: ${reason}); reload the page`);
    }
    this.#restarts.push(now);
    if (gpuLost) this.#options.backend = 'cpu';
    try {
      const info = await this.#startEngine();
      const fallbackReason = gpuLost ? reason : (this.#info.fallbackReason ?? info.fallbackReason);
      this.#info = { ...this.#info, backend: info.backend, threads: info.threads, fallbackReason };
    } catch (error) {
      throw new BackendError(`the engine stopped (${reason}) and could not be started again: ${error.message}`, { cause: error });
    }
    this.#death = null;
    this.#options.onRestart?.({ reason, backend: this.backend, fallbackReason: this.fallbackReason });
  }

  /**
   * The first time labels or captions are asked for: from now on the engine is one with them.
   * One of the vision build is replaced with one of the full build, like a restart (same
   * backend, taught sets carried over) but nothing stopped; the other builds have them already.
   */
  async #moveToFullBuild() {
    const before = buildFor(this.#options);
    this.#options.text = true;
    if (before !== 'vision') return;
    const previous = this.#connection;
    try {
      const { backend, threads } = await this.#startEngine();
      this.#info = { ...this.#info, backend, threads };
    } catch (error) {
      this.#options.text = false;
      throw new BackendError(`the label and caption engine could not start: ${error.message}`, { cause: error });
    }
    previous.dispose();
  }

  /**
   * Starts a new engine as `#options` say and makes it the current one: the weights come from
   * the cache, the taught sets from their snapshots, and the label and caption models are
   * loaded again when they were. Resolves to what the engine says of itself.
   */
  async #startEngine() {
    const { backend, inline, threads, dtype } = this.#options;
    const build = buildFor(this.#options);
    const connection = startConnection(inline);
    let info;
    try {
      const { weights } = await loadWeights({ modelsUrl: this.#models, dtype });
      info = await loadEngine(connection, { backend, weights, build, threads });
      for (const set of this.#sets.values()) {
        set.id = await connection.call({ type: 'teach.new' });
        if (set.snapshot) await connection.call({ type: 'teach.import', set: set.id, json: set.snapshot });
      }
      const call = (message, transfer) => connection.call(message, transfer);
      if (this.#loaded.labels) await this.#loadLabelFiles(call);
      if (this.#loaded.caption) await this.#streamCaptionModel(call);
    } catch (error) {
      connection.dispose();
      throw error;
    }
    this.#attach(connection);
    return info;
  }

  /**
   * Downloads (or reads from the cache) the text model that ranks your own labels: about
   * 46 MB, once. `classify(source, { labels })` calls this itself; call it first to show the
   * download's progress.
   */
  loadLabelModel({ onProgress } = {}) {
    this.#labelModel ??= this.#loadLabelFiles((message, transfer) => this.#send(message, transfer), onProgress).then(() => {
      this.#loaded.labels = true;
    });
    // A failed download may be retried by the next call.
    this.#labelModel.catch(() => (this.#labelModel = null));
    return this.#labelModel;
  }

  /** Reads the label model's files (from the cache, else the network) and hands them to `call`. */
  async #loadLabelFiles(call, onProgress) {
    const progress = LABEL_FILES.map(() => ({ loaded: 0, total: 0 }));
    const [weights, tokenizer, table] = await Promise.all(
      LABEL_FILES.map(({ name, dtype, what }, i) =>
        loadModelFile({
          modelsUrl: this.#models,
          name,
          dtype,
          what,
          onProgress: ({ loaded, total, fromCache }) => {
            progress[i] = { loaded, total };
            const sum = (key) => progress.reduce((n, p) => n + p[key], 0);
            onProgress?.({ loaded: sum('loaded'), total: sum('total'), fromCache });
          },
        }).then((file) => file.weights),
      ),
    );
    await call({ type: 'labels.load', weights, tokenizer, table }, [weights, tokenizer, table]);
  }

  /**
   * Resolves to `{ top: [{ index, label, prob }], ms, backend }`, best class first. With
   * `labels` (an array, or a comma-separated string), also `labels: [{ label, score }]`: your
   * own labels ranked by how well they fit the picture. The engine tidies the labels: split
   * at commas, trimmed, blanks dropped, repeats (in any letter case) dropped keeping the first
   * spelling; none left rejects with an InvalidArgumentError. (`set`, a taught set's id in the
   * engine, is how `Teacher.classify` comes through here.) With `where: true` (or `'whole'`),
   * each top class also gets `where`: its map over the whole picture, from square views
   * covering it (one more pass per view); `where: 'crop'` maps the center crop classification
   * saw, from its own pass (nearly free, for live video).
   */
  async classify(source, { topK = 5, labels, set, where } = {}) {
    const options = { topK };
    if (where) options.where = where;
    if (set !== undefined) options.set = set;
    if (labels !== undefined) {
      options.labels = checkLabels(labels);
      await this.loadLabelModel();
    }
    return this.#enqueue(async () => {
      const { input, transfer } = await toInput(source);
      const result = await this.#call({ type: 'engine.classify', input, options }, transfer);
      return { ...result, backend: this.backend };
    });
  }

  /**
   * Downloads (or reads from the cache) the caption model, SmolLM2-135M-Instruct in 4-bit
   * GGUF (98 MB, once), and loads it onto the classifier's device. `caption` calls this itself;
   * call it first to show the download's progress.
   */
  loadCaptionModel({ onProgress } = {}) {
    this.#captionModel ??= this.#streamCaptionModel((message, transfer) => this.#send(message, transfer), onProgress).then(() => {
      this.#loaded.caption = true;
    });
    this.#captionModel.catch(() => (this.#captionModel = null));
    return this.#captionModel;
  }

  /** Streams the caption model's GGUF to the engine through `call`, chunk by chunk. */
  async #streamCaptionModel(call, onProgress) {
    // The page never holds a copy of the whole file.
    await streamModelFile({
      modelsUrl: this.#models,
      name: CAPTION_MODEL,
      what: 'caption model',
      onProgress,
      sink: {
        begin: (bytes) => call({ type: 'caption.begin', bytes }),
        chunk: (chunk) => {
          const copy = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
          return call({ type: 'caption.chunk', chunk: copy }, [copy.buffer]);
        },
        finish: (sha256) => call({ type: 'caption.finish', sha256 }),
      },
    });
  }

  /**
   * Writes a one-sentence caption for a picture (any `classify` source) or for a result
   * `classify` already gave. `onToken(text)` receives the sentence piece by piece as it is
   * written; `signal` (an AbortSignal) cancels it, rejecting with the signal's reason.
   * Resolves to `{ text, fallback, source, objects, certainty, backtracks, tokens,
   * promptTokens, promptReused, ms, firstTokenMs }`: `objects` are what the caption was
   * allowed to name (its evidence, with boxes for a picture); `source` says whether the
   * language model wrote it ('model'), a rule hedged it ('rule') or a template replaced it
   * ('fallback'); `promptReused` counts the prompt's first tokens that an earlier caption of
   * the same kind had read (its first token comes sooner; its text is the same).
   * Classifications asked for meanwhile run between the caption's tokens.
   */
  async caption(source, { onToken, signal } = {}) {
    signal?.throwIfAborted();
    await this.loadCaptionModel();
    signal?.throwIfAborted();
    const started = performance.now();
    // A classification is described as it is; a picture is looked at whole first, so that a
    // second object can be found and confirmed in its own region.
    const caption = Array.isArray(source?.top)
      ? await this.#send({ type: 'caption.start', classification: { top: source.top, groups: source.groups ?? [] } })
      : await this.#enqueue(async () => {
          const { input, transfer } = await toInput(source);
          return this.#call({ type: 'caption.startFor', input }, transfer);
        });
    let done = false;
    let firstTokenMs = null;
    try {
      for (;;) {
        signal?.throwIfAborted();
        // { piece, token, logit, done, caption? }: the text added, the chosen token and its logit.
        const step = await this.#send({ type: 'caption.step', caption });
        firstTokenMs ??= performance.now() - started;
        if (step.piece) onToken?.(step.piece);
        if (step.done) {
          done = true;
          return { ...step.caption, ms: performance.now() - started, firstTokenMs };
        }
      }
    } finally {
      if (!done) this.#send({ type: 'caption.cancel', caption }).catch(() => {});
    }
  }

  /**
   * A new set of classes to teach from examples: `add(name, source)`, `train()`, then
   * `classify(source)` ranks the taught classes. See `Teacher`.
   */
  teach() {
    return new Teacher(this, (message, transfer) => this.#send(message, transfer));
  }

  /**
   * Classifies a playing video continuously: each time the engine is free it takes the
   * newest frame (frames that arrive meanwhile are skipped, never queued). Pauses while the
   * tab is hidden. `onResult({ top, ms, fps, backend })`; `onError(error)`. `classify(video)`
   * replaces what runs on each frame, e.g. `(v) => teacher.classify(v)` or
   * `(v) => glimpse.classify(v, { labels })`. Returns `stop()`.
   */
  watch(video, onResult, { topK = 5, onError, classify = (frame) => this.classify(frame, { topK }) } = {}) {
    const frameCallbacks = 'requestVideoFrameCallback' in video;
    let stopped = false;
    let waiting = null; // the pending frame callback handle
    let busy = false;
    const finished = []; // completion times of recent classifications, for fps
    let frame = 0; // frames classified so far: each result's `frame`, so none is lost or repeated unseen

    const schedule = () => {
      if (stopped || busy || waiting !== null || document.hidden) return;
      waiting = frameCallbacks ? video.requestVideoFrameCallback(onFrame) : requestAnimationFrame(onFrame);
    };
    const cancel = () => {
      if (waiting === null) return;
      if (frameCallbacks) video.cancelVideoFrameCallback(waiting);
      else cancelAnimationFrame(waiting);
      waiting = null;
    };
    const onFrame = async (_now, metadata) => {
      waiting = null;
      if (stopped || document.hidden) return;
      if (video.readyState < 2 || video.videoWidth === 0) return schedule();
      busy = true;
      try {
        const result = await classify(video);
        const now = performance.now();
        finished.push(now);
        while (finished.length > 1 && now - finished[0] > 3000) finished.shift();
        const span = (finished.at(-1) - finished[0]) / 1000;
        const fps = finished.length > 1 ? (finished.length - 1) / span : 1000 / Math.max(result.ms, 1);
        frame += 1;
        if (!stopped) onResult({ ...result, fps, frame, mediaTime: metadata?.mediaTime ?? null });
      } catch (error) {
        if (!stopped) onError?.(error);
      } finally {
        busy = false;
        schedule();
      }
    };
    const onVisibility = () => (document.hidden ? cancel() : schedule());

    document.addEventListener('visibilitychange', onVisibility);
    schedule();
    return () => {
      stopped = true;
      cancel();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }

  /** Stops the engine and frees its memory. */
  dispose() {
    this.#disposed = true;
    this.#connection.dispose();
  }
}
