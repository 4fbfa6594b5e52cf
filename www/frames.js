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

/** Resolves to `{ input, transfer }` ready to post to the engine. */
export async function toInput(source) {
  if (has('Blob') && source instanceof Blob) {
    const bytes = await source.arrayBuffer();
    if (bytes.byteLength === 0) throw new UnsupportedImageError('the file is empty');
    if (isRustDecodable(bytes)) return { input: { kind: 'encoded', bytes }, transfer: [bytes] };
    // AVIF, HEIC, SVG, ...: let the browser decode what it can.
    const bitmap = await bitmapOf(source).catch(() => {
      throw new UnsupportedImageError('not an image this browser can decode (try JPEG, PNG, WebP, GIF or BMP)');
    });
    return { input: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
  }
  if (has('ImageData') && source instanceof ImageData) {
    const pixels = source.data.slice().buffer;
    return { input: { kind: 'rgba', width: source.width, height: source.height, pixels }, transfer: [pixels] };
  }
  if (source && isBitmapSource(source)) {
    checkReady(source);
    const bitmap = await bitmapOf(source);
    return { input: { kind: 'bitmap', bitmap }, transfer: [bitmap] };
  }
  throw new UnsupportedImageError(
    'classify() takes an <img>, <video>, <canvas>, OffscreenCanvas, ImageBitmap, VideoFrame, ImageData or Blob',
  );
}
