//! The browser edge: a small JS-friendly API over [`Classifier`]. Everything returns a
//! promise that settles, and every failure rejects with a JS `Error` whose `name` says which
//! kind it is (`ModelLoadError`, `UnsupportedImageError`, `BackendError`).

use std::rc::Rc;

use burn::tensor::Device;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::classifier::{BackendKind, Classifier, rows, top_k};
use crate::error::GlimpseError;
use crate::preprocess::{decode, from_rgba, prepare};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: GlimpseError) -> JsValue {
    let name = match &e {
        GlimpseError::UnsupportedImage(_) => "UnsupportedImageError",
        GlimpseError::ModelLoad(_) | GlimpseError::Fetch(_) | GlimpseError::Io { .. } => {
            "ModelLoadError"
        }
        GlimpseError::Backend(_) => "BackendError",
        GlimpseError::InvalidArgument(_) => "TypeError",
    };
    let error = js_sys::Error::new(&e.to_string());
    error.set_name(name);
    error.into()
}

/// A loaded classifier on WebGPU or the CPU.
#[wasm_bindgen]
pub struct Engine {
    classifier: Rc<Classifier>,
    backend: BackendKind,
    fallback_reason: Option<String>,
}

async fn webgpu_device() -> Result<Device, GlimpseError> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| GlimpseError::Backend(format!("WebGPU is not available: {e}")))
}

#[wasm_bindgen]
impl Engine {
    /// `backend`: `"webgpu"`, `"cpu"` or `"auto"` (WebGPU when an adapter is available,
    /// else the CPU). `weights`: an EfficientNet-Lite0 burnpack file (f32 or f16).
    pub async fn create(backend: String, weights: Vec<u8>) -> Result<Engine, JsValue> {
        let (device, kind, fallback_reason) = match backend.as_str() {
            "cpu" => (Device::flex(), BackendKind::Cpu, None),
            "webgpu" => (
                webgpu_device().await.map_err(js_error)?,
                BackendKind::Wgpu,
                None,
            ),
            "auto" => match webgpu_device().await {
                Ok(device) => (device, BackendKind::Wgpu, None),
                Err(e) => (Device::flex(), BackendKind::Cpu, Some(e.to_string())),
            },
            other => {
                return Err(js_error(GlimpseError::Backend(format!(
                    "unknown backend '{other}' (use 'webgpu', 'cpu' or 'auto')"
                ))));
            }
        };
        let classifier = Classifier::from_burnpack(weights, device).map_err(js_error)?;
        Ok(Engine {
            classifier: Rc::new(classifier),
            backend: kind,
            fallback_reason,
        })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.backend {
            BackendKind::Wgpu => "webgpu".into(),
            BackendKind::Cpu => "cpu".into(),
        }
    }

    /// Why `"auto"` chose the CPU, if it did.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// Top-k classes of an encoded image (JPEG, PNG, WebP, GIF, BMP):
    /// `[{ index, label, prob }]`, best first.
    #[wasm_bindgen(js_name = classifyEncoded)]
    pub fn classify_encoded(&self, bytes: Vec<u8>, top: usize) -> Promise {
        let classifier = self.classifier.clone();
        future_to_promise(async move {
            let input = decode(&bytes)
                .map(|image| prepare(&image))
                .map_err(js_error)?;
            ranked(&classifier, input, top).await
        })
    }

    /// Top-k classes of a raw RGBA frame (`ImageData.data`), without re-encoding it.
    #[wasm_bindgen(js_name = classifyRgba)]
    pub fn classify_rgba(&self, width: u32, height: u32, rgba: Vec<u8>, top: usize) -> Promise {
        let classifier = self.classifier.clone();
        future_to_promise(async move {
            let input = from_rgba(width, height, &rgba)
                .map(|image| prepare(&image))
                .map_err(js_error)?;
            ranked(&classifier, input, top).await
        })
    }
}

async fn ranked(classifier: &Classifier, input: Vec<f32>, top: usize) -> Result<JsValue, JsValue> {
    let probs = classifier.probabilities(classifier.batch(&[input]));
    let data = probs.into_data_async().await.map_err(|e| {
        js_error(GlimpseError::Backend(format!(
            "reading the result from the device failed: {e:?}"
        )))
    })?;
    let row = rows(data).map_err(js_error)?.remove(0);
    serde_wasm_bindgen::to_value(&top_k(&row, top.clamp(1, 1000)))
        .map_err(|e| JsValue::from_str(&e.to_string()))
}
