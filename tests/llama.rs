//! The caption model's decoder (weights kept quantized as in the GGUF) against the reference
//! (transformers' GGUF loader, cross-checked by a second implementation to 8.6e-5) on 5 chat
//! prompts: the top-20 logits at the last prompt position within 1e-2 relative, then the first
//! 16 greedy tokens identical, decoding one token at a time through the KV cache.

mod common;

use std::path::Path;

use burn::tensor::Device;
use common::models;
use glimpse::caption::llama::{KvCache, Llama, Storage};
use glimpse::provision::CAPTION_MODEL_NAME;
use serde::Deserialize;

const RELATIVE_TOLERANCE: f32 = 1e-2;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    user: String,
    prompt_ids: Vec<i64>,
    last_logits_top20: Vec<(usize, f32)>,
    greedy_ids: Vec<usize>,
}

fn logits(model: &Llama, ids: &[i64], cache: &mut KvCache) -> Vec<f32> {
    let tokens: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    let out = model.forward(&tokens, cache);
    let [_, len, vocab] = out.dims();
    out.narrow(1, len - 1, 1)
        .reshape([vocab])
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

fn argmax(values: &[f32]) -> usize {
    (0..values.len())
        .max_by(|&a, &b| values[a].total_cmp(&values[b]))
        .unwrap()
}

#[test]
fn smollm2_matches_the_reference_logits_and_greedy_tokens() {
    check(Device::flex(), Storage::Quantized);
}

/// The f32 reference path the quantized one replaced.
#[test]
#[ignore = "slow: the f32 reference path, for comparison"]
fn smollm2_f32_matches_the_reference_logits_and_greedy_tokens() {
    check(Device::flex(), Storage::F32);
}

/// Needs a GPU (or lavapipe, slowly): `cargo test --release --test llama -- --ignored wgpu`.
#[test]
#[ignore = "needs a wgpu adapter"]
fn smollm2_on_wgpu_matches_the_reference_logits_and_greedy_tokens() {
    let device = Device::wgpu_options().init().expect("a wgpu adapter");
    check(device, Storage::Quantized);
}

fn check(device: Device, storage: Storage) {
    let dir = models();
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None).unwrap();
    let model = Llama::from_gguf(&bytes, storage, &device).unwrap();
    let stats = model.weight_stats();
    eprintln!(
        "{storage:?}: {:.1} MB of weights, {:.2} bits per weight",
        stats.bytes as f64 / 1e6,
        stats.bits_per_weight()
    );

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/smollm/decode.json");
    let golden: Golden = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(golden.cases.len(), 5);
    for case in &golden.cases {
        let mut cache = KvCache::default();
        let mut last = logits(&model, &case.prompt_ids, &mut cache);
        let mut worst = 0.0f32;
        for &(id, expected) in &case.last_logits_top20 {
            let relative = (last[id] - expected).abs() / expected.abs().max(1.0);
            worst = worst.max(relative);
            assert!(
                relative <= RELATIVE_TOLERANCE,
                "{:?}: logit of {id} is {}, reference {expected}",
                case.user,
                last[id]
            );
        }
        let mut greedy = Vec::new();
        for _ in 0..case.greedy_ids.len() {
            let next = argmax(&last);
            greedy.push(next);
            last = logits(&model, &[next as i64], &mut cache);
        }
        assert_eq!(greedy, case.greedy_ids, "{:?}", case.user);
        eprintln!(
            "{:?}: top-20 within {worst:.1e} relative; 16 greedy tokens identical",
            case.user
        );
    }
}
