// The demo page's service worker: the package's offline worker (www/offline-worker.js), served
// from the root so that it controls the whole page.
importScripts('./www/offline-worker.js');
