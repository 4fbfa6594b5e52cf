// Glimpse: private, on-device image classification in the browser.
//
//   const glimpse = await Glimpse.load({ onProgress: ({ loaded, total }) => ... });
//   const { top, ms, backend } = await glimpse.classify(imageElementOrBlob);
//   const stop = glimpse.watch(videoElement, ({ top, fps }) => ...);

import { BackendError, ModelLoadError, errorFromWire } from './errors.js';
import { toInput } from './frames.js';
import { loadWeights } from './model-store.js';

export { BackendError, GlimpseError, ModelLoadError, UnsupportedImageError } from './errors.js';
export { clearModelCache } from './model-store.js';

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
    this.#worker.postMessage({ type: 'dispose' });
    this.#unusable = new BackendError('the classifier was disposed');
    this.#failAll(this.#unusable);
  }
}

/** Runs the engine on this thread (for pages that cannot start module workers). */
class InlineConnection {
  #host = import('./engine-host.js');
  #engine = null;

  async call(message) {
    const host = await this.#host;
    if (message.type === 'load') {
      const { engine, backend, fallbackReason } = await host.createEngine(message);
      this.#engine = engine;
      return { backend, fallbackReason };
    }
    if (!this.#engine) throw new BackendError('the classifier was disposed');
    return host.classifyInput(this.#engine, message.input, message.topK);
  }

  dispose() {
    this.#engine?.free();
    this.#engine = null;
  }
}

const BACKENDS = ['auto', 'webgpu', 'cpu'];

export class Glimpse {
  #connection;
  #info;
  // Classifications run one at a time, in the order they were asked for.
  #queue = Promise.resolve();

  constructor(connection, info) {
    this.#connection = connection;
    this.#info = info;
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
    const connection = inline ? new InlineConnection() : new WorkerConnection();
    try {
      const info = await connection.call({ type: 'load', backend, weights }, [weights]);
      return new Glimpse(connection, { ...info, notCached: notCached ?? null });
    } catch (error) {
      connection.dispose();
      if (error instanceof BackendError || error instanceof ModelLoadError) throw error;
      throw new BackendError(`the classifier could not start: ${error.message}`, { cause: error });
    }
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

  /** Resolves to `{ top: [{ index, label, prob }], ms, backend }`, best class first. */
  classify(source, { topK = 5 } = {}) {
    const run = async () => {
      const { input, transfer } = await toInput(source);
      const { top, ms } = await this.#connection.call({ type: 'classify', input, topK }, transfer);
      return { top, ms, backend: this.backend };
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * Classifies a playing video continuously: each time the engine is free it takes the
   * newest frame (frames that arrive meanwhile are skipped, never queued). Pauses while the
   * tab is hidden. `onResult({ top, ms, fps, backend })`; `onError(error)`.
   * Returns `stop()`.
   */
  watch(video, onResult, { topK = 5, onError } = {}) {
    const frameCallbacks = 'requestVideoFrameCallback' in video;
    let stopped = false;
    let waiting = null; // the pending frame callback handle
    let busy = false;
    const finished = []; // completion times of recent classifications, for fps

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
    const onFrame = async () => {
      waiting = null;
      if (stopped || document.hidden) return;
      if (video.readyState < 2 || video.videoWidth === 0) return schedule();
      busy = true;
      try {
        const result = await this.classify(video, { topK });
        const now = performance.now();
        finished.push(now);
        while (finished.length > 1 && now - finished[0] > 3000) finished.shift();
        const span = (finished.at(-1) - finished[0]) / 1000;
        const fps = finished.length > 1 ? (finished.length - 1) / span : 1000 / Math.max(result.ms, 1);
        if (!stopped) onResult({ ...result, fps });
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
