// Turns whatever the caller passes to `classify` into a transferable input for the engine.

import { UnsupportedImageError } from './errors.js';

// The formats the Rust decoder reads; other files go through the browser's own decoder.
const SIGNATURES = [
  [0xff, 0xd8, 0xff], // JPEG
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x42, 0x4d], // BMP
];

function isRustDecodable(bytes) {
  const head = new Uint8Array(bytes, 0, Math.min(12, bytes.byteLength));
  const isWebp =
    head.length >= 12 &&
    String.fromCharCode(...head.slice(0, 4)) === 'RIFF' &&
    String.fromCharCode(...head.slice(8, 12)) === 'WEBP';
  return isWebp || SIGNATURES.some((sig) => sig.every((b, i) => head[i] === b));
}

// The engine's own limits (src/vision/preprocess.rs), checked here too so that an oversized
// file is refused before it is read into memory or copied to the engine.
const MAX_IMAGE_BYTES = 50_000_000;
const MAX_PIXELS = 100_000_000;

function checkFileSize(bytes) {
  if (bytes > MAX_IMAGE_BYTES) {
    throw new UnsupportedImageError(
      `the image file is too large (${(bytes / 1e6).toFixed(1)} MB; the limit is ${MAX_IMAGE_BYTES / 1e6} MB)`,
    );
  }
}

const has = (name) => typeof globalThis[name] !== 'undefined';

function checkReady(source) {
  if (has('HTMLImageElement') && source instanceof HTMLImageElement) {
    if (!source.complete || source.naturalWidth === 0) {
      throw new UnsupportedImageError('the image has not loaded (or could not be decoded)');
    }
  } else if (has('HTMLVideoElement') && source instanceof HTMLVideoElement) {
    if (source.readyState < 2 || source.videoWidth === 0) {
      throw new UnsupportedImageError('the video has no frame to show yet');
    }
  }
}

function isBitmapSource(source) {
  return ['HTMLImageElement', 'HTMLVideoElement', 'HTMLCanvasElement', 'OffscreenCanvas', 'ImageBitmap', 'VideoFrame', 'SVGImageElement'].some(
    (name) => has(name) && source instanceof globalThis[name],
  );
}

async function bitmapOf(source) {
  try {
    return await createImageBitmap(source);
  } catch (cause) {
    throw new UnsupportedImageError(`the browser could not read the picture: ${cause.message}`, { cause });
  }
}

/** An encoded file's bytes, copied (the caller keeps its buffer), or an error for an empty one. */
function encodedInput(view) {
  if (view.byteLength === 0) throw new UnsupportedImageError('the file is empty');
  checkFileSize(view.byteLength);
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice().buffer;
  return { input: { kind: 'encoded', bytes }, transfer: [bytes] };
}

/** `{ width, height, data }` with `data` RGBA, 4 bytes per pixel (ImageData's shape, or a plain object). */
function isPixels(source) {
  return (
    source !== null &&
    typeof source === 'object' &&
    Number.isInteger(source.width) &&
    Number.isInteger(source.height) &&
    ArrayBuffer.isView(source.data)
  );
}

function pixelsInput({ width, height, data }) {
  if (width * height > MAX_PIXELS) {
    throw new UnsupportedImageError(`the image is too large (${width}×${height} pixels; the limit is ${MAX_PIXELS / 1e6} megapixels)`);
  }
  if (width <= 0 || height <= 0 || data.byteLength !== width * height * 4) {
    throw new UnsupportedImageError(
      `pixels must be RGBA, 4 bytes per pixel: ${width}×${height} needs ${Math.max(width * height * 4, 0)} bytes, got ${data.byteLength}`,
    );
  }
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice().buffer;
  return { input: { kind: 'rgba', width, height, pixels }, transfer: [pixels] };
}

/** Resolves to `{ input, transfer }` ready to post to the engine. */
export async function toInput(source) {
  // An image file's bytes (a Node.js Buffer, a Uint8Array, an ArrayBuffer): decoded by the engine.
  if (source instanceof ArrayBuffer) return encodedInput(new Uint8Array(source));
  if (ArrayBuffer.isView(source)) return encodedInput(source);
  if (has('Blob') && source instanceof Blob) {
    checkFileSize(source.size);
    const bytes = await source.arrayBuffer();
    if (bytes.byteLength === 0) throw new UnsupportedImageError('the file is empty');
    if (isRustDecodable(bytes)) return { input: { kind: 'encoded', bytes }, transfer: [bytes] };
    // AVIF, HEIC, SVG, ...: let the browser decode what it can.
    const bitmap = await bitmapOf(source).catch(() => {
      throw new UnsupportedImageError('not an image this browser can decode (try JPEG, PNG, WebP, GIF or BMP)');
    });
    return { input: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
  }
  if ((has('ImageData') && source instanceof ImageData) || isPixels(source)) return pixelsInput(source);
  if (source && isBitmapSource(source)) {
    checkReady(source);
    const bitmap = await bitmapOf(source);
    return { input: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
  }
  throw new UnsupportedImageError(
    'classify() takes an <img>, <video>, <canvas>, OffscreenCanvas, ImageBitmap, VideoFrame, ImageData, Blob, ' +
      'an image file\'s bytes (ArrayBuffer, Uint8Array, Buffer) or { width, height, data } RGBA pixels',
  );
}
