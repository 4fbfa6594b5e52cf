//! Where the CPU engine's time goes, timed with the page's `performance.now()`:
//! `Engine.profileLayers`, per frame by kind of layer (the library's replay,
//! [`crate::vision::profile`]), and `Engine.profileDecode`, per decoded caption token by
//! matrix role ([`crate::caption::profile`]).

use std::collections::BTreeMap;

use serde::Serialize;
use wasm_bindgen::prelude::*;

use super::{Engine, js_error, to_js};
#[cfg(feature = "text")]
use crate::caption::profile::{PROMPT_TOKENS, profile_decode, synthetic_prompt};
use crate::error::GlimpseError;
use crate::runtime::{BackendKind, cpu_threads};
use crate::vision::preprocess::{normalize, resize_and_crop_rgba};
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
    /// The frame's way to the network's input, step by step (ms): its center crop read from
    /// the RGBA bytes in place, and that crop normalized.
    frame: BTreeMap<String, Spread>,
    runs: usize,
    threads: usize,
}

#[wasm_bindgen]
impl Engine {
    /// `{ kinds: { [kind]: { median, min } }, total, forward, frame: { [step]: { median, min }
    /// }, runs, threads }` over `runs` passes of one 640×480 frame (the pattern `engine.time`
    /// classifies), on the CPU only.
    #[wasm_bindgen(js_name = profileLayers)]
    pub fn profile_layers(&self, runs: usize) -> Result<JsValue, JsValue> {
        if self.backend != BackendKind::Cpu {
            return Err(js_error(GlimpseError::Backend(
                "the per-layer profile is of the CPU engine; this one runs on WebGPU".into(),
            )));
        }
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
        let (profile, forward) = profile_kernels(&self.classifier, &input, runs, &performance_now);
        to_js(&LayerProfile {
            profile,
            forward,
            frame,
            runs,
            threads: cpu_threads(),
        })
    }
}

#[cfg(feature = "text")]
#[wasm_bindgen]
impl Engine {
    /// `{ products: { [role]: { median, min } }, rest, step, prompt, tokens }`: ms per decoded
    /// token after a synthetic prompt of [`PROMPT_TOKENS`] tokens, by matrix role (summed over
    /// the layers), on the CPU only, with the caption model loaded.
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
