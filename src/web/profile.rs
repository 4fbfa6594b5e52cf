//! Where the engine's time goes, timed with the page's `performance.now()`:
//! `Engine.profileLayers`, per frame by kind of layer on the CPU or WebGPU (the library's
//! replays, [`crate::vision::profile`]), and `Engine.profileDecode`, per decoded caption token by
//! matrix role ([`crate::caption::profile`]).

use std::collections::BTreeMap;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{Engine, js_error, to_js};
#[cfg(feature = "text")]
use crate::caption::profile::{PROMPT_TOKENS, profile_decode, synthetic_prompt};
#[cfg(feature = "text")]
use crate::error::GlimpseError;
use crate::runtime::{BackendKind, cpu_threads};
use crate::vision::preprocess::{normalize, resize_and_crop_rgba};
use crate::vision::profile::{Profile, Spread, profile_gpu, profile_kernels};

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
    /// On WebGPU: per pass, the reads of the layers' outputs taken off the kinds, and how
    /// many layers a pass has.
    #[serde(skip_serializing_if = "Option::is_none")]
    readbacks: Option<Spread>,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<usize>,
    /// The frame's way to the network's input, step by step (ms): its center crop read from
    /// the RGBA bytes in place, and that crop normalized.
    frame: BTreeMap<String, Spread>,
    runs: usize,
    backend: &'static str,
    /// The CPU engine's threads; none on WebGPU.
    threads: Option<usize>,
}

#[wasm_bindgen]
impl Engine {
    /// `{ kinds: { [kind]: { median, min } }, total, forward, frame: { [step]: { median, min }
    /// }, runs, backend, threads }` over `runs` passes of one 640×480 frame (the pattern
    /// `engine.time` classifies). On WebGPU each layer is waited for by reading its output
    /// back, less a second read of it; the result also has `readbacks` (those reads per pass,
    /// taken off the kinds) and `layers` (how many a pass has).
    #[wasm_bindgen(js_name = profileLayers)]
    pub fn profile_layers(&self, runs: usize) -> Promise {
        let classifier = self.classifier.clone();
        let backend = self.backend;
        future_to_promise(async move {
            let (width, height) = (640, 480);
            let pixels: Vec<u8> = (0..width * height * 4).map(|i| (i * 37) as u8).collect();
            let mut crop_ms = Vec::new();
            let mut normalize_ms = Vec::new();
            let mut input = Vec::new();
            for _ in 0..runs.max(1) {
                let start = performance_now();
                let crop = resize_and_crop_rgba(width, height, &pixels).map_err(js_error)?;
                let cropped = performance_now();
                input = normalize(&crop);
                normalize_ms.push(performance_now() - cropped);
                crop_ms.push(cropped - start);
            }
            let frame = BTreeMap::from([
                (
                    "center crop of the RGBA frame".to_string(),
                    Spread::of(crop_ms),
                ),
                ("normalize".to_string(), Spread::of(normalize_ms)),
            ]);
            let (profile, forward, readbacks, layers, threads) = if backend == BackendKind::Cpu {
                let (profile, forward) =
                    profile_kernels(&classifier, &input, runs, &performance_now);
                (profile, forward, None, None, Some(cpu_threads()))
            } else {
                let gpu = profile_gpu(&classifier, &input, runs, &performance_now)
                    .await
                    .map_err(js_error)?;
                let (readbacks, layers) = (Some(gpu.readbacks), Some(gpu.layers));
                (gpu.profile, gpu.forward, readbacks, layers, None)
            };
            to_js(&LayerProfile {
                profile,
                forward,
                readbacks,
                layers,
                frame,
                runs,
                backend: backend.web_name(),
                threads,
            })
        })
    }
}

#[cfg(feature = "text")]
#[wasm_bindgen]
impl Engine {
    /// `{ products: { [role]: { median, min } }, rest, step, unclocked_step, prompt, tokens }`:
    /// ms per decoded token after a synthetic prompt of [`PROMPT_TOKENS`] tokens, by matrix
    /// role and for attention over the cache (each summed over the layers), and the mean step
    /// with no clock inside it; on the CPU only, with the caption model loaded.
    #[wasm_bindgen(js_name = profileDecode)]
    pub fn profile_decode(&self, tokens: usize) -> Result<JsValue, JsValue> {
        if self.backend != BackendKind::Cpu {
            return Err(js_error(GlimpseError::Backend(
                "the decode profile is of the CPU engine; this one runs on WebGPU".into(),
            )));
        }
        let captioner = self.text.captioner.borrow().clone().ok_or_else(|| {
            js_error(GlimpseError::ModelLoad(
                "the caption model is not loaded".into(),
            ))
        })?;
        let prompt = synthetic_prompt(PROMPT_TOKENS);
        to_js(&profile_decode(
            captioner.model(),
            &prompt,
            tokens,
            performance_now,
        ))
    }
}
