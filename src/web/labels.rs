//! `Engine.loadLabelModel`: the text model that ranks the caller's own labels.

use wasm_bindgen::prelude::*;

use super::{Engine, js_error};
use crate::text::LabelRanker;

#[wasm_bindgen]
impl Engine {
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
        let ranker = LabelRanker::load(weights, &tokenizer_json, &class_table).map_err(js_error)?;
        *self.text.ranker.borrow_mut() = Some(ranker);
        Ok(())
    }
}
