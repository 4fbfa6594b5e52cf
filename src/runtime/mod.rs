//! Where models run and how their weights arrive: the choice of device (made here and nowhere
//! else), the burnpack loading and result read-back that the image and text models share, and
//! the CPU's threads ([`for_each_chunk`] on rayon's pool; [`awake`] for short loops in a row).

use std::collections::BTreeMap;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnpackStore, FloatCastAdapter, ModuleSnapshot, ModuleStore};
use burn::tensor::{Bytes, DType, Device, TensorData};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{GlimpseError, Result};

pub mod awake;

/// Where the network runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (SIMD, and threads natively).
    Cpu,
    /// burn on wgpu: WebGPU in the browser, Vulkan/Metal/DX12 natively.
    Wgpu,
}

impl BackendKind {
    /// The name the CLI uses (`--backend cpu|wgpu`).
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "wgpu",
        }
    }

    /// The name the browser uses (`'cpu' | 'webgpu'`).
    pub fn web_name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Wgpu => "webgpu",
        }
    }
}

/// The CPU: burn's `flex` backend. Every CPU device in the crate comes from here.
pub fn cpu() -> Device {
    Device::flex()
}

/// Runs `task((i, piece))` on each `chunk`-long piece of `out` (the last may be shorter): on
/// rayon's pool where the build has threads (native; the browser's threaded module) and the
/// pool more than one, in turn elsewhere (the browser's single-threaded modules, the WASI
/// converter, `--threads 1`).
pub fn for_each_chunk<T, F>(out: &mut [T], chunk: usize, task: F)
where
    T: Send,
    F: Fn((usize, &mut [T])) + Sync + Send,
{
    // A pool of one thread would only add its bookkeeping to every piece.
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    if rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk).enumerate().for_each(task);
        return;
    }
    out.chunks_mut(chunk).enumerate().for_each(task);
}

/// How many threads the CPU kernels run on: rayon's pool where the build has one, else 1.
pub fn cpu_threads() -> usize {
    #[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
    return rayon::current_num_threads();
    #[cfg(not(any(not(target_arch = "wasm32"), feature = "threads")))]
    1
}

/// Asks the caches for the line at `p`, to be read soon: a hint (`p` may lie past the data,
/// nothing is read). A no-op where there is no such instruction (wasm).
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing and cannot fault, whatever the address; SSE, which it
    // needs, is part of every x86-64 CPU.
    unsafe {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::open_device;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::panic::{AssertUnwindSafe, catch_unwind};

    use burn::tensor::{Device, Tensor};

    use super::{BackendKind, cpu};
    use crate::error::{GlimpseError, Result};

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
            #[cfg(feature = "gpu")]
            BackendKind::Wgpu => Device::wgpu_options()
                .init()
                .map_err(|e| unavailable(&e.to_string()))?,
            #[cfg(not(feature = "gpu"))]
            BackendKind::Wgpu => return Err(unavailable("built without the `gpu` feature")),
            BackendKind::Cpu => cpu(),
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
}

/// In the browser: `"webgpu"`, `"cpu"` or `"auto"` (WebGPU when an adapter is available, else
/// the CPU). Returns the device, what it is, and why `"auto"` fell back to the CPU.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub async fn choose_web_device(backend: &str) -> Result<(Device, BackendKind, Option<String>)> {
    #[cfg(feature = "gpu")]
    async fn webgpu() -> Result<Device> {
        Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| GlimpseError::Backend(format!("WebGPU is not available: {e}")))
    }
    #[cfg(not(feature = "gpu"))]
    async fn webgpu() -> Result<Device> {
        Err(GlimpseError::Backend(
            "WebGPU is not in this build of the engine (the threaded CPU module)".into(),
        ))
    }
    Ok(match backend {
        "cpu" => (cpu(), BackendKind::Cpu, None),
        "webgpu" => (webgpu().await?, BackendKind::Wgpu, None),
        "auto" => match webgpu().await {
            Ok(device) => (device, BackendKind::Wgpu, None),
            Err(e) => (cpu(), BackendKind::Cpu, Some(e.to_string())),
        },
        other => {
            return Err(GlimpseError::Backend(format!(
                "unknown backend '{other}' (use 'webgpu', 'cpu' or 'auto')"
            )));
        }
    })
}

/// A burnpack file starts with this number (little-endian); anything else is refused with a
/// clear message before the parser sees it.
const BURNPACK_MAGIC: [u8; 4] = burn::store::burn_pack::MAGIC_NUMBER.to_le_bytes();

/// Loads burnpack `bytes` into `model` as f32, naming the model in errors: a file of another
/// format, or one whose tensors do not fit. Floats may be f32 or f16 on disk; int8 tensors
/// (with their scales, see [`INT8_SCALE_SUFFIX`]) are dequantized here, so every backend
/// computes on plain f32 tensors whatever the file held.
pub fn load_burnpack(model: &mut impl ModuleSnapshot, bytes: Vec<u8>, name: &str) -> Result<()> {
    check_burnpack_magic(&bytes)?;
    let unfit = |e: &dyn std::fmt::Display| {
        GlimpseError::ModelLoad(format!("the weights do not fit {name}: {e}"))
    };
    let mut store = BurnpackStore::from_bytes(Some(Bytes::from_bytes_vec(bytes)));
    let tensors = store.get_all_tensors().map_err(|e| unfit(&e))?;
    let tensors = dequantize_int8(tensors).map_err(|e| unfit(&e))?;
    // What `BurnpackStore::apply_to` checks, over the dequantized tensors.
    let result = model.apply(
        tensors,
        None,
        Some(Box::new(FloatCastAdapter::to(DType::F32))),
        false,
    );
    if !result.errors.is_empty() {
        return Err(unfit(&format!("{:?}", result.errors)));
    }
    if !result.missing.is_empty() {
        return Err(unfit(&format!("missing tensors {:?}", result.missing)));
    }
    Ok(())
}

/// An int8 tensor `W` (quantized weights) comes with the f32 tensor `W` + this suffix: its
/// scales, of the same rank, 1 along every axis but at most one (the output channels), where
/// it has `W`'s length. `w = q · scale`, with `q` in −127..=127.
pub const INT8_SCALE_SUFFIX: &str = ".int8_scale";

/// The tensors with each int8 one replaced by its f32 dequantization (and its scales left
/// out); a file without int8 tensors passes through as it is.
fn dequantize_int8(
    tensors: &BTreeMap<String, PackTensor>,
) -> std::result::Result<Vec<PackTensor>, String> {
    let mut out = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        if let Some(weight) = name.strip_suffix(INT8_SCALE_SUFFIX) {
            if tensors.get(weight).is_none_or(|w| w.dtype != DType::I8) {
                return Err(format!("`{name}` scales no int8 tensor"));
            }
            continue;
        }
        if tensor.dtype != DType::I8 {
            out.push(tensor.clone());
            continue;
        }
        let scale_name = format!("{name}{INT8_SCALE_SUFFIX}");
        let scale = tensors
            .get(&scale_name)
            .ok_or_else(|| format!("the int8 tensor `{name}` has no `{scale_name}`"))?;
        out.push(dequantize(tensor, scale).map_err(|e| format!("`{name}`: {e}"))?);
    }
    Ok(out)
}

fn dequantize(tensor: &PackTensor, scale: &PackTensor) -> std::result::Result<PackTensor, String> {
    let dims: &[usize] = &tensor.shape;
    let scale_dims: &[usize] = &scale.shape;
    if scale.dtype != DType::F32 {
        return Err(format!("scales in {:?}, expected f32", scale.dtype));
    }
    let channel_axes: Vec<usize> = (0..scale_dims.len())
        .filter(|&a| scale_dims[a] != 1)
        .collect();
    if scale_dims.len() != dims.len()
        || channel_axes.len() > 1
        || channel_axes.iter().any(|&a| scale_dims[a] != dims[a])
    {
        return Err(format!(
            "scales of shape {scale_dims:?} do not fit a tensor of shape {dims:?}"
        ));
    }
    let quantized = tensor.to_bytes().map_err(|e| e.to_string())?;
    let scales: Vec<f32> = scale
        .to_bytes()
        .map_err(|e| e.to_string())?
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let count: usize = dims.iter().product();
    if quantized.len() != count || scales.len() != scale_dims.iter().product::<usize>() {
        return Err("its data is not as long as its shape says".into());
    }
    // The elements run as [outer][channels][stride], stride being the product of the
    // dimensions after the channel axis.
    let (stride, channels) = channel_axes
        .first()
        .map_or((count, 1), |&a| (dims[a + 1..].iter().product(), dims[a]));
    let mut values = Vec::with_capacity(count);
    for block in quantized.chunks((stride * channels).max(1)) {
        for (run, scale) in block.chunks(stride.max(1)).zip(&scales) {
            values.extend(run.iter().map(|&q| f32::from(q as i8) * scale));
        }
    }
    Ok(PackTensor::new(
        tensor.name.clone(),
        DType::F32,
        tensor.shape.clone(),
        tensor.param_id,
        Bytes::from_elems(values),
    ))
}

fn check_burnpack_magic(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 16 {
        return Err(GlimpseError::ModelLoad(format!(
            "the weights file is too short ({} bytes) to be a burnpack model",
            bytes.len()
        )));
    }
    if !bytes.starts_with(&BURNPACK_MAGIC) {
        return Err(GlimpseError::ModelLoad(
            "the file is not in burnpack format (run `glimpse models fetch` to convert the checkpoint)"
                .into(),
        ));
    }
    Ok(())
}

/// One row of values per input.
pub type Rows = Vec<Vec<f32>>;

/// Splits a `[N, C]` tensor's data into N rows.
pub fn rows(data: TensorData) -> Result<Vec<Vec<f32>>> {
    let width = *data.shape().last().unwrap_or(&1);
    let values = data
        .try_into_vec::<f32>()
        .map_err(|e| GlimpseError::Backend(format!("unexpected output from the network: {e:?}")))?;
    Ok(values.chunks(width.max(1)).map(<[f32]>::to_vec).collect())
}

/// Bytes as lowercase hex, as the manifest and the pins write a sha256.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sha256 of `bytes`, in [`hex`]: what every model file is checked against.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
