//! The caption model's tokenizer, built from the GGUF metadata, against the reference
//! tokenizations in `tests/golden/smollm/tokenizer.json` (llama.cpp's `smollm` splitting
//! where it differs from transformers').

mod common;

use std::path::Path;

use common::models;
use glimpse::caption::gguf::Gguf;
use glimpse::caption::tokenizer::{TextStream, from_gguf, token_bytes};
use glimpse::provision::CAPTION_MODEL_NAME;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    ids_llamacpp_smollm_pretokenizer: Option<Vec<u32>>,
}

#[test]
fn smollm2_tokenizes_like_the_reference_and_round_trips() {
    let dir = models();
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None).unwrap();
    let gguf = Gguf::parse(&bytes).unwrap();
    assert_eq!(gguf.architecture(), Some("llama"));
    let tokenizer = from_gguf(&gguf).unwrap();

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smollm/tokenizer.json");
    let golden: Golden = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(golden.cases.len() >= 12);
    for case in &golden.cases {
        let expected = case
            .ids_llamacpp_smollm_pretokenizer
            .as_ref()
            .unwrap_or(&case.ids);
        let ids = tokenizer
            .encode(case.text.as_str(), false)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(&ids, expected, "{:?}", case.text);

        // Streaming the tokens one by one gives back the text, never half a character.
        let mut stream = TextStream::default();
        let text: String = ids
            .iter()
            .map(|&id| stream.push(&token_bytes(&tokenizer.id_to_token(id).unwrap())))
            .collect();
        let special = ["<|im_start|>", "<|im_end|>"]
            .iter()
            .any(|s| case.text.contains(s));
        if !special {
            assert_eq!(text, case.text);
        }
    }
}
