//! `Engine.classify`: ImageNet's top classes, and on request where each lies in the picture,
//! the caller's labels ranked and a taught class set's predictions, from one pass of the
//! network (plus one over the whole-picture views for `where`) and one read-back each.

use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::teach::no_set;
use super::{Engine, Picture, js_error, read_failed, to_js};
use crate::error::GlimpseError;
use crate::runtime::rows;
use crate::text::{LabelScore, tidy_labels};
use crate::vision::cam::{Tiling, Where, view_maps};
use crate::vision::rollup::{Group, roll_up};
use crate::vision::teach::TaughtPrediction;
use crate::vision::{Prediction, top_k};

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
    /// Where each top class lies.
    #[serde(default, rename = "where")]
    where_: WhereOption,
}

/// `where: true | "whole"`: maps from views covering the whole picture (one more pass per
/// view); `"crop"`: the map of the center crop classification saw, from its own pass (what
/// live video can afford); `false`: none.
#[derive(Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(untagged)]
enum WhereOption {
    #[default]
    None,
    Flag(bool),
    Named(WhereMode),
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum WhereMode {
    Whole,
    Crop,
}

impl WhereOption {
    fn mode(self) -> Option<WhereMode> {
        match self {
            WhereOption::None | WhereOption::Flag(false) => None,
            WhereOption::Flag(true) => Some(WhereMode::Whole),
            WhereOption::Named(mode) => Some(mode),
        }
    }
}

/// Labels as given: one comma-separated string or a list (tidied by `tidy_labels`).
#[derive(Deserialize)]
#[serde(untagged)]
enum LabelList {
    Text(String),
    Items(Vec<String>),
}

#[cfg_attr(not(feature = "text"), allow(dead_code))]
impl LabelList {
    fn tidy(&self) -> Result<Vec<String>, GlimpseError> {
        match self {
            LabelList::Text(text) => tidy_labels([text.as_str()]),
            LabelList::Items(items) => tidy_labels(items.iter().map(String::as_str)),
        }
    }
}

/// A top class, and on request where it lies (`map` becomes a `Float32Array` in engine-host.js).
#[derive(Serialize)]
struct Ranked {
    #[serde(flatten)]
    prediction: Prediction,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    place: Option<Place>,
}

#[derive(Serialize)]
struct Place {
    #[serde(rename = "box")]
    bbox: [u32; 4],
    cover: f32,
    cell: &'static str,
    width: u32,
    height: u32,
    area: [u32; 4],
    map: Vec<f32>,
}

impl Place {
    fn of(found: Where) -> Self {
        Place {
            bbox: found.bbox,
            cover: found.cover,
            cell: found.cell,
            width: found.width,
            height: found.height,
            area: found.area,
            map: found.map,
        }
    }
}

#[derive(Serialize)]
struct ClassifyResult {
    top: Vec<Ranked>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<LabelScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    taught: Option<Vec<TaughtPrediction>>,
}

#[wasm_bindgen]
impl Engine {
    /// `{ top: [{ index, label, prob, where? }], groups?: [{ noun, synset, prob, members }],
    /// labels?: [{ label, score, kind }], taught?: [{ label, prob }] }` for
    /// `options = { topK, labels?: string[], set?: number, where?: boolean | "whole" | "crop" }`. A label's
    /// `kind` is `"probability"` (a percentage) or `"similarity"` (an order, no percentage);
    /// `groups` are top-5 rivals sharing a close noun; `where` is `{ box: [x0, y0, x1, y1],
    /// cover, cell, map: Float32Array, width, height, area: [x0, y0, x1, y1] }`.
    pub fn classify(&self, picture: &Picture, options: JsValue) -> Promise {
        let options: Result<ClassifyOptions, _> = serde_wasm_bindgen::from_value(options);
        let input = picture.input();
        let mode = options.as_ref().ok().and_then(|o| o.where_.mode());
        let image = (mode == Some(WhereMode::Whole)).then(|| picture.image().clone());
        let (width, height) = picture.dimensions();
        let classifier = self.classifier.clone();
        #[cfg(feature = "text")]
        let ranker = self.text.ranker.clone();
        let sets = self.sets.clone();
        future_to_promise(async move {
            let options = options.map_err(|e| {
                js_error(GlimpseError::InvalidArgument(format!(
                    "classify options: {e}"
                )))
            })?;
            #[cfg(feature = "text")]
            let no_ranker = ranker.borrow().is_none();
            // The first module a page loads has no label model (the package moves to the
            // whole module before it asks for labels).
            #[cfg(not(feature = "text"))]
            let no_ranker = true;
            if options.labels.is_some() && no_ranker {
                return Err(js_error(GlimpseError::ModelLoad(
                    "the label model is not loaded".into(),
                )));
            }
            let feature_map = classifier.feature_map(classifier.batch(&[input]));
            let (features, probs) = classifier.read_out(feature_map.clone());
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
            #[cfg(not(feature = "text"))]
            let labels: Option<Vec<LabelScore>> = None;
            #[cfg(feature = "text")]
            let labels = match &options.labels {
                None => None,
                Some(labels) => {
                    let labels = labels.tidy().map_err(js_error)?;
                    let mut ranker = ranker.borrow_mut();
                    let ranker = ranker.as_mut().expect("checked above");
                    Some(ranker.rank(&probs, &labels).map_err(js_error)?)
                }
            };
            let top = top_k(&probs, options.top_k.clamp(1, 1000));
            let classes: Vec<usize> = top.iter().map(|p| p.index).collect();
            let (tiling, maps) = match (mode, &image) {
                (Some(WhereMode::Whole), Some(image)) => {
                    let (tiling, maps) = view_maps(&classifier, image, &classes);
                    (Some(tiling), Some(maps))
                }
                (Some(WhereMode::Crop), _) => (
                    Some(Tiling::center_crop(width, height)),
                    Some(classifier.maps_of(feature_map, &classes)),
                ),
                _ => (None, None),
            };
            let found = match (tiling, maps) {
                (Some(tiling), Some(maps)) => {
                    let maps = maps.into_data_async().await.map_err(read_failed)?;
                    let maps = rows(maps).map_err(js_error)?.concat();
                    Some(tiling.locate(&maps, &classes))
                }
                _ => None,
            };
            let mut places = found.map(|found| found.into_iter().map(Place::of));
            let top = top
                .into_iter()
                .map(|prediction| Ranked {
                    prediction,
                    place: places.as_mut().and_then(Iterator::next),
                })
                .collect();
            to_js(&ClassifyResult {
                top,
                groups: roll_up(&probs),
                labels,
                taught,
            })
        })
    }
}
