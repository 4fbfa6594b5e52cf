// Types for @seed/glimpse (www/glimpse.js).

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type Backend = 'webgpu' | 'cpu';

export interface Prediction {
  /** ImageNet class index, 0–999. */
  index: number;
  label: string;
  /** Probability, 0–1. */
  prob: number;
  /** Where its evidence lies, with `classify(…, { where: true })`. */
  where?: Where;
}

/**
 * Where a class's evidence lies in the picture: a class activation map over the whole picture
 * (`where: true`), or over the center crop classification saw (`where: 'crop'`).
 */
export interface Where {
  /** `[x0, y0, x1, y1]` in the input picture's pixels, around the region above half the peak. */
  box: [number, number, number, number];
  /** The share of the picture that region covers, 0–1. */
  cover: number;
  /** Where the peak lies, by thirds: 'center', 'left', 'top right', … */
  cell: string;
  /** The map, row-major, `width × height` cells (logit units). */
  map: Float32Array;
  width: number;
  height: number;
  /** The part of the picture the map covers, `[x0, y0, x1, y1]` in its pixels. */
  area: [number, number, number, number];
}

/** Top classes that are rival names for one thing, under the noun they share. */
export interface Group {
  /** The shared noun ("dog"). */
  noun: string;
  /** Its WordNet id ("n02084071"). */
  synset: string;
  /** The classifier's probability of the noun: the sum over every class under it. */
  prob: number;
  members: Prediction[];
}

export interface LabelScore {
  label: string;
  /**
   * With `kind: 'probability'`, the chance the label is right (the classifier's probabilities
   * summed over the classes WordNet puts under it): show it as a percentage. With
   * `kind: 'similarity'`, a ranking score (cosine similarity in text-embedding space): not a
   * percentage.
   */
  score: number;
  kind: 'probability' | 'similarity';
}

export interface TaughtPrediction {
  label: string;
  /** Probability among the taught classes, 0–1 (a picture of none of them still sums to 1). */
  prob: number;
  /** Cosine similarity of the picture's features to the class's examples' mean direction. */
  similarity: number;
  /** The picture looks like the class's examples (`similarity` ≥ 0.5); when no class does, it is none of them. */
  resembles: boolean;
}

export interface Classification {
  /** Best class first. */
  top: Prediction[];
  /** Rivals among the top-5 that share a close noun, when some do. */
  groups?: Group[];
  /** Your labels, best first, when `classify` was given `labels`. */
  labels?: LabelScore[];
  /** The taught classes, best first (from `Teacher.classify`). */
  taught?: TaughtPrediction[];
  /** Time in the engine (decoding, preprocessing, network), in milliseconds. */
  ms: number;
  backend: Backend;
}

/** What `caption` describes as it is: a `classify` result, or its `top` (and `groups`) alone. */
export type ClassificationLike = Pick<Classification, 'top' | 'groups'>;

export interface WatchResult extends Classification {
  /** Classifications completed per second over the last few seconds. */
  fps: number;
  /** This result's number among the watch's results, from 1: each arrives once, in order. */
  frame: number;
  /** The video frame's media time (seconds), where the browser reports it; else null. */
  mediaTime: number | null;
}

/** What the engine holds (`engineStats()`), for diagnostics and leak checks. */
export interface EngineStats {
  /** The wasm instance's memory, in bytes (it grows, never shrinks). */
  wasmMemoryBytes: number;
  /** Engine objects alive: pictures being classified, captions in progress, taught sets. */
  live: { pictures: number; captions: number; sets: number };
}

/** A median and a minimum, in ms. */
export interface Spread {
  median: number;
  min: number;
}

/** Where the engine's time goes per 640×480 frame (`engineProfile()`), in ms. */
export interface LayerProfile {
  /**
   * Per kind of layer ("expand 1×1", "depthwise 5×5/2", …), summed over its layers. On WebGPU
   * each layer's time ends when its output has been read back, less a second read of it.
   */
  kinds: Record<string, Spread>;
  /** The sum of the kinds. */
  total: Spread;
  /** The same forward pass without clocks around each layer. */
  forward: Spread;
  /** The frame's steps before the network: its center crop read from the RGBA bytes, then normalized. */
  frame: Record<string, Spread>;
  runs: number;
  backend: Backend;
  /** The CPU threads it ran on; null on WebGPU. */
  threads: number | null;
  /** WebGPU only: per pass, the second reads of the layers' outputs, taken off the kinds. */
  readbacks?: Spread;
  /** WebGPU only: the layers timed per pass. */
  layers?: number;
}

/** Where a decoded caption token's time goes (`captionProfile()`), in ms per token. */
export interface DecodeProfile {
  /** Per matrix role and shape ("q, o (576×576)", "output (49152×576)", …) and "attention over the cache", each summed over the layers. */
  products: Record<string, Spread>;
  /** The rest of the step: RoPE, norms, SiLU, adds, embedding, argmax. */
  rest: Spread;
  /** The whole step. */
  step: Spread;
  /** The mean step of as many tokens after the same prompt, with no clock inside the step (the model's own loop, as `glimpse bench` times decoding natively). */
  unclocked_step: number;
  /** Tokens in the cache when the profile began. */
  prompt: number;
  tokens: number;
}

export interface LoadProgress {
  loaded: number;
  total: number;
  /** True when the model was read from the browser's cache instead of the network. */
  fromCache: boolean;
}

export interface LoadOptions {
  /**
   * Directory (URL) holding manifest.json and the weights; default 'models/' (relative to the
   * page). In Node.js, a path (relative to the working directory) or a `file:` URL.
   */
  models?: string | URL;
  /**
   * Default 'auto': with a WebGPU adapter, a few classifications are timed on each backend and
   * the faster is kept (remembered in this browser for its GPU and this build; see
   * `Glimpse.info.timings`); without one, the CPU.
   */
  backend?: BackendChoice;
  onProgress?: (progress: LoadProgress) => void;
  /** Run the engine on the calling thread instead of a module worker. Default false. */
  inline?: boolean;
  /**
   * CPU threads for the engine (a whole number ≥ 1). Default: the machine's cores, at most 4.
   * More than one needs a cross-origin-isolated page (served with `Cross-Origin-Opener-Policy:
   * same-origin` and `Cross-Origin-Embedder-Policy: require-corp`) and a worker engine (not
   * `inline`); elsewhere the engine runs on one thread. The threaded engine is a separate
   * download, fetched only by pages that run on it.
   */
  threads?: number;
  /**
   * Weights precision to download (computation is f32 either way); default 'int8' (4.8 MB,
   * one scale per output channel), or 'f16' where the manifest lists no int8.
   */
  dtype?: 'int8' | 'f16' | 'f32';
  /**
   * The engine stopped (its worker failed, a wasm trap, its GPU device was lost) and a new one
   * took its place: the request it was running rejected with a BackendError, the rest go on.
   */
  onRestart?: (restart: RestartInfo) => void;
}

/** What `backend: 'auto'` measured to choose: median ms of a 640×480 frame's classification. */
export interface BackendTimings {
  webgpu: number;
  cpu: number;
  /** Measured on an earlier load in this browser (same GPU, same build), not now. */
  remembered: boolean;
  /** When it was measured (ISO 8601). */
  measuredAt: string;
}

/** `Glimpse.info`: where the engine runs and why. */
export interface GlimpseInfo {
  backend: Backend;
  /** The CPU threads the engine computes on (1 without cross-origin isolation); null on WebGPU. */
  threads: number | null;
  fallbackReason: string | null;
  notCached: string | null;
  /** null when nothing was compared (a backend asked for by name, or no WebGPU adapter). */
  timings: BackendTimings | null;
}

/** What `onRestart` is told. */
export interface RestartInfo {
  /** Why the engine stopped, one line ("the GPU device was lost (destroyed)"). */
  reason: string;
  /** Where the new engine runs: after a lost GPU device, 'cpu'. */
  backend: Backend;
  /** Why it runs on the CPU, or null. */
  fallbackReason: string | null;
}

/** For `loadLabelModel` and `loadCaptionModel`: the download's progress, summed over its files. */
export interface ProgressOptions {
  onProgress?: (progress: LoadProgress) => void;
}

export interface WatchOptions {
  /** How many classes the default per-frame `classify` returns; default 5. */
  topK?: number;
  /** A frame that could not be classified; watching goes on. */
  onError?: (error: Error) => void;
  /**
   * What runs on each frame; default `(v) => glimpse.classify(v, { topK })`. E.g.
   * `(v) => teacher.classify(v)` or `(v) => glimpse.classify(v, { labels })`.
   */
  classify?: (video: HTMLVideoElement) => Promise<Classification>;
}

export interface CaptionOptions {
  /** Each piece of the sentence as it is written: whole words, never half a character. */
  onToken?: (text: string) => void;
  /** Cancels the caption; the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** What `classify`, `caption` and `Teacher.add` take (www/frames.js). */
export type ImageSource =
  | HTMLImageElement
  | SVGImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | VideoFrame
  | ImageData
  | Blob
  /** An image file's bytes (JPEG, PNG, WebP, GIF, BMP): a Node.js Buffer, a Uint8Array, an ArrayBuffer. */
  | ArrayBuffer
  | ArrayBufferView
  /** RGBA pixels, 4 bytes per pixel, row by row (ImageData's shape, usable without the DOM). */
  | RgbaPixels;

export interface RgbaPixels {
  width: number;
  height: number;
  data: Uint8Array | Uint8ClampedArray;
}

/**
 * Opt-in offline use: registers `url` (default 'sw.js', beside the page; a script of one line,
 * `importScripts('…/@seed/glimpse/www/offline-worker.js')`) as the page's service worker, which
 * keeps the page, its scripts and the wasm, so that after one visit the app starts without a
 * network (the models are kept by the package itself). Resolves to null where service workers
 * are unavailable.
 */
export declare function registerOfflineWorker(
  url?: string | URL,
  options?: RegistrationOptions,
): Promise<ServiceWorkerRegistration | null>;

export declare class Glimpse {
  private constructor();
  static load(options?: LoadOptions): Promise<Glimpse>;
  readonly backend: Backend;
  /** What the engine holds: its wasm memory and the objects alive in it. */
  engineStats(): Promise<EngineStats>;
  /** Where the engine's time goes per frame, layer kind by kind, on the CPU or WebGPU. */
  engineProfile(options?: { runs?: number }): Promise<LayerProfile>;
  /**
   * Where a decoded caption token's time goes on the CPU engine (loads the caption model
   * first): `tokens` greedy tokens after a synthetic 150-token prompt. Rejects on WebGPU.
   */
  captionProfile(options?: { tokens?: number }): Promise<DecodeProfile>;
  /** Why 'auto' fell back to the CPU (or a lost GPU device sent the engine there), or null. */
  readonly fallbackReason: string | null;
  /** Why the downloaded model could not be kept in the browser's cache (a full quota), or null. */
  readonly notCached: string | null;
  /** Where the engine runs and why, with what 'auto' measured. */
  readonly info: GlimpseInfo;
  /**
   * ImageNet's top-k; with `labels` (an array or a comma-separated string) also your labels
   * ranked, loading the label model (about 46 MB, cached) on first use.
   */
  classify(source: ImageSource, options?: GlimpseClassifyOptions): Promise<Classification>;
  /**
   * Downloads (or reads from the cache) the label model; `classify` with labels does it too.
   * The first label or caption request also moves the engine to its full build (a second
   * wasm module, 4.2 MB gzipped), taught classes included.
   */
  loadLabelModel(options?: ProgressOptions): Promise<void>;
  /** Classifies the newest frame whenever the engine is free; pauses while the tab is hidden. Returns stop(). */
  watch(video: HTMLVideoElement, onResult: (result: WatchResult) => void, options?: WatchOptions): () => void;
  /**
   * Downloads (or reads from the cache) the caption model; `caption` does it too (and, the
   * first time, the engine's full build: see `loadLabelModel`).
   */
  loadCaptionModel(options?: ProgressOptions): Promise<void>;
  /**
   * A one-sentence caption that names only what the evidence holds, streamed a whole word at
   * a time through `onToken`; cancel it with `signal` (the promise then rejects with the
   * signal's reason). A picture is looked at whole (a second object is named only when its own
   * region confirms it); a `classify` result, or any object with its `top`, is described as it
   * is (one subject).
   */
  caption(source: ImageSource | ClassificationLike, options?: CaptionOptions): Promise<CaptionResult>;
  /** A new, empty set of classes to teach from examples. */
  teach(): Teacher;
  dispose(): void;
}

/** One object a caption may name, with its evidence. */
export interface CaptionObject {
  index: number;
  /** The class, or the noun its rivals share ("car"). */
  label: string;
  prob: number;
  /** `[x0, y0, x1, y1]` in the picture's pixels, when it was located. */
  box?: [number, number, number, number];
  /** 'on the left', 'on the right', … when the caption names two objects. */
  position?: string;
  /** The shared noun's WordNet id, when `label` is one. */
  synset?: string;
}

export interface CaptionResult {
  text: string;
  /** True when the model's sentence could not be used and a template says what the facts say. */
  fallback: boolean;
  /** 'model' (written by the language model within the facts), 'rule' (hedged: the classifier was unsure), 'fallback'. */
  source: 'model' | 'rule' | 'fallback';
  /** The objects the caption was allowed to name: its evidence. */
  objects: CaptionObject[];
  certainty: 'sure' | 'probable' | 'unsure';
  /** Words taken back while writing because they named something outside the facts. */
  backtracks: number;
  /** Tokens the model generated. */
  tokens: number;
  /** Tokens in the prompt (read before the first token). */
  promptTokens: number;
  /**
   * Tokens at the prompt's beginning (its instructions and examples, the same for every caption
   * of the same kind: sure, probable, or two objects) whose reading an earlier caption had done:
   * 0 for the first caption of its kind, about nine tenths of the prompt after it. The caption
   * is the same either way; only its first token comes sooner.
   */
  promptReused: number;
  /** Time from the start to the caption's end, in milliseconds. */
  ms: number;
  /** Time to the first generated token (the prompt's pass included), in milliseconds. */
  firstTokenMs: number;
}

export interface ClassifyOptions {
  /** How many ImageNet classes to return; default 5. */
  topK?: number;
  /**
   * Your own labels to rank, e.g. ['dog', 'bird', 'vehicle'] or 'dog, bird, vehicle'. Each item
   * is split at commas and trimmed; blanks and repeats (in any letter case) are dropped, the
   * first spelling kept. None left rejects with an InvalidArgumentError.
   */
  labels?: string[] | string;
  /**
   * Also say where each top class's evidence lies (`Prediction.where`). `true` or `'whole'`:
   * over the whole picture, from square views covering it (one more pass per view);
   * `'crop'`: over the center crop classification saw, from its own pass (nearly free: for
   * live video).
   */
  where?: boolean | 'whole' | 'crop';
}

export interface GlimpseClassifyOptions extends ClassifyOptions {
  /**
   * A taught set's id in the engine: also rank its classes (`taught`). This is how
   * `Teacher.classify` comes through `Glimpse.classify`; call that instead.
   * @internal
   */
  set?: number;
}

export interface TrainProgress {
  /** Examples trained on so far. */
  done: number;
  /** Examples in the set. */
  total: number;
}

export interface TrainOptions {
  /** Called before and after training (it takes milliseconds: features were taken by `add`). */
  onProgress?: (progress: TrainProgress) => void;
}

export interface ClassSummary {
  name: string;
  examples: number;
}

export interface ClassAccuracy {
  name: string;
  /** Examples recognized when each was left out of training in turn. */
  correct: number;
  /** Examples that could be left out (a class needs two). */
  total: number;
}

export interface TeachSummary {
  classes: ClassSummary[];
  trained: boolean;
  accuracy: ClassAccuracy[];
}

/** Classes taught from examples: a nearest-class-mean head on the image model's features. */
export declare class Teacher {
  private constructor();
  readonly classes: ClassSummary[];
  readonly trained: boolean;
  readonly accuracy: ClassAccuracy[];
  /** Adds one example (its features are taken now); creates the class if new. */
  add(name: string, source: ImageSource): Promise<TeachSummary>;
  remove(name: string): Promise<TeachSummary>;
  /** Rejects with InvalidArgumentError with fewer than two classes or an empty one. */
  train(options?: TrainOptions): Promise<TeachSummary>;
  /**
   * `taught` ranks the taught classes; ImageNet's `top` comes too (and `labels`, `where` when
   * asked for). Rejects with InvalidArgumentError until `train` has run.
   */
  classify(source: ImageSource, options?: ClassifyOptions): Promise<Classification>;
  /** Classes, examples' features and head as one JSON document. */
  export(): Promise<string>;
  /** Replaces this set with an exported one; rejects with InvalidArgumentError for other files. */
  import(json: string | Blob): Promise<TeachSummary>;
  /** Keeps the set in IndexedDB under `key` (default 'default'). */
  save(key?: string): Promise<void>;
  /** Restores a saved set; false when there is none. */
  restore(key?: string): Promise<boolean>;
  dispose(): void;
}

// Each class's `name` is its own (errors.js sets it), so `switch (error.name)` narrows as
// `instanceof` does, also for errors that crossed from another realm.
/** Every failure the package reports is one of the subclasses below. */
export declare class GlimpseError extends Error {}
/** The model could not be downloaded, failed its integrity check, or does not load. */
export declare class ModelLoadError extends GlimpseError {
  name: 'ModelLoadError';
}
/** The input is not an image that can be classified (corrupt, empty, not ready, too large). */
export declare class UnsupportedImageError extends GlimpseError {
  name: 'UnsupportedImageError';
}
/** The compute backend (WebGPU or the CPU fallback) failed, is not available, or was disposed. */
export declare class BackendError extends GlimpseError {
  name: 'BackendError';
}
/** A request that cannot be carried out as given (no labels, one class, a foreign file). */
export declare class InvalidArgumentError extends GlimpseError {
  name: 'InvalidArgumentError';
}

/** Keeps a class set's JSON (`Teacher.export()`) in IndexedDB under `key`. */
export declare function saveClassSet(key: string, json: string): Promise<void>;
/** The JSON stored under `key`, or null. */
export declare function loadClassSet(key: string): Promise<string | null>;
export declare function deleteClassSet(key: string): Promise<void>;

/** Deletes the cached model files. */
export declare function clearModelCache(): Promise<void>;

/** Forgets what `backend: 'auto'` measured, so that the next load measures again. */
export declare function forgetBackendChoice(): void;
