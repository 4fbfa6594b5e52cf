// One thread of the threaded engine's pool (the 'threads' build, on a cross-origin-isolated
// page): a module worker that the engine's worker starts, running the same wasm module on the
// engine's shared memory. It is handed the module and memory first ('pool.init', answered
// 'pool.ready'), then where its thread starts in that memory ('pool.run', answered
// 'pool.running' just before the thread takes the worker over for good).

import initThreads, { runPoolThread } from '../pkg/glimpse_threads.js';

self.onmessage = async ({ data }) => {
  try {
    if (data.type === 'pool.init') {
      await initThreads({ module_or_path: data.module, memory: data.memory });
      self.postMessage({ type: 'pool.ready' });
    } else if (data.type === 'pool.run') {
      self.postMessage({ type: 'pool.running' });
      runPoolThread(data.start);
    }
  } catch (error) {
    self.postMessage({ type: 'pool.failed', message: error?.message ?? String(error) });
  }
};
