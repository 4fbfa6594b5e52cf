// Opt-in offline use: registers an app's service worker script (a one-liner that imports
// offline-worker.js), so that after one visit the app loads and classifies with the network
// off. The package never registers one by itself.

/** The offline worker's cache (the same name as in offline-worker.js). */
const SHELL_CACHE = 'glimpse-shell-v1';
/** The package's files its engine worker loads, where the page cannot see them load. */
const ENGINE_FILES = [
  './worker.js',
  './engine-host.js',
  './errors.js',
  './node.js',
  '../pkg/glimpse_vision.js',
  '../pkg/glimpse_vision_bg.wasm',
  // The full build, which labels and captions move the engine to: kept now, so that they
  // also work offline.
  '../pkg/glimpse.js',
  '../pkg/glimpse_bg.wasm',
];
/** The threaded build and its pool's worker: only a cross-origin-isolated page runs them. */
const THREADED_ENGINE_FILES = ['./pool-worker.js', '../pkg/glimpse_threads.js', '../pkg/glimpse_threads_bg.wasm'];

/**
 * Registers `url` (default 'sw.js', beside the page) as the page's service worker, and keeps
 * what this visit already loaded (it came before the worker could see it). Resolves to the
 * registration, or to null where service workers are unavailable (not a secure context, a
 * private window that forbids them, Node.js).
 */
export async function registerOfflineWorker(url = 'sw.js', options) {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return null;
  let registration;
  try {
    registration = await navigator.serviceWorker.register(url, options);
  } catch {
    return null;
  }
  await keepLoaded().catch(() => {});
  return registration;
}

/**
 * The page, what it loaded by tag (scripts, styles, icons, the manifest), and the engine's
 * files, into the offline worker's cache. Data the page fetched itself (the models, kept by
 * the package's model store) is left out.
 */
async function keepLoaded() {
  const urls = new Set([location.href]);
  for (const entry of performance.getEntriesByType('resource')) {
    const url = new URL(entry.name);
    const fetched = entry.initiatorType === 'fetch' || entry.initiatorType === 'xmlhttprequest';
    if (url.origin === location.origin && (!fetched || url.pathname.endsWith('.wasm'))) urls.add(url.href);
  }
  const engineFiles = globalThis.crossOriginIsolated ? [...ENGINE_FILES, ...THREADED_ENGINE_FILES] : ENGINE_FILES;
  for (const file of engineFiles) urls.add(new URL(file, import.meta.url).href);
  const cache = await caches.open(SHELL_CACHE);
  // One file that cannot be kept (a bundler renamed it) must not stop the others.
  await Promise.all([...urls].map((url) => cache.add(url).catch(() => {})));
}
