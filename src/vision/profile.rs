//! Where the image model's time goes, by kind of layer, natively (`glimpse bench --profile`)
//! and in the browser (`Glimpse.engineProfile`). The clock is the caller's: `Instant`
//! natively, `performance.now()` in the browser, where `Instant` is not available.
//!
//! On the CPU the forward pass of its own path (channels-last, [`super::kernels`]) is replayed
//! op by op with a clock around each: the CPU backend runs each op eagerly, so a clock around
//! an op measures that op. On the GPU ([`profile_gpu`]) ops are queued and run later, so each
//! layer of the GPU's path (burn's convolutions, channels-first) is closed by reading its
//! output back, which waits for it, and a second read of the same output, which has nothing to
//! wait for, is taken off the layer's time.

use std::collections::BTreeMap;

use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};
use serde::Serialize;

use super::Classifier;
use super::efficientnet::EfficientNet;
use super::kernels::{depthwise_same_relu6, pointwise, pointwise_add, stem_same_relu6};
use crate::error::{GlimpseError, Result};

/// Milliseconds of one forward pass per kind of layer, summed over its layers.
pub type Times = BTreeMap<String, f64>;

/// The kinds every replay (the CPU kernels', the GPU's, the CLI's of burn's own operations)
/// times its layers under, so that their profiles line up row by row.
pub mod kind {
    pub const STEM: &str = "stem conv 3×3/2, 3→32";
    pub const EXPAND: &str = "expand 1×1";
    pub const PROJECT: &str = "project 1×1";
    pub const HEAD: &str = "head conv 1×1, 320→1280";
    pub const POOL_FC: &str = "pool + fc";

    /// A depthwise layer of kernel `k` and stride `s`, e.g. "depthwise 5×5/2".
    pub fn depthwise(k: usize, s: usize) -> String {
        format!("depthwise {k}×{k}/{s}")
    }
}

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
/// convolution after the stem one fused kernel. The first blocks, which the model's own pass
/// runs in bands of rows (the three layers of a band one after another), are replayed here
/// layer by layer, so that each kind is timed; the same values come out.
pub fn forward_kernels(model: &EfficientNet, images: Tensor<4>, clock: &mut Clock) -> Tensor<2> {
    let stem = &model.conv_stem;
    // The stem reads the planar input and writes channels-last, with its ReLU6.
    let mut x = clock.time_tensor(kind::STEM, || {
        stem_same_relu6(images, stem.weight.val(), bias(stem), stem.stride[0])
    });
    for block in &model.blocks {
        let input = x.clone();
        if let Some(e) = &block.expand_conv {
            x = clock.time_tensor(kind::EXPAND, || pointwise(x, e.weight.val(), bias(e), true));
        }
        let d = &block.depthwise_conv;
        let (k, s) = (d.kernel_size[0], d.stride[0]);
        x = clock.time_tensor(&kind::depthwise(k, s), || {
            depthwise_same_relu6(x, d.weight.val(), bias(d), s)
        });
        let p = &block.project_conv;
        x = clock.time_tensor(kind::PROJECT, || {
            if block.residual {
                pointwise_add(x, p.weight.val(), bias(p), input)
            } else {
                pointwise(x, p.weight.val(), bias(p), false)
            }
        });
    }
    let h = &model.conv_head;
    x = clock.time_tensor(kind::HEAD, || pointwise(x, h.weight.val(), bias(h), true));
    clock.time(kind::POOL_FC, || {
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

/// The GPU path's profile: per kind of layer, each layer's time from its dispatch to its
/// output read back, less what reading that output again takes once it is there.
#[derive(Debug, Clone, Serialize)]
pub struct GpuProfile {
    #[serde(flatten)]
    pub profile: Profile,
    /// The forward pass without clocks: the logits read back once, at the end.
    pub forward: Spread,
    /// Per pass, the layers' outputs read back again after they were there: what was taken off
    /// the kinds (the copy to a mappable buffer and its map, with no work ahead of it).
    pub readbacks: Spread,
    /// The layers timed in a pass.
    pub layers: usize,
}

/// Reads all of `x` back, which waits for the work that computes it. In Chromium's WebGPU each
/// kind then took about the same time pass after pass, and the kinds summed to the plain pass.
/// Natively on Mesa's lavapipe the same replay's times were not usable (some layers took no
/// time and a later one all of theirs), which is why the CLI does not print this profile.
async fn read_back<const D: usize>(x: &Tensor<D>) -> Result<TensorData> {
    x.clone()
        .into_data_async()
        .await
        .map_err(GlimpseError::read_failed)
}

/// Like [`Clock`] for a backend that queues its work: each layer is waited for by reading its
/// output back, and a second read of it, with nothing left to wait for, is taken off.
struct GpuClock<'a> {
    times: Times,
    readbacks: f64,
    layers: usize,
    now: &'a dyn Fn() -> f64,
}

impl GpuClock<'_> {
    async fn time<const D: usize>(
        &mut self,
        kind: &str,
        f: impl FnOnce() -> Tensor<D>,
    ) -> Result<Tensor<D>> {
        let start = (self.now)();
        let out = f();
        read_back(&out).await?;
        let done = (self.now)();
        read_back(&out).await?;
        let read = (self.now)() - done;
        *self.times.entry(kind.to_string()).or_default() += (done - start - read).max(0.0);
        self.readbacks += read;
        self.layers += 1;
        Ok(out)
    }
}

/// The GPU path's forward pass (what [`EfficientNet::feature_map`] runs off the CPU: burn's
/// convolutions channels-first, ReLU6 and the residual add as their own ops), each layer timed
/// under the kind the CPU's replay gives it, so that the two profiles line up.
async fn forward_gpu(
    model: &EfficientNet,
    images: Tensor<4>,
    clock: &mut GpuClock<'_>,
) -> Result<Tensor<2>> {
    let relu6 = |x: Tensor<4>| x.clamp(0.0, 6.0);
    let stem = &model.conv_stem;
    let mut x = clock
        .time(kind::STEM, || relu6(stem.forward(images)))
        .await?;
    for block in &model.blocks {
        let input = x.clone();
        if let Some(e) = &block.expand_conv {
            x = clock.time(kind::EXPAND, || relu6(e.forward(x))).await?;
        }
        let d = &block.depthwise_conv;
        let (k, s) = (d.kernel_size[0], d.stride[0]);
        x = clock
            .time(&kind::depthwise(k, s), || relu6(d.forward(x)))
            .await?;
        let p = &block.project_conv;
        x = clock
            .time(kind::PROJECT, || {
                let x = p.forward(x);
                if block.residual { x + input } else { x }
            })
            .await?;
    }
    let h = &model.conv_head;
    x = clock.time(kind::HEAD, || relu6(h.forward(x))).await?;
    clock
        .time(kind::POOL_FC, || model.fc.forward(EfficientNet::pool(x)))
        .await
}

/// The GPU path's per-layer profile over `runs` passes of `input` (one prepared 224×224
/// image) on `classifier`'s device, with the plain forward pass beside it. Async because the
/// browser can read a GPU's results only that way. Checks first that the replay computes what
/// the model computes.
pub async fn profile_gpu(
    classifier: &Classifier,
    input: &[f32],
    runs: usize,
    now: &dyn Fn() -> f64,
) -> Result<GpuProfile> {
    let model = classifier.model();
    let batch = || classifier.batch(&[input.to_vec()]);
    let new_clock = || GpuClock {
        times: Times::new(),
        readbacks: 0.0,
        layers: 0,
        now,
    };
    // These first passes also prepare every kernel, which the timed passes must not pay for.
    let reference = read_back(&classifier.logits(batch())).await?;
    let replayed = read_back(&forward_gpu(model, batch(), &mut new_clock()).await?).await?;
    let worst = reference
        .iter::<f32>()
        .zip(replayed.iter::<f32>())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    if worst > 1e-3 {
        return Err(GlimpseError::Backend(format!(
            "the GPU profile's replay does not compute the model's logits (off by {worst})"
        )));
    }

    let (mut passes, mut plain, mut readbacks) = (Vec::new(), Vec::new(), Vec::new());
    let mut layers = 0;
    for _ in 0..runs.max(1) {
        let mut clock = new_clock();
        forward_gpu(model, batch(), &mut clock).await?;
        layers = clock.layers;
        readbacks.push(clock.readbacks);
        passes.push(clock.times);

        let x = batch();
        let start = now();
        read_back(&classifier.logits(x)).await?;
        plain.push(now() - start);
    }
    Ok(GpuProfile {
        profile: Profile::of(passes),
        forward: Spread::of(plain),
        readbacks: Spread::of(readbacks),
        layers,
    })
}
