//! The threaded module's pool: rayon's global pool, its threads on web workers that run this
//! same module on the same (shared) memory. Only built with the `threads` feature (nightly,
//! atomics; see scripts/build-wasm.mjs), and only used by a cross-origin-isolated page.
//!
//! wasm-bindgen-rayon does the same, but its worker script imports the module's bindings
//! dynamically, which the package's bundlers refuse in a worker (Vite's iife worker format
//! cannot code-split); the package's own worker (www/pool-worker.js) imports them statically.

use wasm_bindgen::prelude::*;

/// Builds rayon's global pool of `threads` threads. For each thread, `spawn(start)` is called
/// with the address of the thread's start in the shared memory: JS hands it to a web worker
/// already running this module, which calls [`run_pool_thread`] with it. The workers must be
/// running before this is called: the thread that calls it may block on the pool next, and a
/// blocked thread cannot start a worker.
#[wasm_bindgen(js_name = startThreadPool)]
pub fn start_thread_pool(threads: usize, spawn: &js_sys::Function) -> Result<(), JsValue> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .spawn_handler(|thread| {
            let start = Box::into_raw(Box::new(thread)) as usize as u32;
            spawn
                .call1(&JsValue::NULL, &JsValue::from(start))
                .map(drop)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))
        })
        .build_global()
        .map_err(|e| {
            super::js_error(crate::GlimpseError::Backend(format!(
                "the thread pool could not start: {e}"
            )))
        })
}

/// Runs one pool thread until the pool ends (with the page): the worker calls this with the
/// address `spawn` was given, once.
#[wasm_bindgen(js_name = runPoolThread)]
pub fn run_pool_thread(start: u32) {
    // SAFETY: `start` is what `start_thread_pool` made with `Box::into_raw` and handed to this
    // worker alone (www/pool-worker.js passes it on once).
    let thread = unsafe { Box::from_raw(start as usize as *mut rayon::ThreadBuilder) };
    thread.run();
}

/// How many threads the engine's CPU work runs on (1 until a pool is started).
#[wasm_bindgen(js_name = cpuThreads)]
pub fn cpu_threads() -> usize {
    crate::runtime::cpu_threads()
}
