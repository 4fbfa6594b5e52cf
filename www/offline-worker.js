// A service worker that keeps an app's shell (its pages, scripts, styles, icons, the engine's
// wasm) so that after one visit the app starts without a network. Opt-in: an app serves a
// one-line script at its root, `importScripts('…/www/offline-worker.js')`, and registers it
// with `registerOfflineWorker` (offline.js). The model files are not its business: the package
// keeps those itself in the Cache API, checked against the manifest's sha256, and reads them
// from there when the network is gone.
//
// Network first: online, every request goes to the server as before (an updated app is never
// hidden behind an old copy) and the answer is kept; offline, the kept copy answers.

const SHELL_CACHE = 'glimpse-shell-v1';
/** What a page needs to start: documents and what they load by tag. */
const SHELL_DESTINATIONS = new Set(['document', 'script', 'style', 'worker', 'sharedworker', 'image', 'manifest', 'font']);

self.addEventListener('install', () => self.skipWaiting());
// Take over the pages already open, so the first visit's own requests are kept too.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

/** The shell: same-origin GETs of documents and tag-loaded files, and the wasm (fetched by script). */
function isShell(request) {
  if (request.method !== 'GET') return false;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return false;
  return request.mode === 'navigate' || SHELL_DESTINATIONS.has(request.destination) || url.pathname.endsWith('.wasm');
}

async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    // A full storage only costs the offline copy: the page still gets its answer.
    if (response.ok) await cache.put(request, response.clone()).catch(() => {});
    return response;
  } catch (error) {
    // A page reached with another query (`?backend=cpu`) is the same page.
    const kept = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
    if (kept) return kept;
    throw error;
  }
}

self.addEventListener('fetch', (event) => {
  if (isShell(event.request)) event.respondWith(networkFirst(event.request));
});
