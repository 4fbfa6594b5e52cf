//! Where a decoded token's CPU time goes: each weight matrix's product (grouped by role: the
//! attention's q, k, v, o, the feed-forward's gate, up and down, the output projection onto
//! the vocabulary), attention over the cache, and the rest of the step (RoPE, norms, SiLU, the
//! residual adds, the embedding row, the argmax). Natively `glimpse bench --profile`, in the
//! browser `Glimpse.captionProfile()`, with the same clock-passing as
//! [`crate::vision::profile`]. The CPU backend computes each product before it returns, so a
//! clock around it measures it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde::Serialize;

use super::llama::{KvCache, Llama};
use crate::vision::profile::Spread;

/// A part of a decoded token that is timed apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Part {
    /// The product with a `[rows, cols]` weight matrix.
    Product([usize; 2]),
    /// A layer's attention over its cache.
    Attention,
}

/// What the profile calls attention over the cache.
const ATTENTION: &str = "attention over the cache";

/// A running profile's clock and each timed part's `(part, ms)`.
type ProductTimes = (fn() -> f64, Vec<(Part, f64)>);

thread_local! {
    /// While a profile runs on this thread: its clock and the products timed so far.
    static PRODUCTS: RefCell<Option<ProductTimes>> = const { RefCell::new(None) };
}

/// Runs `f`, the part `part` of a step, timing it when a profile is running here.
pub(crate) fn timed<T>(part: Part, f: impl FnOnce() -> T) -> T {
    let Some(now) = PRODUCTS.with_borrow(|p| p.as_ref().map(|(now, _)| *now)) else {
        return f();
    };
    let start = now();
    let out = f();
    let ms = now() - start;
    PRODUCTS.with_borrow_mut(|p| {
        if let Some((_, times)) = p {
            times.push((part, ms));
        }
    });
    out
}

/// The prompt a decode profile or benchmark runs after: about what a caption prompt (three
/// examples and the request) is.
pub const PROMPT_TOKENS: usize = 150;

/// Prompt token ids for a profile or a benchmark: ordinary word-range ids, the same for every
/// engine and run.
pub fn synthetic_prompt(len: usize) -> Vec<u32> {
    (0..len as u32).map(|i| 1000 + (i * 37) % 5000).collect()
}

/// Milliseconds per decoded token.
#[derive(Debug, Clone, Serialize)]
pub struct DecodeProfile {
    /// Each role's products (its matrices in every layer), per token, e.g. `"q, o (576×576)"`,
    /// and every layer's attention over the cache (`"attention over the cache"`).
    pub products: BTreeMap<String, Spread>,
    /// Everything in the step that is neither a product nor attention over the cache.
    pub rest: Spread,
    /// The whole step.
    pub step: Spread,
    /// The mean step of as many tokens after the same prompt with no clock inside the step:
    /// the model's own loop, as `glimpse bench` times decoding natively (the browser's caption
    /// rows also take the worker's messages and the caption's checks).
    pub unclocked_step: f64,
    /// Tokens in the cache when the profile began (the prompt).
    pub prompt: usize,
    pub tokens: usize,
}

/// Decodes `tokens` greedy tokens after `prompt`, timing each step and its products with `now`
/// (ms). A short pass first prepares what is prepared once per shape.
pub fn profile_decode(
    model: &Llama,
    prompt: &[u32],
    tokens: usize,
    now: fn() -> f64,
) -> DecodeProfile {
    let next = |ids: &[u32], cache: &mut KvCache| -> u32 {
        model.next_logits(ids, cache).argmax(1).into_scalar::<i64>() as u32
    };
    next(&prompt[..prompt.len().min(4)], &mut KvCache::default());
    let tokens = tokens.max(1);
    // Both loops start from the same prompt's cache, read once.
    let mut after_prompt = KvCache::default();
    let first = next(prompt, &mut after_prompt);
    let unclocked_step = {
        let (mut cache, mut token) = (after_prompt.clone(), first);
        let start = now();
        for _ in 0..tokens {
            token = next(&[token], &mut cache);
        }
        (now() - start) / tokens as f64
    };
    let roles = roles(model);
    let (mut cache, mut token) = (after_prompt, first);
    let (mut steps, mut rest) = (Vec::new(), Vec::new());
    let mut by_role: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..tokens {
        PRODUCTS.set(Some((now, Vec::new())));
        let start = now();
        token = next(&[token], &mut cache);
        let step = now() - start;
        let products = PRODUCTS.take().map(|(_, times)| times).unwrap_or_default();
        let mut sums: BTreeMap<String, f64> = roles.values().map(|r| (r.clone(), 0.0)).collect();
        sums.insert(ATTENTION.into(), 0.0);
        for (part, ms) in &products {
            let role = match part {
                Part::Product(dims) => roles.get(dims).cloned().unwrap_or_else(|| shape(*dims)),
                Part::Attention => ATTENTION.into(),
            };
            *sums.entry(role).or_default() += ms;
        }
        rest.push(step - sums.values().sum::<f64>());
        for (role, ms) in sums {
            by_role.entry(role).or_default().push(ms);
        }
        steps.push(step);
    }
    DecodeProfile {
        products: by_role
            .into_iter()
            .map(|(role, ms)| (role, Spread::of(ms)))
            .collect(),
        rest: Spread::of(rest),
        step: Spread::of(steps),
        unclocked_step,
        prompt: prompt.len(),
        tokens,
    }
}

fn shape([rows, cols]: [usize; 2]) -> String {
    format!("{rows}×{cols}")
}

/// The roles of the model's matrices by shape, e.g. `[576, 576] → "q, o (576×576)"` (a
/// product's shape is all the clock sees).
fn roles(model: &Llama) -> BTreeMap<[usize; 2], String> {
    let mut names: BTreeMap<[usize; 2], Vec<&str>> = BTreeMap::new();
    for (name, dims) in model.matrix_roles() {
        let list = names.entry(dims).or_default();
        if !list.contains(&name) {
            list.push(name);
        }
    }
    names
        .into_iter()
        .map(|(dims, list)| (dims, format!("{} ({})", list.join(", "), shape(dims))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_are_timed_only_while_a_profile_runs() {
        fn clock() -> f64 {
            7.0
        }
        assert_eq!(timed(Part::Product([2, 3]), || 5), 5);
        assert!(PRODUCTS.with_borrow(|p| p.is_none()));
        PRODUCTS.set(Some((clock, Vec::new())));
        timed(Part::Product([2, 3]), || ());
        timed(Part::Attention, || ());
        let (_, times) = PRODUCTS.take().unwrap();
        assert_eq!(
            times,
            vec![(Part::Product([2, 3]), 0.0), (Part::Attention, 0.0)]
        );
    }
}
