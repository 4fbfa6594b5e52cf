//! Text to sentence embeddings: the checkpoint's WordPiece tokenizer (`tokenizer.json`, run
//! by the `tokenizers` crate) feeding [`MiniLm`].

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::{Tokenizer, TruncationParams};

use super::minilm::{MiniLm, MiniLmConfig};
use crate::error::{GlimpseError, Result};
use crate::runtime::{load_burnpack, rows};

/// Texts per forward pass.
const BATCH: usize = 32;
/// Longer texts are truncated (as sentence-transformers does for this model).
const MAX_TOKENS: usize = 256;

pub struct SentenceEmbedder {
    model: MiniLm,
    tokenizer: Tokenizer,
    device: Device,
}

impl SentenceEmbedder {
    /// `weights`: all-MiniLM-L6-v2 in burnpack format; `tokenizer_json`: its `tokenizer.json`.
    pub fn from_burnpack(weights: Vec<u8>, tokenizer_json: &[u8], device: Device) -> Result<Self> {
        let mut model = MiniLmConfig::all_minilm_l6_v2().init(&device);
        load_burnpack(&mut model, weights, "all-MiniLM-L6-v2")?;
        Ok(Self {
            model,
            tokenizer: load_tokenizer(tokenizer_json)?,
            device,
        })
    }

    pub fn from_model(model: MiniLm, tokenizer_json: &[u8], device: Device) -> Result<Self> {
        Ok(Self {
            model,
            tokenizer: load_tokenizer(tokenizer_json)?,
            device,
        })
    }

    /// Token ids with `[CLS]` and `[SEP]`, truncated to 256 tokens.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| GlimpseError::ModelLoad(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// One unit-length 384-d embedding per text.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(BATCH) {
            let ids: Vec<Vec<u32>> = chunk
                .iter()
                .map(|t| self.tokenize(t))
                .collect::<Result<_>>()?;
            let len = ids.iter().map(Vec::len).max().unwrap_or(0);
            let mut flat_ids = Vec::with_capacity(chunk.len() * len);
            let mut mask = Vec::with_capacity(chunk.len() * len);
            for row in &ids {
                flat_ids.extend(
                    row.iter()
                        .map(|&id| id as i64)
                        .chain(std::iter::repeat_n(0, len - row.len())),
                );
                mask.extend((0..len).map(|i| if i < row.len() { 1.0f32 } else { 0.0 }));
            }
            let shape = [chunk.len(), len];
            let ids = Tensor::<2, Int>::from_data(TensorData::new(flat_ids, shape), &self.device);
            let mask = Tensor::<2>::from_data(TensorData::new(mask, shape), &self.device);
            out.extend(rows(self.model.forward(ids, mask).into_data())?);
        }
        Ok(out)
    }
}

pub(crate) fn load_tokenizer(json: &[u8]) -> Result<Tokenizer> {
    let mut tokenizer = Tokenizer::from_bytes(json)
        .map_err(|e| GlimpseError::ModelLoad(format!("the tokenizer file is not valid: {e}")))?;
    // The file pads every input to 128 tokens and truncates there; padding is masked here
    // instead, and sentence-transformers truncates at 256.
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| GlimpseError::ModelLoad(format!("the tokenizer refused its settings: {e}")))?;
    Ok(tokenizer)
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    dot / (norm(a) * norm(b))
}
