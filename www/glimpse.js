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
export { registerOfflineWorker } from './offline.js';
export { deleteClassSet, loadClassSet, saveClassSet } from './class-store.js';
export { Teacher } from './teacher.js';

/** Talks to the engine in a module worker. */
class WorkerConnection {
  #worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'glimpse' });
  #pending = new Map();
  #nextId = 1;
  #unusable = null; // the reason, once the worker failed (a trapped wasm instance cannot recover) or was disposed

  constructor() {
    this.#worker.onmessage = ({ data }) => {
      const pending = this.#pending.get(data.id);
      if (!pending) return;
      this.#pending.delete(data.id);
      if (data.ok) pending.resolve(data.result);
      else pending.reject(errorFromWire(data.error));
    };
    // A worker that fails to start (a missing pkg/ build, a syntax error) must not leave
    // promises hanging.
    this.#worker.onerror = (event) => {
      event.preventDefault?.();
      this.#unusable = new BackendError(`the classifier worker failed: ${event.message || 'could not start it'}`);
      this.#failAll(this.#unusable);
    };
  }

  #failAll(error) {
    for (const { reject } of this.#pending.values()) reject(error);
    this.#pending.clear();
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
    this.#failAll(this.#unusable);
  }
}

/** Runs the engine on this thread (for pages that cannot start module workers). */
class InlineConnection {
  #host = import('./engine-host.js').then(({ EngineHost }) => new EngineHost());

  async call(message) {
    return (await this.#host).handle(message);
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

export class Glimpse {
  #connection;
  #info;
  // Classifications run one at a time, in the order they were asked for.
  #queue = Promise.resolve();

  #models;
  #labelModel = null; // the promise of the label model's loading, once asked for
  #captionModel = null; // likewise for the caption model

  constructor(connection, info, models) {
    this.#connection = connection;
    this.#info = info;
    this.#models = models;
  }

  /**
   * Downloads (or reads from the cache) the model and starts the engine.
   * `backend`: 'auto' (WebGPU, else the CPU), 'webgpu' or 'cpu'.
   * `onProgress({ loaded, total, fromCache })` reports the model download.
   */
  static async load({ models = 'models/', backend = 'auto', onProgress, inline = false, dtype = 'f16' } = {}) {
    if (!BACKENDS.includes(backend)) {
      throw new BackendError(`unknown backend '${backend}' (use ${BACKENDS.map((b) => `'${b}'`).join(', ')})`);
    }
    const { weights, notCached } = await loadWeights({ modelsUrl: models, dtype, onProgress });
    // Node.js has no web Worker: the engine runs on the calling thread there.
    const connection = inline || typeof Worker === 'undefined' ? new InlineConnection() : new WorkerConnection();
    try {
      const info = await connection.call({ type: 'engine.load', backend, weights }, [weights]);
      return new Glimpse(connection, { ...info, notCached: notCached ?? null }, models);
    } catch (error) {
      connection.dispose();
      if (error instanceof BackendError || error instanceof ModelLoadError) throw error;
      throw new BackendError(`the classifier could not start: ${error.message}`, { cause: error });
    }
  }

  /**
   * What the engine holds, for diagnostics and leak checks: `{ wasmMemoryBytes, live: {
   * pictures, captions, sets } }` (the wasm instance's memory, and the engine objects alive).
   */
  engineStats() {
    return this.#send({ type: 'engine.stats' });
  }

  /** 'webgpu' or 'cpu'. */
  get backend() {
    return this.#info.backend;
  }

  /** Why 'auto' fell back to the CPU, or null. */
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
    return this.#enqueue(() => this.#connection.call(message, transfer));
  }

  /**
   * Downloads (or reads from the cache) the text model that ranks your own labels: about
   * 46 MB, once. `classify(source, { labels })` calls this itself; call it first to show the
   * download's progress.
   */
  loadLabelModel({ onProgress } = {}) {
    this.#labelModel ??= (async () => {
      const models = this.#models;
      const files = [
        { name: 'all-minilm-l6-v2', dtype: 'f16', what: 'label model' },
        { name: 'all-minilm-l6-v2-tokenizer', what: 'label model tokenizer' },
        { name: 'imagenet-class-embeddings', dtype: 'f16', what: 'class embedding table' },
      ];
      const progress = files.map(() => ({ loaded: 0, total: 0 }));
      const [weights, tokenizer, table] = await Promise.all(
        files.map(({ name, dtype, what }, i) =>
          loadModelFile({
            modelsUrl: models,
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
      await this.#send({ type: 'labels.load', weights, tokenizer, table }, [weights, tokenizer, table]);
    })();
    // A failed download may be retried by the next call.
    this.#labelModel.catch(() => (this.#labelModel = null));
    return this.#labelModel;
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
      const result = await this.#connection.call({ type: 'engine.classify', input, options }, transfer);
      return { ...result, backend: this.backend };
    });
  }

  /**
   * Downloads (or reads from the cache) the caption model, SmolLM2-135M-Instruct in 4-bit
   * GGUF (98 MB, once), and loads it onto the classifier's device. `caption` calls this itself;
   * call it first to show the download's progress.
   */
  loadCaptionModel({ onProgress } = {}) {
    // The GGUF streams into the engine chunk by chunk, so the page never holds a copy of it.
    this.#captionModel ??= streamModelFile({
      modelsUrl: this.#models,
      name: 'smollm2-135m-instruct',
      what: 'caption model',
      onProgress,
      sink: {
        begin: (bytes) => this.#send({ type: 'caption.begin', bytes }),
        chunk: (chunk) => {
          const copy = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : chunk.slice();
          return this.#send({ type: 'caption.chunk', chunk: copy }, [copy.buffer]);
        },
        finish: (sha256) => this.#send({ type: 'caption.finish', sha256 }),
      },
    }).then(() => {});
    this.#captionModel.catch(() => (this.#captionModel = null));
    return this.#captionModel;
  }

  /**
   * Writes a one-sentence caption for a picture (any `classify` source) or for a result
   * `classify` already gave. `onToken(text)` receives the sentence piece by piece as it is
   * written; `signal` (an AbortSignal) cancels it, rejecting with the signal's reason.
   * Resolves to `{ text, fallback, source, objects, certainty, backtracks, tokens,
   * promptTokens, ms, firstTokenMs }`: `objects` are what the caption was allowed to name (its
   * evidence, with boxes for a picture); `source` says whether the language model wrote it
   * ('model'), a rule hedged it ('rule') or a template replaced it ('fallback').
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
          return this.#connection.call({ type: 'caption.startFor', input }, transfer);
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
    this.#connection.dispose();
  }
}
