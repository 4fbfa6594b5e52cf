//! Where the image model's CPU time goes, by kind of layer: the forward pass of the CPU path
//! (channels-last, [`super::kernels`]) replayed op by op with a clock around each, natively
//! (`glimpse bench --profile`) and in the browser (`Glimpse.engineProfile`). The CPU backend
//! runs each op eagerly, so a clock around an op measures that op. The clock is the caller's:
//! `Instant` natively, `performance.now()` in the browser, where `Instant` is not available.

use std::collections::BTreeMap;

use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use super::Classifier;
use super::efficientnet::{EfficientNet, EfficientNetConfig};
use super::kernels::{depthwise_same_relu6, pointwise, pointwise_add, stem_same_relu6};

/// Milliseconds of one forward pass per kind of layer, summed over its layers.
pub type Times = BTreeMap<String, f64>;

/// Adds each timed op's milliseconds to its kind, reading `now` (ms) around it.
pub struct Clock<'a> {
    pub times: &'a mut Times,
    pub now: &'a dyn Fn() -> f64,
}

impl Clock<'_> {
    /// Runs `f` and adds its time to `kind`.
    pub fn time<T>(&mut self, kind: &str, f: impl FnOnce() -> T) -> T {
        let start = (self.now)();
        let out = f();
        *self.times.entry(kind.to_string()).or_default() += (self.now)() - start;
        out
    }

    /// Like [`Clock::time`] for an op that returns a tensor, which is read from (one value)
    /// before the clock stops: the CPU backend has computed it already, but a backend that
    /// deferred work would otherwise be timed short.
    pub fn time_tensor(&mut self, kind: &str, f: impl FnOnce() -> Tensor<4>) -> Tensor<4> {
        self.time(kind, || {
            let out = f();
            let _ = std::hint::black_box(out.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data());
            out
        })
    }
}

/// A convolution's folded batch-norm bias.
pub fn bias(conv: &Conv2d) -> Tensor<1> {
    conv.bias
        .as_ref()
        .expect("EfficientNet's convolutions carry a folded bias")
        .val()
}

/// The CPU path's forward pass, each op timed under its kind: channels-last, every
/// convolution after the stem one fused kernel.
pub fn forward_kernels(model: &EfficientNet, images: Tensor<4>, clock: &mut Clock) -> Tensor<2> {
    let stem = &model.conv_stem;
    // The stem reads the planar input and writes channels-last, with its ReLU6.
    let mut x = clock.time_tensor("stem conv 3×3/2, 3→32", || {
        stem_same_relu6(images, stem.weight.val(), bias(stem), stem.stride[0])
    });
    for (block, config) in model
        .blocks
        .iter()
        .zip(EfficientNetConfig::lite0().blocks())
    {
        let input = x.clone();
        if let Some(e) = &block.expand_conv {
            x = clock.time_tensor("expand 1×1", || {
                pointwise(x, e.weight.val(), bias(e), true)
            });
        }
        let (k, s) = (config.kernel, config.stride);
        let d = &block.depthwise_conv;
        x = clock.time_tensor(&format!("depthwise {k}×{k}/{s}"), || {
            depthwise_same_relu6(x, d.weight.val(), bias(d), s)
        });
        let p = &block.project_conv;
        x = clock.time_tensor("project 1×1", || {
            if block.residual {
                pointwise_add(x, p.weight.val(), bias(p), input)
            } else {
                pointwise(x, p.weight.val(), bias(p), false)
            }
        });
    }
    let h = &model.conv_head;
    x = clock.time_tensor("head conv 1×1, 320→1280", || {
        pointwise(x, h.weight.val(), bias(h), true)
    });
    clock.time("pool + fc", || {
        let logits = model
            .fc
            .forward(EfficientNet::pool(x.permute([0, 3, 1, 2])));
        let _ = std::hint::black_box(logits.clone().into_data());
        logits
    })
}

/// Median and minimum, in ms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
}

impl Spread {
    pub fn of(mut samples: Vec<f64>) -> Spread {
        samples.sort_by(f64::total_cmp);
        Spread {
            median: samples[samples.len() / 2],
            min: samples[0],
        }
    }
}

/// Per-kind spreads over several passes, and the spread of their sums.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub kinds: BTreeMap<String, Spread>,
    pub total: Spread,
}

impl Profile {
    /// Gathers the passes' times (each a [`Times`]).
    pub fn of(passes: Vec<Times>) -> Profile {
        let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut totals = Vec::new();
        for times in passes {
            totals.push(times.values().sum::<f64>());
            for (kind, ms) in times {
                samples.entry(kind).or_default().push(ms);
            }
        }
        Profile {
            kinds: samples
                .into_iter()
                .map(|(kind, v)| (kind, Spread::of(v)))
                .collect(),
            total: Spread::of(totals),
        }
    }
}

/// The CPU path's per-layer profile over `runs` passes of `input` (one prepared 224×224
/// image), and the plain forward pass (no clocks) beside it. Checks first that the replay
/// computes what the model computes, or its times would say nothing.
pub fn profile_kernels(
    classifier: &Classifier,
    input: &[f32],
    runs: usize,
    now: &dyn Fn() -> f64,
) -> (Profile, Spread) {
    let model = classifier.model();
    let batch = || classifier.batch(&[input.to_vec()]);
    let replay = || {
        let mut times = Times::new();
        let logits = forward_kernels(
            model,
            batch(),
            &mut Clock {
                times: &mut times,
                now,
            },
        );
        (logits, times)
    };
    let reference: TensorData = classifier.logits(batch()).into_data();
    replay()
        .0
        .into_data()
        .assert_approx_eq::<f32>(&reference, burn::tensor::Tolerance::absolute(1e-4));
    let mut passes = Vec::with_capacity(runs);
    let mut plain = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        passes.push(replay().1);
        let x = batch();
        let start = now();
        let _ = std::hint::black_box(classifier.logits(x).into_data());
        plain.push(now() - start);
    }
    (Profile::of(passes), Spread::of(plain))
}
