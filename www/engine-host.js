// Runs the wasm `Engine`: inside the module worker (worker.js) or, with `inline: true`, on the
// page's own thread. Inputs arrive as plain, transferable descriptions of a picture:
//   { kind: 'encoded', bytes }                 an image file (JPEG, PNG, WebP, GIF, BMP)
//   { kind: 'rgba', width, height, pixels }    raw RGBA pixels (ArrayBuffer)
//   { kind: 'bitmap', bitmap }                 an ImageBitmap (a video frame, a canvas, ...)

import initWasm, { Engine } from '../pkg/glimpse.js';
import { BackendError, errorFromWire, errorToWire } from './errors.js';

let wasmReady = null;

/** Why WebGPU cannot be used here, or null when an adapter is available. */
async function webgpuUnavailableReason() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return 'this browser does not offer WebGPU (navigator.gpu is missing)';
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return 'no WebGPU adapter is available (the GPU may be blocklisted or disabled)';
  } catch (error) {
    return `requesting a WebGPU adapter failed: ${error.message}`;
  }
  return null;
}

// The Rust messages start with the kind ("unsupported image: ..."), which the error's class
// already says.
const KIND_PREFIX = /^(unsupported image|model weights|backend|model fetch): /;

/** The wasm engine rejects with JS Errors whose `name` is the error kind; keep that kind. */
function asTyped(error) {
  const { name, message } = errorToWire(error);
  return errorFromWire({ name, message: message.replace(KIND_PREFIX, '').trim() });
}

/**
 * Loads the wasm module and creates an engine on `backend` ('auto' | 'webgpu' | 'cpu').
 * Resolves to `{ engine, backend: 'webgpu' | 'cpu', fallbackReason }`.
 */
export async function createEngine({ backend, weights }) {
  if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
    throw new BackendError(`unknown backend '${backend}' (use 'auto', 'webgpu' or 'cpu')`);
  }
  wasmReady ??= initWasm();
  await wasmReady;

  let requested = backend;
  let fallbackReason = null;
  if (backend !== 'cpu') {
    const reason = await webgpuUnavailableReason();
    if (reason && backend === 'webgpu') throw new BackendError(`WebGPU was requested but ${reason}`);
    if (reason) {
      requested = 'cpu';
      fallbackReason = reason;
    }
  }
  try {
    const engine = await Engine.create(requested, new Uint8Array(weights));
    return { engine, backend: engine.backend, fallbackReason: fallbackReason ?? engine.fallbackReason ?? null };
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

/** Classifies one input. Resolves to `{ top: [{ index, label, prob }], ms }`. */
export async function classifyInput(engine, input, topK) {
  const start = performance.now();
  let top;
  try {
    switch (input.kind) {
      case 'encoded':
        top = await engine.classifyEncoded(new Uint8Array(input.bytes), topK);
        break;
      case 'rgba':
        top = await engine.classifyRgba(input.width, input.height, new Uint8Array(input.pixels), topK);
        break;
      case 'bitmap': {
        const { width, height } = input.bitmap;
        top = await engine.classifyRgba(width, height, bitmapPixels(input.bitmap), topK);
        break;
      }
      default:
        throw new BackendError(`unknown input kind '${input.kind}'`);
    }
  } catch (error) {
    throw asTyped(error);
  }
  return { top, ms: performance.now() - start };
}
