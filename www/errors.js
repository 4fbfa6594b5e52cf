// The kinds of failure a caller can act on. The worker and the wasm engine report
// errors as plain `{ name, message }`; `errorFromWire` turns them back into these classes.

export class GlimpseError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The model could not be downloaded, failed its integrity check, or does not load. */
export class ModelLoadError extends GlimpseError {}

/** The input is not an image that can be classified (corrupt, empty, not ready, too large). */
export class UnsupportedImageError extends GlimpseError {}

/** The compute backend (WebGPU or the CPU fallback) failed or is not available. */
export class BackendError extends GlimpseError {}

/**
 * A request that cannot be carried out as given: an empty label list, training with fewer
 * than two classes, a file that is not an exported class set.
 */
export class InvalidArgumentError extends GlimpseError {}

const CLASSES = { ModelLoadError, UnsupportedImageError, BackendError, InvalidArgumentError };

/**
 * A structured-clone-safe form of any thrown value. Anything that is not one of these
 * kinds (a wasm trap, a TypeError) is reported as a BackendError.
 */
export function errorToWire(error) {
  if (error instanceof Error && CLASSES[error.name]) return { name: error.name, message: error.message };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { name: 'BackendError', message };
}

export function errorFromWire({ name, message }) {
  return new (CLASSES[name] ?? BackendError)(message);
}
