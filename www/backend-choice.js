// `backend: 'auto'`: WebGPU is not always the faster for a small CNN (a weak or emulated GPU,
// a busy one), so with a WebGPU adapter present both backends are timed on the same frame and
// the faster one kept. The outcome is remembered in localStorage for this browser, GPU and
// module build; any of them changing means measuring again.

const STORE_KEY = 'glimpse.backend-measured';

/** Timed classifications per backend after one warm-up (medians are compared). */
const RUNS = 3;

/** The GPU adapter as one line (vendor, architecture, device, description), or null without one. */
async function gpuIdentity() {
  const gpu = globalThis.navigator?.gpu;
  if (!gpu) return null;
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return null;
    const info = adapter.info ?? {};
    return ['vendor', 'architecture', 'device', 'description'].map((key) => info[key] ?? '').join('|');
  } catch {
    return null;
  }
}

function storage() {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage denied (an opaque origin, a sandboxed frame)
  }
}

function recall() {
  try {
    return JSON.parse(storage()?.getItem(STORE_KEY) ?? 'null');
  } catch {
    return null;
  }
}

function remember(record) {
  try {
    storage()?.setItem(STORE_KEY, JSON.stringify(record));
  } catch {
    // A full or denied storage only means measuring again next time.
  }
}

/** Forgets the remembered measurement, so the next `backend: 'auto'` load measures again. */
export function forgetBackendChoice() {
  try {
    storage()?.removeItem(STORE_KEY);
  } catch {
    // nothing remembered where there is no storage
  }
}

/**
 * Starts an engine for `backend: 'auto'` on the faster backend. `start(backend)` starts one
 * (resolving to `{ connection, info }`); the loser is disposed. Resolves to `{ connection,
 * info, timings }`, `timings = { webgpu, cpu, remembered, measuredAt }` (ms per 640×480 frame),
 * or to null when there is no WebGPU adapter to compare (the caller starts 'auto' as before).
 * `penalty` (`{ cpu?, webgpu? }`, tests only): ms added to a backend's measured time; such a
 * measurement is neither recalled nor remembered.
 */
export async function startFastest(start, penalty = null) {
  const gpu = await gpuIdentity();
  if (!gpu) return null;
  const context = `${globalThis.navigator?.userAgent ?? ''}\n${gpu}`;
  const known = penalty ? null : recall();
  if (known?.context === context && (known.backend === 'webgpu' || known.backend === 'cpu')) {
    const started = await start(known.backend);
    if (started.info.backend === known.backend && started.info.module === known.module) {
      return { ...started, timings: { ...known.ms, remembered: true, measuredAt: known.measuredAt } };
    }
    started.connection.dispose(); // a new build (or a GPU that now fails): measure again
  }

  // The CPU first: its time bounds how long a slow GPU is waited for. (In inline mode the GPU
  // engine, started last, is also the one that hears of its device being lost.)
  const cpu = await start('cpu');
  let cpuMs;
  try {
    cpuMs = (await cpu.connection.call({ type: 'engine.time', runs: RUNS })) + (penalty?.cpu ?? 0);
  } catch (error) {
    cpu.connection.dispose();
    throw error;
  }
  let gpuRun;
  try {
    gpuRun = await start('webgpu');
  } catch (error) {
    // WebGPU did not start (the adapter could not give a device, the engine failed on it):
    // the CPU it is, saying why.
    return { ...cpu, info: { ...cpu.info, fallbackReason: `WebGPU could not start: ${error.message}` }, timings: null };
  }
  let gpuMs;
  try {
    gpuMs = (await gpuRun.connection.call({ type: 'engine.time', runs: RUNS, beat: cpuMs })) + (penalty?.webgpu ?? 0);
  } catch (error) {
    gpuRun.connection.dispose();
    return { ...cpu, info: { ...cpu.info, fallbackReason: `WebGPU failed its timing run: ${error.message}` }, timings: null };
  }
  const faster = gpuMs < cpuMs ? gpuRun : cpu;
  (faster === cpu ? gpuRun : cpu).connection.dispose();
  const measuredAt = new Date().toISOString();
  const ms = { webgpu: gpuMs, cpu: cpuMs };
  if (!penalty) remember({ context, module: faster.info.module, backend: faster.info.backend, ms, measuredAt });
  return { ...faster, timings: { ...ms, remembered: false, measuredAt } };
}
