//! Captions: the caption model arrives in chunks (so the page never holds the file) and is
//! checked against its sha256 by the platform's WebCrypto, then each caption is written one
//! token per call, so classification runs between its tokens and a caption can be cancelled
//! at any point.

use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde::Deserialize;

use super::{Engine, Picture, js_error, read_failed, to_js};
use crate::caption::evidence::gather_async;
use crate::caption::{Caption, Captioner, Choice, Facts, Generation};
use crate::error::GlimpseError;
use crate::runtime::hex;
use crate::runtime::rows;
use crate::vision::Prediction;
use crate::vision::preprocess::prepare;
use crate::vision::rollup::Group;

/// The sha256 of `bytes` (hex) from the platform's WebCrypto (`crypto.subtle`: the browser's,
/// Node.js's), which computes it natively: hashed in wasm as the chunks arrived, it took more
/// than half of the caption model's load (560 of 1,000 ms in Node.js, 2026-12-07).
async fn web_sha256(bytes: &[u8]) -> Result<String, JsValue> {
    let crypto = js_sys::Reflect::get(&js_sys::global(), &"crypto".into())?;
    let subtle = if crypto.is_object() {
        js_sys::Reflect::get(&crypto, &"subtle".into())?
    } else {
        JsValue::UNDEFINED
    };
    if !subtle.is_object() {
        return Err(js_error(GlimpseError::ModelLoad(
            "this page cannot check the caption model's integrity: WebCrypto (crypto.subtle) is only there on https:// or localhost pages".into(),
        )));
    }
    let digest: js_sys::Function = js_sys::Reflect::get(&subtle, &"digest".into())?.dyn_into()?;
    let algorithm = JsValue::from_str("SHA-256");
    // WebCrypto copies what it hashes when called, so a view of the module's memory will do,
    // except where that memory is shared (the threaded module's), which it does not take.
    #[cfg(not(feature = "threads"))]
    // SAFETY: the view is read by the `digest` call right below, which copies it; nothing in
    // between allocates in the module's memory (which would detach the view).
    let data = unsafe { js_sys::Uint8Array::view(bytes) };
    #[cfg(feature = "threads")]
    let data = js_sys::Uint8Array::from(bytes);
    let hashed: Promise = digest.call2(&subtle, &algorithm, &data)?.dyn_into()?;
    let hash = wasm_bindgen_futures::JsFuture::from(hashed).await?;
    Ok(hex(&js_sys::Uint8Array::new(&hash).to_vec()))
}

/// What `captionStart` takes: a classification, or its `top` alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum CaptionRequest {
    Top(Vec<Prediction>),
    Classification {
        top: Vec<Prediction>,
        #[serde(default)]
        groups: Vec<Group>,
    },
}

/// What starting a caption needs of the engine, movable into a promise.
struct CaptionHandle {
    captioner: Option<Rc<Captioner>>,
    generations: Rc<RefCell<HashMap<u32, Generation>>>,
    next_generation: Rc<Cell<u32>>,
}

impl CaptionHandle {
    fn start(&self, facts: &Facts) -> Result<u32, JsValue> {
        let captioner = self.captioner.clone().ok_or_else(|| {
            js_error(GlimpseError::ModelLoad(
                "the caption model is not loaded".into(),
            ))
        })?;
        let generation = captioner.start(facts).map_err(js_error)?;
        let id = self.next_generation.get();
        self.next_generation.set(id + 1);
        self.generations.borrow_mut().insert(id, generation);
        Ok(id)
    }
}

/// One step of a caption: the final text it added (whole words), the token greedy decoding
/// chose with its logit (what the backends are compared on; absent when no token was
/// generated), and the caption, with its evidence, once finished.
#[derive(Serialize)]
struct CaptionStep {
    piece: Option<String>,
    token: Option<u32>,
    logit: Option<f32>,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<Caption>,
}

impl Engine {
    fn caption_handle(&self) -> CaptionHandle {
        CaptionHandle {
            captioner: self.text.captioner.borrow().clone(),
            generations: self.text.generations.clone(),
            next_generation: self.text.next_generation.clone(),
        }
    }

    fn start_generation(&self, facts: &Facts) -> Result<u32, JsValue> {
        self.caption_handle().start(facts)
    }
}

#[wasm_bindgen]
impl Engine {
    /// Loads the caption model from a LLaMA-family GGUF file (SmolLM2-135M-Instruct) onto the
    /// classifier's device, with the tokenizer its metadata holds.
    #[wasm_bindgen(js_name = loadCaptionModel)]
    pub fn load_caption_model(&self, gguf: Vec<u8>) -> Result<(), JsValue> {
        let captioner = Captioner::from_gguf(&gguf, self.classifier.device()).map_err(js_error)?;
        *self.text.captioner.borrow_mut() = Some(Rc::new(captioner));
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
        *self.text.upload.borrow_mut() = Some(buffer);
        Ok(())
    }

    #[wasm_bindgen(js_name = appendCaptionModel)]
    pub fn append_caption_model(&self, chunk: &[u8]) -> Result<(), JsValue> {
        let mut upload = self.text.upload.borrow_mut();
        let buffer = upload.as_mut().ok_or_else(|| {
            js_error(GlimpseError::InvalidArgument(
                "appendCaptionModel before beginCaptionModel".into(),
            ))
        })?;
        buffer.extend_from_slice(chunk);
        Ok(())
    }

    /// Checks the received file against `sha256` (hex), then loads it. Resolves when the
    /// model is ready.
    #[wasm_bindgen(js_name = finishCaptionModel)]
    pub fn finish_caption_model(&self, sha256: String) -> Promise {
        let upload = self.text.upload.borrow_mut().take();
        let (captioner, classifier) = (self.text.captioner.clone(), self.classifier.clone());
        future_to_promise(async move {
            let bytes = upload.ok_or_else(|| {
                js_error(GlimpseError::InvalidArgument(
                    "finishCaptionModel before beginCaptionModel".into(),
                ))
            })?;
            let actual = web_sha256(&bytes).await?;
            if !actual.eq_ignore_ascii_case(sha256.trim()) {
                return Err(js_error(GlimpseError::ModelLoad(format!(
                    "the caption model failed the integrity check and is corrupt: sha256 {actual} ({} bytes) where the manifest expects {sha256}",
                    bytes.len()
                ))));
            }
            let model = Captioner::from_gguf(&bytes, classifier.device()).map_err(js_error)?;
            *captioner.borrow_mut() = Some(Rc::new(model));
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Starts a caption for a classification: `{ top: [{ index, label, prob }], groups? }` (or
    /// just the `top` array), best first; returns its id for `captionStep`. The caption says
    /// only what the classification holds (one subject; see `captionStartFor` for a picture).
    #[wasm_bindgen(js_name = captionStart)]
    pub fn caption_start(&self, classification: JsValue) -> Result<u32, JsValue> {
        let request: CaptionRequest =
            serde_wasm_bindgen::from_value(classification).map_err(|e| {
                js_error(GlimpseError::InvalidArgument(format!(
                    "a caption needs the classes to describe ({{ top: [{{ index, label, prob }}] }}): {e}"
                )))
            })?;
        let (top, groups) = match request {
            CaptionRequest::Top(top) => (top, Vec::new()),
            CaptionRequest::Classification { top, groups } => (top, groups),
        };
        let facts = Facts::from_classification(&top, &groups).ok_or_else(|| {
            js_error(GlimpseError::InvalidArgument(
                "a caption needs at least one class to describe".into(),
            ))
        })?;
        self.start_generation(&facts)
    }

    /// Starts a caption for a picture: classifies it, then gathers its facts from the whole
    /// picture (a second object only where its own region confirms it). Resolves to the id
    /// for `captionStep`.
    #[wasm_bindgen(js_name = captionStartFor)]
    pub fn caption_start_for(&self, picture: &Picture) -> Promise {
        let image = picture.image().clone();
        let classifier = self.classifier.clone();
        let engine = self.caption_handle();
        future_to_promise(async move {
            let probs = classifier.probabilities(classifier.batch(&[prepare(&image)]));
            let probs = probs.into_data_async().await.map_err(read_failed)?;
            let probs = rows(probs).map_err(js_error)?.remove(0);
            let facts = gather_async(&classifier, &image, &probs)
                .await
                .map_err(js_error)?;
            engine.start(&facts).map(JsValue::from)
        })
    }

    /// Generates the next token of caption `id`: resolves to
    /// `{ piece, token, logit, done, caption? }`, where `piece` is the final text it adds
    /// (whole words; null when none), `token` and `logit` the chosen token id and its logit,
    /// and `caption` is `{ text, fallback, source, objects, certainty, tokens, promptTokens,
    /// backtracks }` once done.
    #[wasm_bindgen(js_name = captionStep)]
    pub fn caption_step(&self, id: u32) -> Promise {
        let captioner = self.text.captioner.borrow().clone();
        let generations = self.text.generations.clone();
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
            // A caption made by rule (the classifier unsure) is finished before any token.
            let (piece, choice) = if generation.is_finished() {
                (generation.flush(), None)
            } else {
                let next = captioner.predict(&mut generation);
                let next = next.into_data_async().await.map_err(read_failed)?;
                let choice = Choice::read(next).map_err(js_error)?;
                (
                    captioner.accept(&mut generation, choice.token),
                    Some(choice),
                )
            };
            let done = generation.is_finished();
            let caption = if done {
                Some(generation.into_caption())
            } else {
                generations.borrow_mut().insert(id, generation);
                None
            };
            let step = CaptionStep {
                piece,
                token: choice.map(|c| c.token),
                logit: choice.map(|c| c.logit),
                done,
                caption,
            };
            to_js(&step)
        })
    }

    /// Stops caption `id` and frees its cache.
    #[wasm_bindgen(js_name = captionCancel)]
    pub fn caption_cancel(&self, id: u32) {
        self.text.generations.borrow_mut().remove(&id);
    }
}
