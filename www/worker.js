// The module worker that owns the wasm engine, so inference never blocks the page.
// Messages in:  { id, type: 'load', backend, weights } | { id, type: 'classify', input, topK }
//               | { type: 'dispose' }
// Messages out: { id, ok: true, result } | { id, ok: false, error: { name, message } }

import { classifyInput, createEngine } from './engine-host.js';
import { errorToWire } from './errors.js';

let engine = null;

async function handle(message) {
  switch (message.type) {
    case 'load': {
      const loaded = await createEngine(message);
      engine = loaded.engine;
      return { backend: loaded.backend, fallbackReason: loaded.fallbackReason };
    }
    case 'classify':
      if (!engine) throw new Error('the engine is not loaded yet');
      return classifyInput(engine, message.input, message.topK);
    default:
      throw new Error(`unknown message type '${message.type}'`);
  }
}

self.onmessage = async ({ data: message }) => {
  if (message.type === 'dispose') {
    engine?.free();
    engine = null;
    self.close();
    return;
  }
  try {
    self.postMessage({ id: message.id, ok: true, result: await handle(message) });
  } catch (error) {
    self.postMessage({ id: message.id, ok: false, error: errorToWire(error) });
  }
};
