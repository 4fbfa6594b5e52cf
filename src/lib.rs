//! Glimpse: private, on-device image classification with EfficientNet-Lite0 in burn.
//!
//! The same code runs natively (CLI, CPU or wgpu) and in the browser (wasm, WebGPU or CPU):
//! [`preprocess`] turns files or camera frames into the network's input, [`efficientnet`]
//! is the network, [`classifier`] loads weights and ranks classes, [`labels`] names them.
//! Natively, [`models`] downloads and converts the pretrained weights.

pub mod classifier;
pub mod efficientnet;
pub mod error;
pub mod gguf;
pub mod labels;
pub mod llama;
pub mod preprocess;
pub mod quant;

pub mod caption;
pub mod gguf_tokenizer;
pub mod minilm;
pub mod sentence;
pub mod teach;
pub mod zero_shot;

#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
#[cfg(not(target_arch = "wasm32"))]
pub mod models;

pub use classifier::{BackendKind, Classifier, Prediction, top_k};
pub use error::{GlimpseError, Result};

#[cfg(target_arch = "wasm32")]
pub mod wasm;
