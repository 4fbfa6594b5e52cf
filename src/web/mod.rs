//! The browser edge: a small JS-friendly API over the library, one file per feature
//! ([`classify`], [`labels`], [`teach`], [`caption`]), each an `impl Engine` block that only
//! converts between JS values and the library's types. Everything that can fail rejects (or
//! throws) a JS `Error` whose `name` is its kind (`ModelLoadError`, `UnsupportedImageError`,
//! `BackendError`, `InvalidArgumentError`) and whose message is written for a person.
//!
//! The label and caption parts are behind the `text` feature: built without it, this is the
//! module a page loads first (classification and teaching only, a smaller download), and the
//! package moves to the whole module when labels or captions are first asked for.

#[cfg(feature = "text")]
mod caption;
mod classify;
#[cfg(feature = "text")]
mod labels;
mod profile;
mod teach;
#[cfg(feature = "threads")]
mod threads;

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use image::RgbImage;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[cfg(feature = "text")]
use crate::caption::{Captioner, Generation};
use crate::error::GlimpseError;
use crate::runtime::{BackendKind, choose_web_device};
#[cfg(feature = "text")]
use crate::text::LabelRanker;
use crate::vision::Classifier;
use crate::vision::preprocess::{
    check_rgba, decode, from_rgba, normalize, prepare, resize_and_crop_rgba,
};
use crate::vision::teach::ClassSet;

unsafe extern "C" {
    /// The module's static constructors, which wasm-ld gathers into one function (burn's GPU
    /// compiler registers its dialects through `inventory`). A module that never calls it
    /// itself gets it called at the top of every export instead, and wasm-bindgen's glue calls
    /// small exports for every JS value that crosses into Rust: under Node 20 an
    /// `Engine.classify` of a camera frame spent about 5 ms of its 45 in them.
    fn __wasm_call_ctors();
}

#[wasm_bindgen(start)]
pub fn start() {
    // SAFETY: the start function runs once per instance, before any other export; nothing has
    // run that the constructors would set up.
    unsafe { __wasm_call_ctors() };
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
    // The kind travels once: as the name, not also as the message's prefix.
    let error = js_sys::Error::new(&e.detail());
    error.set_name(name);
    error.into()
}

/// A result as a plain JS object. Through JSON text: one string crosses into JS and one
/// `JSON.parse` builds the object, where serde-wasm-bindgen calls into JS for every field and
/// array element (measured in Chromium: 43 ms for a top-5 result, 200 ms with its maps).
fn to_js(value: &impl Serialize) -> Result<JsValue, JsValue> {
    let text = serde_json::to_string(value).map_err(|e| JsValue::from_str(&e.to_string()))?;
    js_sys::JSON::parse(&text)
}

fn read_failed(e: impl std::fmt::Debug) -> JsValue {
    js_error(GlimpseError::read_failed(e))
}

/// Panics inside the engine, as a bug would: with `panic = "abort"` the panic is a wasm trap
/// (`unreachable`) that leaves the instance unusable. Only the fault tests call it, to prove
/// that the package starts a new engine after a real trap.
#[wasm_bindgen(js_name = __panicForTests, skip_typescript)]
pub fn panic_for_tests() {
    panic!("the panic the fault tests ask for");
}

/// The `WebAssembly.Module` this instance was made from. The package hands it to the page's
/// next engines (a second load, a restart after a crash), which then neither download nor
/// compile the module again.
#[wasm_bindgen(js_name = compiledModule, skip_typescript)]
pub fn compiled_module() -> JsValue {
    wasm_bindgen::module()
}

/// A decoded picture, upright, ready to classify or to teach from.
#[wasm_bindgen]
pub struct Picture {
    /// A raw RGBA frame as it came (`width`, `height`, bytes): classification reads its
    /// center crop in place, so a camera frame is never copied whole.
    frame: Option<(u32, u32, Vec<u8>)>,
    /// The whole picture in RGB, made from `frame` only when something needs all of it
    /// (where the evidence lies, a caption's regions, a taught example's views).
    rgb: OnceCell<RgbImage>,
}

#[wasm_bindgen]
impl Picture {
    /// An encoded image file (JPEG, PNG, WebP, GIF, BMP).
    #[wasm_bindgen(js_name = fromEncoded)]
    pub fn from_encoded(bytes: Vec<u8>) -> Result<Picture, JsValue> {
        Ok(Picture {
            frame: None,
            rgb: OnceCell::from(decode(&bytes).map_err(js_error)?),
        })
    }

    /// A raw RGBA frame (`ImageData.data`).
    #[wasm_bindgen(js_name = fromRgba)]
    pub fn from_rgba(width: u32, height: u32, rgba: Vec<u8>) -> Result<Picture, JsValue> {
        check_rgba(width, height, &rgba).map_err(js_error)?;
        Ok(Picture {
            frame: Some((width, height, rgba)),
            rgb: OnceCell::new(),
        })
    }
}

impl Picture {
    /// The whole picture, upright, in RGB.
    fn image(&self) -> &RgbImage {
        self.rgb.get_or_init(|| {
            let (width, height, rgba) = self.frame.as_ref().expect("a picture has pixels");
            from_rgba(*width, *height, rgba).expect("checked when the frame came")
        })
    }

    /// The network's input: the center crop, normalized.
    fn input(&self) -> Vec<f32> {
        match (&self.frame, self.rgb.get()) {
            (Some((width, height, rgba)), None) => normalize(
                &resize_and_crop_rgba(*width, *height, rgba).expect("checked when the frame came"),
            ),
            _ => prepare(self.image()),
        }
    }

    fn dimensions(&self) -> (u32, u32) {
        match &self.frame {
            Some((width, height, _)) => (*width, *height),
            None => self.image().dimensions(),
        }
    }
}

/// A loaded classifier on WebGPU or the CPU, with the optional label model and taught sets.
#[wasm_bindgen]
pub struct Engine {
    classifier: Rc<Classifier>,
    backend: BackendKind,
    fallback_reason: Option<String>,
    sets: Rc<RefCell<HashMap<u32, ClassSet>>>,
    next_set: Cell<u32>,
    #[cfg(feature = "text")]
    text: TextModels,
}

/// The label and caption models an engine may be given.
#[cfg(feature = "text")]
#[derive(Default)]
struct TextModels {
    ranker: Rc<RefCell<Option<LabelRanker>>>,
    captioner: Rc<RefCell<Option<Rc<Captioner>>>>,
    /// A caption model arriving in chunks.
    upload: RefCell<Option<Vec<u8>>>,
    generations: Rc<RefCell<HashMap<u32, Generation>>>,
    next_generation: Rc<Cell<u32>>,
}

#[wasm_bindgen]
impl Engine {
    /// `backend`: `"webgpu"`, `"cpu"` or `"auto"` (WebGPU when an adapter is available,
    /// else the CPU). `weights`: an EfficientNet-Lite0 burnpack file (f32 or f16).
    pub async fn create(backend: String, weights: Vec<u8>) -> Result<Engine, JsValue> {
        let (device, kind, fallback_reason) =
            choose_web_device(&backend).await.map_err(js_error)?;
        let classifier = Classifier::from_burnpack(weights, device).map_err(js_error)?;
        Ok(Engine {
            classifier: Rc::new(classifier),
            backend: kind,
            fallback_reason,
            sets: Rc::new(RefCell::new(HashMap::new())),
            next_set: Cell::new(1),
            #[cfg(feature = "text")]
            text: TextModels {
                next_generation: Rc::new(Cell::new(1)),
                ..TextModels::default()
            },
        })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.web_name().into()
    }

    /// Why `"auto"` chose the CPU, if it did.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }
}
