//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz, nightly), kept in the library so
//! that `tests/fuzz_corpus.rs` replays every committed corpus file through the very same code
//! with a stable `cargo test`. Each function takes whatever bytes a person, a file or a
//! compromised server could hand the crate, and must return (an error is fine) without
//! panicking, hanging or allocating without bound. Where a parser accepts its input, the
//! function also checks what the rest of the crate relies on, so a parser that says yes to
//! something it cannot honour fails here rather than later in a caption or a page.
//!
//! Not part of the crate's API: the names and behaviour may change with the targets.

use std::sync::OnceLock;

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::DType;
use image::RgbImage;
use tokenizers::Tokenizer;

use crate::caption::blocks::dequantize;
use crate::caption::gguf::Gguf;
use crate::caption::llama::{self, KvCache, LlamaConfig, Storage};
use crate::caption::tokenizer::{self, TextStream, token_bytes};
use crate::provision::model_dir::{Manifest, ModelDir, TOKENIZER_FILE};
use crate::runtime::{cpu, load_burnpack};
use crate::text::sentence::load_tokenizer;
use crate::text::zero_shot::{MAX_LABEL_CHARS, MAX_LABELS, label_text};
use crate::text::{parse_labels, tidy_labels};
use crate::vision::cam::Tiling;
use crate::vision::preprocess::{self, CROP, CropPlan, from_rgba, region_around};
use crate::vision::resample::{Pixels, resize_window};
use crate::vision::teach::{ClassSet, FEATURES};
use crate::vision::wordnet::wordnet;

/// The GGUF container, its blocks and the LLaMA decoder built from it: the caption model as
/// the browser downloads it.
pub fn gguf(data: &[u8]) {
    let header = Gguf::parse_header(data);
    let Ok(gguf) = Gguf::parse(data) else {
        return;
    };
    assert_eq!(
        header.as_ref().ok(),
        Some(&gguf),
        "a file the full parse accepts reads the same from its header alone"
    );
    for tensor in &gguf.tensors {
        let range = gguf
            .data_range(tensor)
            .expect("parse checked every tensor's range");
        let _ = dequantize(
            tensor.ggml_type,
            &data[range.start as usize..range.end as usize],
        );
    }
    let Ok(config) = LlamaConfig::from_gguf(&gguf) else {
        return;
    };
    let Ok(model) = llama::load(&gguf, data, &cpu(), Storage::Quantized) else {
        return;
    };
    // A model that loads must run: the first caption token is no place to find out it cannot.
    let logits = model.next_logits(&[0], &mut KvCache::default());
    assert_eq!(logits.dims(), [1, config.vocab_size]);
}

/// The byte-level BPE tokenizer built from a GGUF file's metadata, on prompts with control
/// tokens, digits and emoji, and on the file's own last bytes as text.
pub fn gguf_tokenizer(data: &[u8]) {
    let Ok(gguf) = Gguf::parse_header(data) else {
        return;
    };
    let Ok(tokenizer) = tokenizer::from_gguf(&gguf) else {
        return;
    };
    let tail = String::from_utf8_lossy(&data[data.len().saturating_sub(64)..]).into_owned();
    let texts = [
        "<|im_start|>user\nA yurt, 1280 pixels wide 🏕️ — naïve café<|im_end|>\n",
        "",
        tail.as_str(),
    ];
    for text in texts {
        let Ok(encoding) = tokenizer.encode(text, false) else {
            continue;
        };
        let mut stream = TextStream::default();
        for &id in encoding.get_ids() {
            let token = tokenizer
                .id_to_token(id)
                .expect("every id the tokenizer gives has a token");
            stream.push(&token_bytes(&token));
        }
        let _ = tokenizer.decode(encoding.get_ids(), false);
    }
}

/// A small module of the layer kinds the crate's networks use (convolution, linear, norm,
/// embedding): burnpack files are fuzzed against it, because building EfficientNet-Lite0 or
/// MiniLM for every input would leave few executions per second, and the loader under test
/// is the same for any module.
#[derive(Module, Debug)]
pub struct Small {
    pub conv: Conv2d,
    pub linear: Linear,
    pub norm: LayerNorm,
    pub embedding: Embedding,
}

impl Small {
    pub fn new() -> Self {
        let device = cpu();
        Small {
            conv: Conv2dConfig::new([3, 4], [3, 3])
                .with_initializer(Initializer::Zeros)
                .init(&device),
            linear: LinearConfig::new(4, 2)
                .with_initializer(Initializer::Zeros)
                .init(&device),
            norm: LayerNormConfig::new(2).init(&device),
            embedding: EmbeddingConfig::new(5, 2)
                .with_initializer(Initializer::Zeros)
                .init(&device),
        }
    }
}

impl Default for Small {
    fn default() -> Self {
        Self::new()
    }
}

/// The burnpack weight loader (f32 or f16 on disk, loaded as f32).
pub fn burnpack(data: &[u8]) {
    let mut model = Small::new();
    if load_burnpack(&mut model, data.to_vec(), "the fuzzing module").is_ok() {
        // Loaded weights keep the module's shapes and the dtype every network computes in.
        assert_eq!(model.conv.weight.dims(), [4, 3, 3, 3]);
        assert_eq!(model.linear.weight.dims(), [4, 2]);
        assert_eq!(model.embedding.weight.dims(), [5, 2]);
        assert_eq!(model.linear.weight.val().dtype(), DType::F32);
    }
}

/// The models directory's `manifest.json`, which every loader trusts for file names.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let root = ModelDir::new("/models");
    for entry in &manifest.models {
        let path = root.root.join(&entry.file);
        assert!(
            path.parent() == Some(root.root.as_path()),
            "a manifest entry's file stays in the models directory: {:?}",
            entry.file
        );
    }
    let again = Manifest::parse(&serde_json::to_string(&manifest).expect("serializes"))
        .expect("a manifest written back reads again");
    assert_eq!(again, manifest);
}

/// Pictures from files are capped lower here than [`preprocess::MAX_PIXELS`]: a 100-megapixel
/// image honestly takes seconds to decode on the development machine, which libFuzzer's 1 s
/// timeout would report as a hang. The cap is checked by the same header-only path, so every
/// decoder still sees any header a file can have; the large limit itself is tested in
/// `tests/bad_input.rs`.
const FUZZ_MAX_PIXELS: u64 = 4_000_000;

/// Encoded images (JPEG, PNG, WebP, GIF, BMP), as a file or a paste hands them over.
pub fn image(data: &[u8]) {
    if let Ok(image) = preprocess::decode_limited(data, FUZZ_MAX_PIXELS) {
        let (width, height) = image.dimensions();
        assert!((width as u64 * height as u64) <= FUZZ_MAX_PIXELS);
        picture(&image, [0, 0, width, height]);
    }
}

/// Raw RGBA frames with their claimed size, as the browser edge builds pictures from a
/// canvas or a video frame (`Picture.fromRgba`): `[width u16][height u16][box 4 × u16]`, then
/// the pixels. The box is a region to look at again, as the caption's evidence does.
pub fn rgba(data: &[u8]) {
    let Some((head, pixels)) = data.split_at_checked(12) else {
        return;
    };
    let word = |i: usize| u16::from_le_bytes([head[2 * i], head[2 * i + 1]]) as u32;
    let Ok(image) = from_rgba(word(0), word(1), pixels) else {
        return;
    };
    picture(&image, [word(2), word(3), word(4), word(5)]);
}

/// The crop-only resize ([`crate::vision::resample`]) against the `image` crate's whole resize and crop, byte
/// for byte: `[source width, height, new width, height, window x, y, width, height, rgba]`
/// (one byte each, so every picture stays small), then the pixels, repeated to fill.
pub fn resample(data: &[u8]) {
    let Some((head, pixels)) = data.split_at_checked(9) else {
        return;
    };
    let at = |i: usize| head[i] as u32;
    let (sw, sh, nw, nh) = (at(0).max(1), at(1).max(1), at(2).max(1), at(3).max(1));
    let (wx, wy) = (at(4) % nw, at(5) % nh);
    let window = [wx, wy, at(6).clamp(1, nw - wx), at(7).clamp(1, nh - wy)];
    let channels = if head[8] & 1 == 1 { 4 } else { 3 };
    let len = (sw * sh) as usize * channels;
    let fill: Vec<u8> = if pixels.is_empty() {
        (0..len).map(|i| (i * 37) as u8).collect()
    } else {
        pixels.iter().copied().cycle().take(len).collect()
    };
    let rgb: Vec<u8> = fill
        .chunks_exact(channels)
        .flat_map(|px| [px[0], px[1], px[2]])
        .collect();
    let image = RgbImage::from_raw(sw, sh, rgb).expect("sized above");
    let source = if channels == 4 {
        Pixels::rgba(sw, sh, &fill)
    } else {
        Pixels::rgb(&image)
    };
    let got = resize_window(source, (nw, nh), window);
    let resized = image::imageops::resize(&image, nw, nh, image::imageops::FilterType::Triangle);
    let [x, y, w, h] = window;
    let want = image::imageops::crop_imm(&resized, x, y, w, h).to_image();
    assert!(
        got == want,
        "{sw}×{sh} → {nw}×{nh}, window {window:?}: not the image crate's pixels"
    );
}

/// Everything the crate works out from a picture's size before the network sees it: the
/// center crop's plan, the views that cover it whole, the region around a box. Resizing
/// itself (the `image` crate's, milliseconds even for a tiny picture) is left out so each
/// target runs thousands of inputs a second; `CropPlan` is tested against it.
fn picture(image: &RgbImage, bbox: [u32; 4]) {
    let (width, height) = image.dimensions();
    assert!(width >= 2 && height >= 2);
    let plan = CropPlan::new(width, height);
    let [x, y, tw, th] = plan.trim;
    assert!(
        tw >= 1 && th >= 1 && x + tw <= width && y + th <= height,
        "{plan:?}"
    );
    let (rw, rh) = plan.resized;
    assert!(
        plan.crop.0 + CROP <= rw && plan.crop.1 + CROP <= rh,
        "{plan:?}"
    );
    let region = region_around(image, bbox);
    assert!(region.width() >= 1 && region.width() <= width);
    assert!(region.height() >= 1 && region.height() <= height);
    for tiling in [
        Tiling::new(width, height),
        Tiling::center_crop(width, height),
    ] {
        assert!(!tiling.views.is_empty());
        for &view in &tiling.views {
            let [x0, y0, x1, y1] = tiling.view_box(view);
            assert!(
                x0 < x1 && x1 <= width && y0 < y1 && y1 <= height,
                "{tiling:?}"
            );
        }
    }
}

/// A class set exported from the page (or a file that pretends to be one).
pub fn class_set(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut set) = ClassSet::from_json(text) else {
        return;
    };
    let again = ClassSet::from_json(&set.to_json()).expect("an exported set imports again");
    assert_eq!(again, set, "export then import keeps the set");
    let probe: Vec<f32> = (0..FEATURES).map(|i| (i % 7) as f32 - 3.0).collect();
    let check_head = |head: &crate::vision::teach::Head| {
        let probs: Vec<f32> = head.predict(&probe).iter().map(|p| p.prob).collect();
        check_probabilities(&probs);
    };
    if let Some(head) = &set.head {
        check_head(head);
    }
    if let Ok(head) = set.train() {
        check_head(head);
    }
}

fn check_probabilities(probs: &[f32]) {
    assert!(
        probs.iter().all(|p| p.is_finite() && *p >= 0.0),
        "{probs:?}"
    );
    let total: f32 = probs.iter().sum();
    assert!(probs.is_empty() || (total - 1.0).abs() < 1e-3, "{probs:?}");
}

/// The MiniLM tokenizer, read once (it is 466 KB of JSON), from `GLIMPSE_MODELS` or the
/// crate's own `models/`. `None` when the models have not been fetched.
fn minilm_tokenizer() -> Option<&'static Tokenizer> {
    static TOKENIZER: OnceLock<Option<Tokenizer>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| {
            let dir = std::env::var_os("GLIMPSE_MODELS").map_or_else(
                || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
                std::path::PathBuf::from,
            );
            let json = std::fs::read(dir.join(TOKENIZER_FILE)).ok()?;
            Some(load_tokenizer(&json).expect("the fetched tokenizer.json loads"))
        })
        .as_ref()
}

/// Labels as a person types them (`--labels`, the page's field, `classify({ labels })`): the
/// list, one label per line too, the WordNet lookup and the text model's tokenizer.
pub fn labels(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Both splits mostly give the same labels; each distinct one is looked up once.
    let mut checked = std::collections::HashSet::new();
    for labels in [parse_labels(text), tidy_labels(text.lines())] {
        let Ok(labels) = labels else {
            continue;
        };
        assert!(!labels.is_empty() && labels.len() <= MAX_LABELS);
        let uniform = vec![1.0 / 1000.0; 1000];
        for label in &labels {
            if !checked.insert(label.clone()) {
                continue;
            }
            assert!(!label.is_empty() && !label.contains(',') && label.trim() == label);
            assert!(label.chars().count() <= MAX_LABEL_CHARS);
            if let Some(noun) = wordnet().find(label) {
                let p = noun.probability(&uniform);
                assert!((0.0..=1.0 + 1e-4).contains(&p), "{label:?}: {p}");
            }
            if let Some(tokenizer) = minilm_tokenizer() {
                let encoding = tokenizer
                    .encode(label_text(label), true)
                    .expect("any label tokenizes");
                assert!(encoding.get_ids().len() <= 256);
            }
        }
    }
}
