//! `Engine.profileLayers`: where the CPU engine's time goes per frame, by kind of layer (the
//! library's replay, [`crate::vision::profile`], timed with the page's `performance.now()`).

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{Engine, js_error, to_js};
use crate::error::GlimpseError;
use crate::runtime::{BackendKind, cpu_threads};
use crate::vision::preprocess::{from_rgba, prepare};
use crate::vision::profile::{Profile, Spread, profile_kernels};

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, in a worker as on a page: `Instant` is not available in wasm32.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

#[derive(Serialize)]
struct LayerProfile {
    /// Per kind of layer (ms per frame, summed over its layers), and the sum of the kinds.
    #[serde(flatten)]
    profile: Profile,
    /// The forward pass without clocks.
    forward: Spread,
    runs: usize,
    threads: usize,
}

#[wasm_bindgen]
impl Engine {
    /// `{ kinds: { [kind]: { median, min } }, total, forward, runs, threads }` over `runs`
    /// passes of one 640×480 frame (the pattern `engine.time` classifies), on the CPU only.
    #[wasm_bindgen(js_name = profileLayers)]
    pub fn profile_layers(&self, runs: usize) -> Result<JsValue, JsValue> {
        if self.backend != BackendKind::Cpu {
            return Err(js_error(GlimpseError::Backend(
                "the per-layer profile is of the CPU engine; this one runs on WebGPU".into(),
            )));
        }
        let (width, height) = (640, 480);
        let pixels: Vec<u8> = (0..width * height * 4).map(|i| (i * 37) as u8).collect();
        let input = prepare(&from_rgba(width, height, &pixels).map_err(js_error)?);
        let (profile, forward) = profile_kernels(&self.classifier, &input, runs, &performance_now);
        to_js(&LayerProfile {
            profile,
            forward,
            runs,
            threads: cpu_threads(),
        })
    }
}
