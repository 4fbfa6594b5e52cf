//! The caption model's decoder (weights kept quantized as in the GGUF) against the reference
//! (transformers' GGUF loader, cross-checked by a second implementation to 8.6e-5) on 5 chat
//! prompts: the top-20 logits at the last prompt position within 1e-2 relative, then the first
//! 16 greedy tokens identical, decoding one token at a time through the KV cache.
//!
//! And the tiny LLaMA (`tests/fixtures/tiny-llama.mjs`: 2 layers of width 64, random Q4_0,
//! Q4_1 and Q8_0 weights, the real tokenizer), which the browser tests run on WebGPU: its
//! quantized CPU path against its f32 path (every logit of the prompt's last position, then
//! each greedy caption step's token and logit), which proves the generator's file loadable and
//! sane in under a second of compute; and, ignored here, wgpu against the CPU.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use burn::tensor::Device;
use common::models;
use glimpse::Prediction;
use glimpse::caption::gguf::Gguf;
use glimpse::caption::llama::{KvCache, Llama, Storage};
use glimpse::caption::profile::{profile_decode, synthetic_prompt};
use glimpse::caption::prompt::prompt;
use glimpse::caption::tokenizer::from_gguf;
use glimpse::caption::{Captioner, Choice, Facts};
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

// --- The tiny LLaMA ----------------------------------------------------------------------

/// Relative tolerance between the CPU's quantized and f32 paths' logits, `|a − b| / max(|b|, 1)`:
/// the weights are the same blocks, but the one-position products (each step, and the
/// prompt's last position onto the vocabulary) take the activations rounded to 16-bit blocks
/// (`src/caption/intdot.rs`): measured at 9.2e-4 (every logit after the prompt, the tiny
/// model's random weights amplifying it; 4e-6 with f32 activations) and 3.8e-5 (the steps'
/// logits, 5e-7 before).
const TINY_TOLERANCE: f32 = 2e-3;
/// The same for wgpu against the CPU: measured on lavapipe at 3.7e-5 (every logit after the
/// prompt) and 4.4e-7 (the steps); the browser test holds WebGPU's step logits to 1e-4.
const TINY_WGPU_TOLERANCE: f32 = 1e-3;
/// The class the tiny model's caption is written for (the browser test uses the same): its
/// random weights (seed 1) write 10 tokens for it, the last ending in a full stop, which ends
/// the caption by the stop rule (most classes run to `MAX_TOKENS`, 24; a short caption keeps
/// the browser test's SwiftShader run short).
const TINY_TOP: [(usize, &str, f32); 1] = [(10, "brambling", 0.9)];
/// A caption shorter than this would compare too few steps.
const TINY_MIN_STEPS: usize = 8;

/// The tiny GGUF's bytes, written by `node tests/fixtures/tiny-llama.mjs` with the real
/// model's tokenizer (fetched by `models()`).
fn tiny_gguf(seed: u32) -> Vec<u8> {
    let dir = models();
    let manifest = dir.read_manifest().unwrap();
    let source = dir
        .root
        .join(&manifest.find(CAPTION_MODEL_NAME, None).unwrap().file);
    // Tests run on parallel threads: each call writes its own file.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out = std::env::temp_dir().join(format!(
        "glimpse-tiny-llama-{}-{call}.gguf",
        std::process::id()
    ));
    let generator = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama.mjs");
    let status = Command::new("node")
        .arg(&generator)
        .arg(&out)
        .arg("--source")
        .arg(&source)
        .arg("--seed")
        .arg(seed.to_string())
        .status()
        .expect("node runs tests/fixtures/tiny-llama.mjs (Node 20+ is needed)");
    assert!(status.success(), "the generator failed: {status}");
    let bytes = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).ok();
    bytes
}

fn tiny() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| tiny_gguf(1))
}

fn tiny_top() -> Vec<Prediction> {
    TINY_TOP
        .iter()
        .map(|&(index, label, prob)| Prediction {
            index,
            label: label.into(),
            prob,
        })
        .collect()
}

/// A captioner on the tiny model, loaded onto `device` with `storage`.
fn tiny_captioner(bytes: &[u8], device: &Device, storage: Storage) -> Captioner {
    let model = Llama::from_gguf(bytes, storage, device).unwrap();
    Captioner::new(model, from_gguf(&Gguf::parse(bytes).unwrap()).unwrap()).unwrap()
}

/// Each step of a greedy caption: (token, its logit), and the text streamed (the caption
/// itself is the template: random weights never name the class).
fn greedy_steps(captioner: &Captioner, top: &[Prediction]) -> (Vec<Choice>, String) {
    let mut generation = captioner.start(&Facts::from_top(top).unwrap()).unwrap();
    let mut steps = Vec::new();
    let mut text = String::new();
    while !generation.is_finished() {
        let choice = Choice::read(captioner.predict(&mut generation).into_data()).unwrap();
        steps.push(choice);
        text.extend(captioner.accept(&mut generation, choice.token));
    }
    (steps, text)
}

fn relative(a: f32, b: f32) -> f32 {
    (a - b).abs() / b.abs().max(1.0)
}

/// `actual` against `reference`, both on the tiny model: every logit after the caption
/// prompt, then every greedy step's token and logit, and the caption.
fn compare_tiny(actual: &Captioner, reference: &Captioner, tolerance: f32, what: &str) {
    let top = tiny_top();
    let tokenizer = from_gguf(&Gguf::parse(tiny()).unwrap()).unwrap();
    let ids = tokenizer
        .encode(prompt(&Facts::from_top(&top).unwrap()), false)
        .unwrap()
        .get_ids()
        .to_vec();
    let vector = |c: &Captioner| {
        c.last_logits(&ids, &mut KvCache::default())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let (ours, theirs) = (vector(actual), vector(reference));
    let worst = ours
        .iter()
        .zip(&theirs)
        .map(|(&a, &b)| relative(a, b))
        .fold(0.0f32, f32::max);
    let best = argmax(&theirs);
    let runner_up = theirs
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != best)
        .map(|(_, &v)| v)
        .fold(f32::MIN, f32::max);
    eprintln!(
        "{what}: {} logits after a {}-token prompt within {worst:.1e} relative; top logit {:.2}, margin {:.2}",
        ours.len(),
        ids.len(),
        theirs[best],
        theirs[best] - runner_up
    );
    assert!(
        worst <= tolerance,
        "{what}: prompt logits differ by {worst:e}"
    );
    assert_eq!(argmax(&ours), best);

    let (steps, text) = greedy_steps(actual, &top);
    let (expected, expected_text) = greedy_steps(reference, &top);
    let tokens = |s: &[Choice]| s.iter().map(|c| c.token).collect::<Vec<_>>();
    assert_eq!(tokens(&steps), tokens(&expected), "{what}: greedy tokens");
    let worst = steps
        .iter()
        .zip(&expected)
        .map(|(a, b)| relative(a.logit, b.logit))
        .fold(0.0f32, f32::max);
    eprintln!(
        "{what}: {} greedy steps identical, their logits within {worst:.1e} relative; text {text:?}",
        steps.len()
    );
    assert!(
        worst <= tolerance,
        "{what}: step logits differ by {worst:e}"
    );
    assert_eq!(text, expected_text);
    assert!(
        steps.len() >= TINY_MIN_STEPS,
        "only {} steps: the tiny model's caption ends too early to compare",
        steps.len()
    );
}

/// The generator's file loads, and its quantized CPU path (the file's blocks, decoded inside
/// the products) agrees with the f32 path.
#[test]
fn tiny_llama_quantized_matches_f32_on_the_cpu() {
    let device = Device::flex();
    compare_tiny(
        &tiny_captioner(tiny(), &device, Storage::Quantized),
        &tiny_captioner(tiny(), &device, Storage::F32),
        TINY_TOLERANCE,
        "tiny, CPU quantized vs f32",
    );
}

/// What the browser test checks on WebGPU, natively: wgpu's quantized path (burn's quantized
/// tensors) against the CPU's. 40 s on lavapipe (2 cores), mostly compiling kernels:
/// `cargo test --release --test llama -- --ignored tiny_llama_on_wgpu`.
#[test]
#[ignore = "needs a wgpu adapter"]
fn tiny_llama_on_wgpu_matches_the_cpu() {
    let gpu = Device::wgpu_options().init().expect("a wgpu adapter");
    compare_tiny(
        &tiny_captioner(tiny(), &gpu, Storage::Quantized),
        &tiny_captioner(tiny(), &Device::flex(), Storage::Quantized),
        TINY_WGPU_TOLERANCE,
        "tiny, wgpu vs CPU",
    );
}

/// A tool for after a change to the generator: how long the tiny model's caption runs for a
/// few seeds, and which of the first 300 classes end it (by a stop rule) in 8 to 16 steps,
/// for `TINY_TOP`. `cargo test --release --test llama -- --ignored tiny_llama_seeds --nocapture`.
#[test]
#[ignore = "a tool for choosing the seed and the classes"]
fn tiny_llama_seeds() {
    let device = Device::flex();
    for seed in 1..=4 {
        let captioner = tiny_captioner(&tiny_gguf(seed), &device, Storage::Quantized);
        let (steps, text) = greedy_steps(&captioner, &tiny_top());
        eprintln!("seed {seed}: {} steps, {text:?}", steps.len());
    }
    let captioner = tiny_captioner(tiny(), &device, Storage::Quantized);
    for (index, class) in glimpse::vision::labels::imagenet()
        .iter()
        .enumerate()
        .take(300)
    {
        let top = [Prediction {
            index,
            label: class.name().into(),
            prob: 0.9,
        }];
        let (steps, text) = greedy_steps(&captioner, &top);
        if (8..=16).contains(&steps.len()) {
            eprintln!(
                "class {index} {}: {} steps, {text:?}",
                class.name(),
                steps.len()
            );
        }
    }
}

#[test]
fn the_decode_profile_times_every_matrix_role_and_attention_within_the_step() {
    fn now() -> f64 {
        static EPOCH: OnceLock<std::time::Instant> = OnceLock::new();
        EPOCH
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_secs_f64()
            * 1e3
    }
    let model = Llama::from_gguf(tiny(), Storage::Quantized, &glimpse::runtime::cpu()).unwrap();
    let profile = profile_decode(&model, &synthetic_prompt(20), 5, now);
    assert_eq!((profile.prompt, profile.tokens), (20, 5));
    let roles: Vec<&str> = profile.products.keys().map(String::as_str).collect();
    // The tiny model: width 64, 2 layers; its k and v are as wide as q (no grouped heads).
    for role in [
        "gate",
        "up",
        "down",
        "output",
        "q",
        "k",
        "v",
        "o",
        "attention over the cache",
    ] {
        assert!(
            roles
                .iter()
                .any(|r| r.split(" (").next().unwrap().split(", ").any(|n| n == role)),
            "{role} is among {roles:?}"
        );
    }
    let products: f64 = profile.products.values().map(|s| s.median).sum();
    assert!(profile.step.min > 0.0 && products > 0.0);
    assert!(products <= profile.step.median * 1.5, "{profile:?}");
}

/// The last position's logits as a vector.
fn next_logits(model: &Llama, ids: &[u32], cache: &mut KvCache) -> Vec<f32> {
    model
        .next_logits(ids, cache)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Decoding one token at a time, past the room the cache starts with (so that it grows),
/// gives the logits of the whole sequence read in one pass; taking positions back (as a
/// caption does with a word) and decoding them again gives the logits of the first time.
#[test]
fn the_cache_grows_and_takes_positions_back_without_changing_the_logits() {
    for storage in [Storage::F32, Storage::Quantized] {
        let model = Llama::from_gguf(tiny(), storage, &Device::flex()).unwrap();
        let ids = synthetic_prompt(100);
        let prompt = 10;
        let mut cache = KvCache::default();
        // steps[j]: the logits after ids[..prompt + j].
        let mut steps = vec![next_logits(&model, &ids[..prompt], &mut cache)];
        for &id in &ids[prompt..] {
            steps.push(next_logits(&model, &[id], &mut cache));
        }
        assert_eq!(cache.len(), ids.len());

        let whole = next_logits(&model, &ids, &mut KvCache::default());
        let worst = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(&x, &y)| relative(x, y))
                .fold(0.0f32, f32::max)
        };
        let apart = worst(steps.last().unwrap(), &whole);
        eprintln!("{storage:?}: the last step {apart:.1e} from the whole pass");
        // The quantized steps take their activations rounded to 16-bit blocks and the whole
        // pass does not, and the difference builds up in the cache over 90 steps: only the
        // f32 path computes the same thing both ways.
        if storage == Storage::F32 {
            assert!(apart <= 1e-4, "{apart:e} from the whole pass");
        }

        let keep = 60;
        cache.truncate(keep);
        assert_eq!(cache.len(), keep);
        for (k, &id) in ids[keep..].iter().enumerate() {
            let again = next_logits(&model, &[id], &mut cache);
            let apart = worst(&again, &steps[keep + 1 + k - prompt]);
            assert!(
                apart <= 1e-5,
                "{storage:?}: position {} again: {apart:e}",
                keep + k
            );
        }
        eprintln!("{storage:?}: 90 steps through a growing cache, 40 taken back and redone");
    }
}
