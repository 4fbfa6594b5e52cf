//! The browser edge: a small JS-friendly API over the classifier, the label ranker and the
//! taught class sets. Everything that can fail rejects (or throws) a JS `Error` whose `name`
//! says which kind it is (`ModelLoadError`, `UnsupportedImageError`, `BackendError`,
//! `InvalidArgumentError`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use burn::tensor::Device;
use image::RgbImage;
use js_sys::Promise;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::caption::{Caption, Captioner, Choice, Generation, prompt_classes};
use crate::classifier::{BackendKind, Classifier, Prediction, rows, top_k};
use crate::error::GlimpseError;
use crate::gguf::Gguf;
use crate::gguf_tokenizer::from_gguf;
use crate::labels::imagenet;
use crate::preprocess::{augmented_views, decode, from_rgba, prepare};
use crate::sentence::SentenceEmbedder;
use crate::teach::{ClassAccuracy, ClassSet, TaughtPrediction};
use crate::zero_shot::{ClassEmbeddings, LabelRanker, LabelScore, tidy_labels};

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(e: GlimpseError) -> JsValue {
    let name = match &e {
        GlimpseError::UnsupportedImage(_) => "UnsupportedImageError",
        GlimpseError::ModelLoad(_) | GlimpseError::Fetch(_) | GlimpseError::Io { .. } => {
            "ModelLoadError"
        }
        GlimpseError::Backend(_) => "BackendError",
        GlimpseError::InvalidArgument(_) => "InvalidArgumentError",
    };
    let error = js_sys::Error::new(&e.detail());
    error.set_name(name);
    error.into()
}

fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsValue::from_str(&e.to_string()))
}

fn read_failed(e: impl std::fmt::Debug) -> JsValue {
    js_error(GlimpseError::Backend(format!(
        "reading the result from the device failed: {e:?}"
    )))
}

/// A decoded picture, upright, ready to classify or to teach from.
#[wasm_bindgen]
pub struct Picture {
    image: RgbImage,
}

#[wasm_bindgen]
impl Picture {
    /// An encoded image file (JPEG, PNG, WebP, GIF, BMP).
    #[wasm_bindgen(js_name = fromEncoded)]
    pub fn from_encoded(bytes: Vec<u8>) -> Result<Picture, JsValue> {
        Ok(Picture {
            image: decode(&bytes).map_err(js_error)?,
        })
    }

    /// A raw RGBA frame (`ImageData.data`).
    #[wasm_bindgen(js_name = fromRgba)]
    pub fn from_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Result<Picture, JsValue> {
        Ok(Picture {
            image: from_rgba(width, height, &rgba).map_err(js_error)?,
        })
    }
}

/// What `classify` may be asked for besides the ImageNet top-k.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClassifyOptions {
    top_k: usize,
    #[serde(default)]
    labels: Option<LabelList>,
    /// A taught class set whose head should rank the picture too.
    #[serde(default)]
    set: Option<u32>,
}

/// Labels as given: one comma-separated string or a list (tidied by `tidy_labels`).
#[derive(Deserialize)]
#[serde(untagged)]
enum LabelList {
    Text(String),
    Items(Vec<String>),
}

impl LabelList {
    fn tidy(&self) -> Result<Vec<String>, GlimpseError> {
        match self {
            LabelList::Text(text) => tidy_labels([text.as_str()]),
            LabelList::Items(items) => tidy_labels(items.iter().map(String::as_str)),
        }
    }
}

#[derive(Serialize)]
struct ClassifyResult {
    top: Vec<Prediction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<LabelScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    taught: Option<Vec<TaughtPrediction>>,
}

#[derive(Serialize)]
struct ClassSummary {
    name: String,
    examples: usize,
}

/// What the page shows of a class set.
#[derive(Serialize)]
struct SetSummary {
    classes: Vec<ClassSummary>,
    trained: bool,
    accuracy: Vec<ClassAccuracy>,
}

impl SetSummary {
    fn of(set: &ClassSet) -> Self {
        Self {
            classes: set
                .classes
                .iter()
                .map(|c| ClassSummary {
                    name: c.name.clone(),
                    examples: c.examples.len(),
                })
                .collect(),
            trained: set.head.is_some(),
            accuracy: set.accuracy.clone(),
        }
    }
}

/// A loaded classifier on WebGPU or the CPU, with the optional label model and taught sets.
#[wasm_bindgen]
pub struct Engine {
    classifier: Rc<Classifier>,
    backend: BackendKind,
    fallback_reason: Option<String>,
    ranker: Rc<RefCell<Option<LabelRanker>>>,
    sets: Rc<RefCell<HashMap<u32, ClassSet>>>,
    next_set: Cell<u32>,
    captioner: RefCell<Option<Rc<Captioner>>>,
    /// A caption model arriving in chunks, and the hash of what has arrived.
    upload: RefCell<Option<(Vec<u8>, Sha256)>>,
    generations: Rc<RefCell<HashMap<u32, Generation>>>,
    next_generation: Cell<u32>,
}

/// One step of a caption: the text it added, the token greedy decoding chose with its logit
/// (what the backends are compared on), and the caption once finished.
#[derive(Serialize)]
struct CaptionStep {
    piece: Option<String>,
    token: u32,
    logit: f32,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<CaptionResult>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CaptionResult {
    text: String,
    fallback: bool,
    tokens: usize,
    prompt_tokens: usize,
}

impl From<Caption> for CaptionResult {
    fn from(c: Caption) -> Self {
        Self {
            text: c.text,
            fallback: c.fallback,
            tokens: c.tokens,
            prompt_tokens: c.prompt_tokens,
        }
    }
}

async fn webgpu_device() -> Result<Device, GlimpseError> {
    Device::wgpu_options()
        .init_async()
        .await
        .map_err(|e| GlimpseError::Backend(format!("WebGPU is not available: {e}")))
}

fn no_set(id: u32) -> JsValue {
    js_error(GlimpseError::InvalidArgument(format!(
        "there is no class set {id} (it was dropped or never made)"
    )))
}

#[wasm_bindgen]
impl Engine {
    /// `backend`: `"webgpu"`, `"cpu"` or `"auto"` (WebGPU when an adapter is available,
    /// else the CPU). `weights`: an EfficientNet-Lite0 burnpack file (f32 or f16).
    pub async fn create(backend: String, weights: Vec<u8>) -> Result<Engine, JsValue> {
        let (device, kind, fallback_reason) = match backend.as_str() {
            "cpu" => (Device::flex(), BackendKind::Cpu, None),
            "webgpu" => (
                webgpu_device().await.map_err(js_error)?,
                BackendKind::Wgpu,
                None,
            ),
            "auto" => match webgpu_device().await {
                Ok(device) => (device, BackendKind::Wgpu, None),
                Err(e) => (Device::flex(), BackendKind::Cpu, Some(e.to_string())),
            },
            other => {
                return Err(js_error(GlimpseError::Backend(format!(
                    "unknown backend '{other}' (use 'webgpu', 'cpu' or 'auto')"
                ))));
            }
        };
        let classifier = Classifier::from_burnpack(weights, device).map_err(js_error)?;
        Ok(Engine {
            classifier: Rc::new(classifier),
            backend: kind,
            fallback_reason,
            ranker: Rc::new(RefCell::new(None)),
            sets: Rc::new(RefCell::new(HashMap::new())),
            next_set: Cell::new(1),
            captioner: RefCell::new(None),
            upload: RefCell::new(None),
            generations: Rc::new(RefCell::new(HashMap::new())),
            next_generation: Cell::new(1),
        })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.backend {
            BackendKind::Wgpu => "webgpu".into(),
            BackendKind::Cpu => "cpu".into(),
        }
    }

    /// Why `"auto"` chose the CPU, if it did.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// Loads the text model that ranks the caller's own labels: all-MiniLM-L6-v2 as burnpack,
    /// its `tokenizer.json`, and the ImageNet class embedding table (f16). It runs on the CPU:
    /// labels are embedded once and remembered.
    #[wasm_bindgen(js_name = loadLabelModel)]
    pub fn load_label_model(
        &self,
        weights: Vec<u8>,
        tokenizer_json: Vec<u8>,
        class_table: Vec<u8>,
    ) -> Result<(), JsValue> {
        let embedder = SentenceEmbedder::from_burnpack(weights, &tokenizer_json, Device::flex())
            .map_err(js_error)?;
        let classes =
            ClassEmbeddings::from_f16_table(&class_table, imagenet().len()).map_err(js_error)?;
        *self.ranker.borrow_mut() = Some(LabelRanker::new(embedder, classes));
        Ok(())
    }

    /// `{ top: [{ index, label, prob }], labels?: [{ label, score }], taught?: [{ label, prob }] }`
    /// for `options = { topK, labels?: string[], set?: number }`.
    pub fn classify(&self, picture: &Picture, options: JsValue) -> Promise {
        let options: Result<ClassifyOptions, _> = serde_wasm_bindgen::from_value(options);
        let input = prepare(&picture.image);
        let classifier = self.classifier.clone();
        let ranker = self.ranker.clone();
        let sets = self.sets.clone();
        future_to_promise(async move {
            let options = options.map_err(|e| {
                js_error(GlimpseError::InvalidArgument(format!(
                    "classify options: {e}"
                )))
            })?;
            if options.labels.is_some() && ranker.borrow().is_none() {
                return Err(js_error(GlimpseError::ModelLoad(
                    "the label model is not loaded".into(),
                )));
            }
            let (features, probs) =
                classifier.features_and_probabilities(classifier.batch(&[input]));
            let probs = probs.into_data_async().await.map_err(read_failed)?;
            let probs = rows(probs).map_err(js_error)?.remove(0);
            let taught = match options.set {
                None => None,
                Some(id) => {
                    let features = features.into_data_async().await.map_err(read_failed)?;
                    let features = rows(features).map_err(js_error)?.remove(0);
                    let sets = sets.borrow();
                    let set = sets.get(&id).ok_or_else(|| no_set(id))?;
                    set.head.as_ref().map(|head| head.predict(&features))
                }
            };
            let labels = match &options.labels {
                None => None,
                Some(labels) => {
                    let labels = labels.tidy().map_err(js_error)?;
                    let mut ranker = ranker.borrow_mut();
                    let ranker = ranker.as_mut().expect("checked above");
                    Some(ranker.rank(&probs, &labels).map_err(js_error)?)
                }
            };
            to_js(&ClassifyResult {
                top: top_k(&probs, options.top_k.clamp(1, 1000)),
                labels,
                taught,
            })
        })
    }

    /// A new, empty set of taught classes; returns its id.
    #[wasm_bindgen(js_name = newSet)]
    pub fn new_set(&self) -> u32 {
        let id = self.next_set.get();
        self.next_set.set(id + 1);
        self.sets.borrow_mut().insert(id, ClassSet::default());
        id
    }

    #[wasm_bindgen(js_name = dropSet)]
    pub fn drop_set(&self, set: u32) {
        self.sets.borrow_mut().remove(&set);
    }

    /// Adds `picture` as an example of class `name` (its plain, mirrored and closer views).
    /// Resolves to the set's summary; the set must be trained again to use it.
    #[wasm_bindgen(js_name = addExample)]
    pub fn add_example(&self, set: u32, name: String, picture: &Picture) -> Promise {
        let views = augmented_views(&picture.image);
        let classifier = self.classifier.clone();
        let sets = self.sets.clone();
        future_to_promise(async move {
            if !sets.borrow().contains_key(&set) {
                return Err(no_set(set));
            }
            let features = classifier.model().features(classifier.batch(&views));
            let features = features.into_data_async().await.map_err(read_failed)?;
            let views = rows(features).map_err(js_error)?;
            let mut sets = sets.borrow_mut();
            let class_set = sets.get_mut(&set).ok_or_else(|| no_set(set))?;
            class_set.add(&name, views).map_err(js_error)?;
            to_js(&SetSummary::of(class_set))
        })
    }

    #[wasm_bindgen(js_name = removeClass)]
    pub fn remove_class(&self, set: u32, name: String) -> Result<JsValue, JsValue> {
        let mut sets = self.sets.borrow_mut();
        let class_set = sets.get_mut(&set).ok_or_else(|| no_set(set))?;
        class_set.remove(&name);
        to_js(&SetSummary::of(class_set))
    }

    /// Trains the set's head; resolves to its summary with leave-one-out accuracy.
    pub fn train(&self, set: u32) -> Result<JsValue, JsValue> {
        let mut sets = self.sets.borrow_mut();
        let class_set = sets.get_mut(&set).ok_or_else(|| no_set(set))?;
        class_set.train().map_err(js_error)?;
        to_js(&SetSummary::of(class_set))
    }

    /// The set's summary.
    pub fn summary(&self, set: u32) -> Result<JsValue, JsValue> {
        let sets = self.sets.borrow();
        to_js(&SetSummary::of(sets.get(&set).ok_or_else(|| no_set(set))?))
    }

    /// The whole set (classes, examples' features, head) as one JSON document.
    #[wasm_bindgen(js_name = exportSet)]
    pub fn export_set(&self, set: u32) -> Result<String, JsValue> {
        let sets = self.sets.borrow();
        Ok(sets.get(&set).ok_or_else(|| no_set(set))?.to_json())
    }

    /// Replaces the set's contents with an exported document; resolves to its summary.
    #[wasm_bindgen(js_name = importSet)]
    pub fn import_set(&self, set: u32, json: String) -> Result<JsValue, JsValue> {
        let imported = ClassSet::from_json(&json).map_err(js_error)?;
        let mut sets = self.sets.borrow_mut();
        let class_set = sets.get_mut(&set).ok_or_else(|| no_set(set))?;
        *class_set = imported;
        to_js(&SetSummary::of(class_set))
    }

    /// Loads the caption model from a LLaMA-family GGUF file (SmolLM2-135M-Instruct) onto the
    /// classifier's device, with the tokenizer its metadata holds.
    #[wasm_bindgen(js_name = loadCaptionModel)]
    pub fn load_caption_model(&self, gguf: Vec<u8>) -> Result<(), JsValue> {
        let model_error =
            |e: crate::gguf::GgufError| js_error(GlimpseError::ModelLoad(e.to_string()));
        let parsed = Gguf::parse(&gguf).map_err(model_error)?;
        let tokenizer = from_gguf(&parsed).map_err(model_error)?;
        let device = self.classifier.device().clone();
        let model = crate::llama::load_quantized(&parsed, &gguf, &device).map_err(model_error)?;
        let captioner = Captioner::new(model, tokenizer).map_err(js_error)?;
        *self.captioner.borrow_mut() = Some(Rc::new(captioner));
        Ok(())
    }

    /// Starts receiving a caption model of `bytes` bytes in chunks (`appendCaptionModel`), so
    /// the page never holds the whole file; `finishCaptionModel` checks and loads it.
    #[wasm_bindgen(js_name = beginCaptionModel)]
    pub fn begin_caption_model(&self, bytes: usize) -> Result<(), JsValue> {
        let mut buffer = Vec::new();
        buffer.try_reserve_exact(bytes).map_err(|_| {
            js_error(GlimpseError::ModelLoad(format!(
                "not enough memory for the caption model ({bytes} bytes)"
            )))
        })?;
        *self.upload.borrow_mut() = Some((buffer, Sha256::new()));
        Ok(())
    }

    #[wasm_bindgen(js_name = appendCaptionModel)]
    pub fn append_caption_model(&self, chunk: &[u8]) -> Result<(), JsValue> {
        let mut upload = self.upload.borrow_mut();
        let (buffer, hasher) = upload.as_mut().ok_or_else(|| {
            js_error(GlimpseError::InvalidArgument(
                "appendCaptionModel before beginCaptionModel".into(),
            ))
        })?;
        buffer.extend_from_slice(chunk);
        hasher.update(chunk);
        Ok(())
    }

    /// Checks the received file against `sha256` (hex), then loads it.
    #[wasm_bindgen(js_name = finishCaptionModel)]
    pub fn finish_caption_model(&self, sha256: String) -> Result<(), JsValue> {
        let (bytes, hasher) = self.upload.borrow_mut().take().ok_or_else(|| {
            js_error(GlimpseError::InvalidArgument(
                "finishCaptionModel before beginCaptionModel".into(),
            ))
        })?;
        let actual: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if !actual.eq_ignore_ascii_case(sha256.trim()) {
            return Err(js_error(GlimpseError::ModelLoad(format!(
                "the caption model failed the integrity check and is corrupt: sha256 {actual} ({} bytes) where the manifest expects {sha256}",
                bytes.len()
            ))));
        }
        self.load_caption_model(bytes)
    }

    /// Starts a caption for a classification's `top` (`[{ index, label, prob }]`, best
    /// first); returns its id for `captionStep`.
    #[wasm_bindgen(js_name = captionStart)]
    pub fn caption_start(&self, top: JsValue) -> Result<u32, JsValue> {
        let captioner = self.captioner.borrow().clone().ok_or_else(|| {
            js_error(GlimpseError::ModelLoad(
                "the caption model is not loaded".into(),
            ))
        })?;
        let top: Vec<Prediction> = serde_wasm_bindgen::from_value(top).map_err(|e| {
            js_error(GlimpseError::InvalidArgument(format!(
                "a caption needs the classes to describe ([{{ index, label, prob }}]): {e}"
            )))
        })?;
        let generation = captioner.start(&prompt_classes(&top)).map_err(js_error)?;
        let id = self.next_generation.get();
        self.next_generation.set(id + 1);
        self.generations.borrow_mut().insert(id, generation);
        Ok(id)
    }

    /// Generates the next token of caption `id`: resolves to
    /// `{ piece, token, logit, done, caption? }`, where `piece` is the text it adds (null when
    /// none), `token` and `logit` the chosen token id and its logit, and `caption` is
    /// `{ text, fallback, tokens, promptTokens }` once done.
    #[wasm_bindgen(js_name = captionStep)]
    pub fn caption_step(&self, id: u32) -> Promise {
        let captioner = self.captioner.borrow().clone();
        let generations = self.generations.clone();
        future_to_promise(async move {
            let captioner = captioner.ok_or_else(|| {
                js_error(GlimpseError::ModelLoad(
                    "the caption model is not loaded".into(),
                ))
            })?;
            let mut generation = generations.borrow_mut().remove(&id).ok_or_else(|| {
                js_error(GlimpseError::InvalidArgument(format!(
                    "there is no caption {id} in progress (finished or cancelled)"
                )))
            })?;
            let next = captioner.predict(&mut generation);
            let next = next.into_data_async().await.map_err(read_failed)?;
            let choice = Choice::read(next).map_err(js_error)?;
            let piece = captioner.accept(&mut generation, choice.token);
            let step = if generation.is_finished() {
                CaptionStep {
                    piece,
                    token: choice.token,
                    logit: choice.logit,
                    done: true,
                    caption: Some(generation.into_caption().into()),
                }
            } else {
                generations.borrow_mut().insert(id, generation);
                CaptionStep {
                    piece,
                    token: choice.token,
                    logit: choice.logit,
                    done: false,
                    caption: None,
                }
            };
            to_js(&step)
        })
    }

    /// Stops caption `id` and frees its cache.
    #[wasm_bindgen(js_name = captionCancel)]
    pub fn caption_cancel(&self, id: u32) {
        self.generations.borrow_mut().remove(&id);
    }
}
