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

/**
 * `cache`: 'no-cache' for the manifest (revalidated: a new one names new files); 'no-store' for
 * the model files, which the Cache API keeps (a second copy in the HTTP cache would only take
 * the visitor's storage twice).
 */
async function fetchOrExplain(url, what, cache = 'no-store') {
  let response;
  try {
    response = inNode && url.startsWith('file:') ? await fileResponse(url) : await fetch(url, { cache });
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
    const response = await fetchOrExplain(manifestUrl, 'model manifest', 'no-cache');
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

/** `dtype`: one precision, or several, the first the manifest lists being taken. */
function findEntry(manifest, name, dtype, manifestUrl) {
  const wanted = dtype === undefined ? [undefined] : [dtype].flat();
  const matches = (m, d) => m.name === name && (d === undefined || m.dtype === d);
  const entry = wanted.map((d) => manifest?.models?.find((m) => matches(m, d))).find(Boolean);
  if (!entry) {
    const which = dtype === undefined ? name : `${name} model in ${wanted.join(' or ')}`;
    throw new ModelLoadError(`${manifestUrl} lists no ${which}. ${hint()}`);
  }
  return entry;
}

/** Reads a response body whole, reporting progress as it arrives. */
async function readWithProgress(body, total, onProgress) {
  const chunks = [];
  const loaded = await pump(body, total, false, (chunk) => chunks.push(chunk), onProgress);
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
 * `dtype` (default: int8, the smallest download, else f16 for a models directory made before
 * int8 existed); `notCached` says why a downloaded model could not be stored in the cache
 * (quota), or is null. `onProgress({ loaded, total, fromCache })` reports the download.
 */
export function loadWeights({ modelsUrl, dtype = ['int8', 'f16'], onProgress } = {}) {
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

/**
 * The cached copy of `entry`'s file as a Blob, or null. A copy of the wrong size (a truncated
 * write, an error page cached under the file's URL) is evicted here, before anything reads
 * it: the size is known without reading the file, the sha256 is checked by the caller.
 */
async function cachedFile(cache, url, entry) {
  const cached = await cache?.match(url).catch(() => null);
  if (!cached) return null;
  const blob = cached.ok ? await cached.blob().catch(() => null) : null;
  if (blob?.size === entry.bytes) return blob;
  await cache.delete(url).catch(() => {});
  return null;
}

/** How often one download may resume after its connection dropped. */
const MAX_RESUMES = 3;

/**
 * `response`'s body, continued with a Range request from the byte where it stopped whenever
 * the connection drops, so a flaky network costs the missing part rather than the whole file.
 * A server that ignores the Range sends the file whole again, and the part already read is
 * skipped. The caller checks the sha256 over all of it, which also catches a file that changed
 * on the server in between.
 */
function resumableBody(url, response, what) {
  let reader = response.body.getReader();
  let loaded = 0;
  let resumes = 0;
  const total = Number(response.headers.get('Content-Length')) || null;
  // A byte stream, so that its tee() gives the second branch copies: the engine's sink
  // transfers (detaches) each chunk it is given.
  return new ReadableStream({
    type: 'bytes',
    async pull(controller) {
      for (;;) {
        let chunk = null;
        let failure = null;
        try {
          chunk = await reader.read();
        } catch (error) {
          failure = error;
        }
        // A connection closed early without an error is a drop too.
        if (!failure && !(chunk.done && total !== null && loaded < total)) {
          if (chunk.done) {
            controller.close();
          } else {
            if (chunk.value.byteLength === 0) continue; // a byte stream takes no empty chunk
            loaded += chunk.value.byteLength;
            controller.enqueue(chunk.value);
          }
          return;
        }
        if (++resumes > MAX_RESUMES) {
          const why = failure ? `: ${failure.message}` : ' (the connection kept closing early)';
          controller.error(new ModelLoadError(`the download of the ${what} from ${url} kept failing${why}`, { cause: failure }));
          return;
        }
        try {
          reader = await resumeFrom(url, loaded, what);
        } catch (error) {
          controller.error(error);
          return;
        }
      }
    },
    cancel: (reason) => reader?.cancel(reason),
  });
}

/** A reader of `url` from byte `offset` on. */
async function resumeFrom(url, offset, what) {
  let response;
  try {
    response = await fetch(url, { cache: 'no-store', headers: { Range: `bytes=${offset}-` } });
  } catch (cause) {
    throw new ModelLoadError(`could not resume the download of the ${what} from ${url}: ${cause.message}`, { cause });
  }
  const resumed = response.status === 206 && response.headers.get('Content-Range')?.startsWith(`bytes ${offset}-`);
  if (!resumed && response.status !== 200) {
    throw new ModelLoadError(`could not resume the download of the ${what} from ${url}: HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  return resumed ? reader : skipping(reader, offset);
}

/** `reader` without its first `count` bytes. */
function skipping(reader, count) {
  let left = count;
  return {
    async read() {
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done || left === 0) return chunk;
        if (chunk.value.byteLength <= left) {
          left -= chunk.value.byteLength;
          continue;
        }
        const value = chunk.value.subarray(left);
        left = 0;
        return { done: false, value };
      }
    },
    cancel: (reason) => reader.cancel(reason),
  };
}

/** One line saying the bytes are not the file the manifest lists. */
function notTheFile(what, url, bytes, sha256, entry) {
  const [got, expected] = bytes === entry.bytes ? [`sha256 ${sha256.slice(0, 12)}…`, `sha256 ${entry.sha256.slice(0, 12)}…`] : [`${bytes} bytes`, `${entry.bytes} bytes`];
  return new ModelLoadError(`the ${what} downloaded from ${url} failed the integrity check: ${got} where the manifest lists ${expected}. ${hint()}`);
}

/** Like `loadWeights`, for any file the manifest lists by `name` (and `dtype`, when it has one). */
export async function loadModelFile({ modelsUrl, name, dtype, onProgress, what = name }) {
  const { entry, url: weightsUrl, cache } = await locate(modelsUrl, name, dtype);

  const cached = await cachedFile(cache, weightsUrl, entry);
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
  const weights = await readWithProgress(resumableBody(weightsUrl, response, what), total, onProgress);
  const actual = await sha256Hex(weights);
  if (weights.byteLength !== entry.bytes || actual !== entry.sha256) {
    throw notTheFile(what, weightsUrl, weights.byteLength, actual, entry);
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

  const cached = await cachedFile(cache, url, entry);
  if (cached) {
    try {
      await sink.begin(entry.bytes);
      await pump(cached.stream(), entry.bytes, true, (chunk) => sink.chunk(chunk), onProgress);
      await sink.finish(entry.sha256);
      return { entry, fromCache: true, notCached: null };
    } catch {
      // A damaged or outdated copy: drop it and download again.
      await cache.delete(url);
    }
  }

  const response = await fetchOrExplain(url, what);
  const total = Number(response.headers.get('Content-Length')) || entry.bytes;
  // One stream, resumed across dropped connections, feeds both the engine and the cache.
  const [forSink, forCache] = resumableBody(url, response, what).tee();
  let notCached = null;
  const stored = cache
    ?.put(url, new Response(forCache, { headers: { 'Content-Type': 'application/octet-stream' } }))
    .catch((error) => (notCached = quotaMessage(error)));
  if (!cache) forCache.cancel();
  await sink.begin(entry.bytes);
  const loaded = await pump(forSink, total, false, (chunk) => sink.chunk(chunk), onProgress);
  await stored;
  try {
    if (loaded !== entry.bytes) throw notTheFile(what, url, loaded, '', entry);
    await sink.finish(entry.sha256); // the sha256 over every byte, resumed or not
  } catch (error) {
    await cache?.delete(url);
    throw error;
  }
  return { entry, fromCache: false, notCached };
}
