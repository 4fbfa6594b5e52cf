//! Glimpse: private, on-device image classification, label ranking, taught classes and
//! captions, natively (CLI, CPU or wgpu) and in the browser (wasm, WebGPU or CPU).
//!
//! The crate's map:
//! - [`vision`]: EfficientNet-Lite0, decoding and cropping pictures, the [`Classifier`],
//!   ImageNet's class names, where in a picture a class lies ([`vision::cam`], drawn by
//!   [`vision::overlay`]), and classes a person teaches ([`vision::teach`]).
//! - [`text`]: the sentence encoder (all-MiniLM-L6-v2) and the [`LabelRanker`] that ranks the
//!   labels a person types.
//! - [`caption`]: the [`Captioner`], a 4-bit LLaMA-family decoder read from GGUF.
//! - [`runtime`]: where models run (the one place a device is chosen) and the burnpack
//!   loading the image and text models share.
//! - [`provision`] (native, and WASI for `npx @seed/glimpse models`): fetching the pinned packages, converting their weights, and the
//!   models directory with its manifest.
//! - `web` (wasm32 in the browser): the browser edge, one file per feature, thin over the rest.
//! - `fuzzing` (native, hidden): the fuzz targets' bodies (`fuzz/`), replayed by
//!   `tests/fuzz_corpus.rs`.
//! - [`error`]: one error type; its kind reaches JS once, as the error's name.
//!
//! Every model loads in one call: [`Classifier::from_burnpack`], [`LabelRanker::load`],
//! [`Captioner::from_gguf`].

pub mod caption;
pub mod error;
pub mod runtime;
pub mod text;
pub mod vision;

#[cfg(any(not(target_arch = "wasm32"), target_os = "wasi"))]
pub mod provision;

/// The fuzz targets' bodies (`fuzz/`), replayed by `tests/fuzz_corpus.rs`.
#[cfg(not(target_arch = "wasm32"))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod web;

pub use caption::{Caption, Captioner};
pub use error::{GlimpseError, Result};
pub use runtime::BackendKind;
pub use text::{LabelRanker, LabelScore};
pub use vision::{Classifier, Prediction, top_k};
