// Types for @seed/glimpse (www/glimpse.js).

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';
export type Backend = 'webgpu' | 'cpu';

export interface Prediction {
  /** ImageNet class index, 0–999. */
  index: number;
  label: string;
  /** Probability, 0–1. */
  prob: number;
}

export interface Classification {
  /** Best class first. */
  top: Prediction[];
  /** Time in the engine (decoding, preprocessing, network), in milliseconds. */
  ms: number;
  backend: Backend;
}

export interface WatchResult extends Classification {
  /** Classifications completed per second over the last few seconds. */
  fps: number;
}

export interface LoadProgress {
  loaded: number;
  total: number;
  /** True when the model was read from the browser's cache instead of the network. */
  fromCache: boolean;
}

export interface LoadOptions {
  /** Directory (URL) holding manifest.json and the weights; default 'models/' (relative to the page). */
  models?: string | URL;
  /** Default 'auto': WebGPU when an adapter is available, else the CPU. */
  backend?: BackendChoice;
  onProgress?: (progress: LoadProgress) => void;
  /** Run the engine on the calling thread instead of a module worker. Default false. */
  inline?: boolean;
  /** Weights precision to download; default 'f16' (computation is f32 either way). */
  dtype?: 'f16' | 'f32';
}

export type ImageSource =
  | HTMLImageElement
  | HTMLVideoElement
  | HTMLCanvasElement
  | OffscreenCanvas
  | ImageBitmap
  | ImageData
  | Blob;

export declare class Glimpse {
  private constructor();
  static load(options?: LoadOptions): Promise<Glimpse>;
  readonly backend: Backend;
  /** Why 'auto' fell back to the CPU, or null. */
  readonly fallbackReason: string | null;
  /** Why the downloaded model could not be kept in the browser's cache (a full quota), or null. */
  readonly notCached: string | null;
  classify(source: ImageSource, options?: { topK?: number }): Promise<Classification>;
  /** Classifies the newest frame whenever the engine is free; pauses while the tab is hidden. Returns stop(). */
  watch(
    video: HTMLVideoElement,
    onResult: (result: WatchResult) => void,
    options?: { topK?: number; onError?: (error: Error) => void },
  ): () => void;
  dispose(): void;
}

export declare class GlimpseError extends Error {}
export declare class ModelLoadError extends GlimpseError {}
export declare class UnsupportedImageError extends GlimpseError {}
export declare class BackendError extends GlimpseError {}

/** Deletes the cached model files. */
export declare function clearModelCache(): Promise<void>;
