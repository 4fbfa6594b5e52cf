// The module worker that owns the wasm engine, so inference never blocks the page.
// Messages in:  { id, type, ... } as EngineHost.handle reads them | { type: 'engine.dispose' }
// Messages out: { id, ok: true, result } | { id, ok: false, error: { name, message }, fatal? { reason, gpuLost } }
//               | { event: 'gpu-lost', reason }
// `fatal` (a wasm trap) and 'gpu-lost' say the engine cannot go on: the page starts a new worker.

import { EngineHost } from './engine-host.js';
import { errorToWire } from './errors.js';

const host = new EngineHost({ onGpuLost: (reason) => self.postMessage({ event: 'gpu-lost', reason }), stepAhead: true });

self.onmessage = async ({ data: message }) => {
  if (message.type === 'engine.dispose') {
    host.dispose();
    self.close();
    return;
  }
  try {
    self.postMessage({ id: message.id, ok: true, result: await host.handle(message) });
  } catch (error) {
    const fatal = host.broken && { reason: host.broken, gpuLost: host.gpuLost };
    self.postMessage({ id: message.id, ok: false, error: errorToWire(error), fatal });
  }
  host.answered();
};
