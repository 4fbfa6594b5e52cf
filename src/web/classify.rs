//! `Engine.classify`: ImageNet's top classes, and on request the caller's labels ranked and
//! a taught class set's predictions, from one pass of the network and one read-back each.

use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::teach::no_set;
use super::{Engine, Picture, js_error, read_failed, to_js};
use crate::error::GlimpseError;
use crate::runtime::rows;
use crate::text::{LabelScore, tidy_labels};
use crate::vision::preprocess::prepare;
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
    #[serde(skip_serializing_if = "Vec::is_empty")]
    groups: Vec<Group>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<Vec<LabelScore>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    taught: Option<Vec<TaughtPrediction>>,
}

#[wasm_bindgen]
impl Engine {
    /// `{ top: [{ index, label, prob }], groups?: [{ noun, synset, prob, members }],
    /// labels?: [{ label, score, kind }], taught?: [{ label, prob }] }` for
    /// `options = { topK, labels?: string[], set?: number }`. A label's `kind` is
    /// `"probability"` (a percentage) or `"similarity"` (an order, no percentage); `groups`
    /// are top-5 rivals sharing a close noun.
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
                groups: roll_up(&probs),
                labels,
                taught,
            })
        })
    }
}
