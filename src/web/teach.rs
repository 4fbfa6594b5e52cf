//! Taught class sets: made, fed examples (features of three views of a picture), trained,
//! exported and imported; the page keeps them in IndexedDB.

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{Engine, Picture, js_error, read_failed, to_js};
use crate::error::GlimpseError;
use crate::runtime::rows;
use crate::vision::preprocess::augmented_views;
use crate::vision::teach::{ClassAccuracy, ClassSet};

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

pub(super) fn no_set(id: u32) -> JsValue {
    js_error(GlimpseError::InvalidArgument(format!(
        "there is no class set {id} (it was dropped or never made)"
    )))
}

#[wasm_bindgen]
impl Engine {
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
        let views = augmented_views(picture.image());
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
}
