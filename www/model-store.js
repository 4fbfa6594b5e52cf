// Fetches the model files named by `manifest.json` (the classifier's weights, the label model,
// ...), verifies their sha256, and keeps them in the Cache API so that later visits load them
// without any request for the file.

import { ModelLoadError } from './errors.js';
import { fileResponse, inNode, modelsDirUrl } from './node.js';

const CACHE_NAME = 'glimpse-models-v1';
const IMAGE_MODEL = 'efficientnet-lite0';

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

function hint() {
  return 'Run `npm run fetch-models` to create the models directory.';
}

async function fetchOrExplain(url, what) {
  let response;
  try {
    response = inNode && url.startsWith('file:') ? await fileResponse(url) : await fetch(url, { cache: 'no-cache' });
  } catch (cause) {
    throw new ModelLoadError(`could not download the ${what} from ${url}: ${cause.message}`, { cause });
  }
  if (!response.ok) {
    const reason = response.status === 404 ? 'not found (HTTP 404)' : `HTTP ${response.status}`;
    throw new ModelLoadError(`the ${what} at ${url} is ${reason}. ${hint()}`);
  }
  return response;
}

async function openCache() {
  // The Cache API exists only in secure contexts (https, localhost, 127.0.0.1).
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch {
    return null;
  }
}

/** The manifest from the network, or its cached copy when the network is unavailable. */
async function readManifest(manifestUrl, cache) {
  try {
    const response = await fetchOrExplain(manifestUrl, 'model manifest');
    const manifest = await response.clone().json();
    await cache?.put(manifestUrl, response).catch(() => {});
    return manifest;
  } catch (error) {
    const cached = await cache?.match(manifestUrl);
    if (cached) return cached.json();
    if (error instanceof SyntaxError) {
      throw new ModelLoadError(`${manifestUrl} is not valid JSON: ${error.message}`);
    }
    throw error;
  }
}

function findEntry(manifest, name, dtype, manifestUrl) {
  const entry = manifest?.models?.find((m) => m.name === name && (dtype === undefined || m.dtype === dtype));
  if (!entry) {
    const which = dtype === undefined ? name : `${name} model in ${dtype}`;
    throw new ModelLoadError(`${manifestUrl} lists no ${which}. ${hint()}`);
  }
  return entry;
}

/** Reads a response body whole, reporting progress as it arrives. */
async function readWithProgress(response, total, onProgress) {
  if (!response.body) return response.arrayBuffer();
  const chunks = [];
  const loaded = await pump(response.body, total, false, (chunk) => chunks.push(chunk), onProgress);
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes.buffer;
}

/**
 * Resolves to `{ weights: ArrayBuffer, entry, fromCache, notCached }` for the image model in
 * `dtype`; `notCached` says why a downloaded model could not be stored in the cache (quota), or
 * is null. `onProgress({ loaded, total, fromCache })` reports the download.
 */
export function loadWeights({ modelsUrl, dtype = 'f16', onProgress } = {}) {
  return loadModelFile({ modelsUrl, name: IMAGE_MODEL, dtype, onProgress, what: 'model weights' });
}

/** The manifest's entry for `name` (and `dtype`), the file's URL and the cache (or null). */
async function locate(modelsUrl, name, dtype) {
  const base = inNode ? modelsDirUrl(String(modelsUrl)) : new URL(modelsUrl, globalThis.location?.href);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  const manifestUrl = new URL('manifest.json', base).href;
  const cache = await openCache();
  const entry = findEntry(await readManifest(manifestUrl, cache), name, dtype, manifestUrl);
  return { entry, url: new URL(entry.file, base).href, cache };
}

/** Like `loadWeights`, for any file the manifest lists by `name` (and `dtype`, when it has one). */
export async function loadModelFile({ modelsUrl, name, dtype, onProgress, what = name }) {
  const { entry, url: weightsUrl, cache } = await locate(modelsUrl, name, dtype);

  const cached = await cache?.match(weightsUrl);
  if (cached) {
    const weights = await cached.arrayBuffer();
    if ((await sha256Hex(weights)) === entry.sha256) {
      onProgress?.({ loaded: weights.byteLength, total: weights.byteLength, fromCache: true });
      return { weights, entry, fromCache: true };
    }
    // A damaged or outdated copy: drop it and download again.
    await cache.delete(weightsUrl);
  }

  const response = await fetchOrExplain(weightsUrl, what);
  const total = Number(response.headers.get('Content-Length')) || entry.bytes;
  const weights = await readWithProgress(response, total, onProgress);
  const actual = await sha256Hex(weights);
  if (actual !== entry.sha256) {
    throw new ModelLoadError(
      `the ${what} at ${weightsUrl} failed the integrity check and is corrupt: sha256 ${actual} ` +
        `(${weights.byteLength} bytes) where the manifest expects ${entry.sha256} (${entry.bytes} bytes). ${hint()}`,
    );
  }
  // A full or unavailable cache only costs a download next time: say so, but go on.
  let notCached = null;
  await cache
    ?.put(weightsUrl, new Response(weights.slice(0), { headers: { 'Content-Type': 'application/octet-stream' } }))
    .catch((error) => (notCached = quotaMessage(error)));
  return { weights, entry, fromCache: false, notCached };
}

/** Removes every cached model file (for a "clear cache" control and the tests). */
export async function clearModelCache() {
  if (typeof caches !== 'undefined') await caches.delete(CACHE_NAME);
}

/** Feeds a body's chunks to `onChunk` (awaiting each), reporting progress; resolves to the byte count. */
async function pump(body, total, fromCache, onChunk, onProgress) {
  const reader = body.getReader();
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return loaded;
    loaded += value.byteLength;
    await onChunk(value);
    onProgress?.({ loaded, total, fromCache });
  }
}

function quotaMessage(error) {
  return error?.name === 'QuotaExceededError'
    ? 'the browser’s storage quota is full, so the model will be downloaded again next time'
    : `the model could not be kept for next time (${error?.message ?? error})`;
}

/**
 * For large files: streams the file the manifest lists by `name` to `sink` without ever holding
 * it whole in JavaScript. `sink.begin(bytes)`, then `sink.chunk(Uint8Array)` per chunk, then
 * `sink.finish(sha256)`, which must check the bytes against the manifest's hash (and reject
 * when they differ). A downloaded file is cached as it streams; a cached copy that fails the
 * check is dropped and downloaded again. Resolves to `{ entry, fromCache, notCached }`.
 */
export async function streamModelFile({ modelsUrl, name, sink, onProgress, what = name }) {
  const { entry, url, cache } = await locate(modelsUrl, name, undefined);

  const cached = await cache?.match(url);
  if (cached?.body) {
    try {
      await sink.begin(entry.bytes);
      await pump(cached.body, entry.bytes, true, (chunk) => sink.chunk(chunk), onProgress);
      await sink.finish(entry.sha256);
      return { entry, fromCache: true, notCached: null };
    } catch {
      // A damaged or outdated copy: drop it and download again.
      await cache.delete(url);
    }
  }

  const response = await fetchOrExplain(url, what);
  const total = Number(response.headers.get('Content-Length')) || entry.bytes;
  let notCached = null;
  const stored = cache
    ?.put(url, response.clone())
    .catch((error) => (notCached = quotaMessage(error)));
  await sink.begin(entry.bytes);
  await pump(response.body, total, false, (chunk) => sink.chunk(chunk), onProgress);
  await stored;
  try {
    await sink.finish(entry.sha256);
  } catch (error) {
    await cache?.delete(url);
    throw error;
  }
  return { entry, fromCache: false, notCached };
}
