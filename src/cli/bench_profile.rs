//! `glimpse bench --profile`: where the image model's CPU time goes, one image, by kind of
//! layer, for two ways of running the same weights: burn's own operations channels-first (what
//! the GPU runs, and what the CPU ran before its own kernels) and the CPU kernels
//! channels-last (what the CPU runs now, [`glimpse::vision::kernels`]). Each replays the
//! forward pass op by op (the CPU backend runs each op eagerly, so a clock around an op
//! measures that op). For burn's operations it splits out what burn does on its own inside a
//! convolution call: the padded copy that TF "SAME" padding costs on stride-2 layers (burn pads
//! asymmetric padding with a copy before the kernel), the separate ReLU6 and residual passes;
//! the kernels fuse those into the convolutions.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData};
use glimpse::vision::efficientnet::{EfficientNet, EfficientNetConfig};
use glimpse::vision::kernels::{depthwise_same_relu6, pointwise, pointwise_add, same_padding};
use glimpse::{Classifier, Result};

/// Per-kind milliseconds of one forward pass.
type Times = BTreeMap<String, f64>;

fn sync(x: &Tensor<4>) {
    // The CPU backend has already computed `x`; reading one value keeps the clock honest if
    // a backend ever defers work.
    let _ = std::hint::black_box(x.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data());
}

struct Clock<'a> {
    times: &'a mut Times,
}

impl Clock<'_> {
    fn time(&mut self, kind: &str, f: impl FnOnce() -> Tensor<4>) -> Tensor<4> {
        let start = Instant::now();
        let out = f();
        sync(&out);
        *self.times.entry(kind.to_string()).or_default() += start.elapsed().as_secs_f64() * 1e3;
        out
    }

    /// A convolution as burn's module runs it, with the asymmetric-padding copy timed on its
    /// own under `pad_kind`.
    fn conv(&mut self, kind: &str, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let [k, _] = conv.kernel_size;
        let [s, _] = conv.stride;
        let (top, bottom) = same_padding(h, k, s);
        let (left, right) = same_padding(w, k, s);
        let weight = conv.weight.val();
        let bias = conv.bias.as_ref().map(|b| b.val());
        let groups = conv.groups;
        let (x, padding) = if top != bottom || left != right {
            let padded = self.time("SAME padding copies (stride 2)", || {
                x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
            });
            (padded, [0, 0])
        } else {
            (x, [top, left])
        };
        self.time(kind, || {
            conv2d(
                x,
                weight,
                bias,
                ConvOptions::new([s, s], padding, [1, 1], groups),
            )
        })
    }
}

fn relu6(clock: &mut Clock, x: Tensor<4>) -> Tensor<4> {
    clock.time("ReLU6 (separate pass)", || x.clamp(0.0, 6.0))
}

fn forward(model: &EfficientNet, images: Tensor<4>, times: &mut Times) -> Tensor<2> {
    let mut clock = Clock { times };
    let mut x = clock.conv("stem conv 3×3/2, 3→32", &model.conv_stem, images);
    x = relu6(&mut clock, x);
    for (block, config) in model
        .blocks
        .iter()
        .zip(EfficientNetConfig::lite0().blocks())
    {
        let input = x.clone();
        if let Some(expand) = &block.expand_conv {
            x = clock.conv("expand 1×1", expand, x);
            x = relu6(&mut clock, x);
        }
        let k = config.kernel;
        let s = config.stride;
        x = clock.conv(&format!("depthwise {k}×{k}/{s}"), &block.depthwise_conv, x);
        x = relu6(&mut clock, x);
        x = clock.conv("project 1×1", &block.project_conv, x);
        if block.residual {
            x = clock.time("residual add (separate pass)", || x + input);
        }
    }
    x = clock.conv("head conv 1×1, 320→1280", &model.conv_head, x);
    x = relu6(&mut clock, x);
    let start = Instant::now();
    let logits = model.fc.forward(EfficientNet::pool(x));
    let _ = std::hint::black_box(logits.clone().into_data());
    *clock.times.entry("pool + fc".into()).or_default() += start.elapsed().as_secs_f64() * 1e3;
    logits
}

fn bias(conv: &Conv2d) -> Tensor<1> {
    conv.bias
        .as_ref()
        .expect("EfficientNet's convolutions carry a folded bias")
        .val()
}

/// The CPU path: channels-last, every convolution after the stem one fused kernel.
fn forward_kernels(model: &EfficientNet, images: Tensor<4>, times: &mut Times) -> Tensor<2> {
    let mut clock = Clock { times };
    let mut x = clock.conv("stem conv 3×3/2, 3→32", &model.conv_stem, images);
    x = relu6(&mut clock, x);
    // The turn is a view; its copy happens inside the first depthwise kernel.
    x = clock.time("layout turns (NCHW ↔ NHWC)", || x.permute([0, 2, 3, 1]));
    for (block, config) in model
        .blocks
        .iter()
        .zip(EfficientNetConfig::lite0().blocks())
    {
        let input = x.clone();
        if let Some(e) = &block.expand_conv {
            x = clock.time("expand 1×1", || {
                pointwise(x, e.weight.val(), bias(e), true)
            });
        }
        let (k, s) = (config.kernel, config.stride);
        let d = &block.depthwise_conv;
        x = clock.time(&format!("depthwise {k}×{k}/{s}"), || {
            depthwise_same_relu6(x, d.weight.val(), bias(d), s)
        });
        let p = &block.project_conv;
        x = clock.time("project 1×1", || {
            if block.residual {
                pointwise_add(x, p.weight.val(), bias(p), input)
            } else {
                pointwise(x, p.weight.val(), bias(p), false)
            }
        });
    }
    let h = &model.conv_head;
    x = clock.time("head conv 1×1, 320→1280", || {
        pointwise(x, h.weight.val(), bias(h), true)
    });
    let start = Instant::now();
    let logits = model
        .fc
        .forward(EfficientNet::pool(x.permute([0, 3, 1, 2])));
    let _ = std::hint::black_box(logits.clone().into_data());
    *clock.times.entry("pool + fc".into()).or_default() += start.elapsed().as_secs_f64() * 1e3;
    logits
}

/// Median and min of each kind's time, and of the sum of the kinds.
struct Profile {
    kinds: BTreeMap<String, (f64, f64)>,
    total: (f64, f64),
}

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn profile(runs: usize, mut pass: impl FnMut(&mut Times)) -> Profile {
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    for _ in 0..runs {
        let mut times = Times::new();
        pass(&mut times);
        totals.push(times.values().sum::<f64>());
        for (kind, ms) in times {
            samples.entry(kind).or_default().push(ms);
        }
    }
    Profile {
        kinds: samples.into_iter().map(|(k, v)| (k, stats(v))).collect(),
        total: stats(totals),
    }
}

/// Prints the median per-kind time over `runs` passes on `classifier`'s device, with the
/// plain forward pass's median beside their sum.
pub fn print_profile(classifier: &Classifier, input: &[f32], runs: usize) -> Result<()> {
    let model = classifier.model();
    let batch = || classifier.batch(&[input.to_vec()]);
    // Each replay must compute what the model computes, or its times say nothing.
    let reference: TensorData = classifier.logits(batch()).into_data();
    let tolerance = burn::tensor::Tolerance::absolute(1e-4);
    forward(model, batch(), &mut Times::new())
        .into_data()
        .assert_approx_eq::<f32>(&reference, tolerance);
    forward_kernels(model, batch(), &mut Times::new())
        .into_data()
        .assert_approx_eq::<f32>(&reference, tolerance);

    // The two replays take turns, so a busy spell on the machine hits both alike.
    let (mut burn_ops, mut kernels) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut times = Times::new();
        forward(model, batch(), &mut times);
        burn_ops.push(times);
        let mut times = Times::new();
        forward_kernels(model, batch(), &mut times);
        kernels.push(times);
    }
    let burn_ops = profile(runs, |t| *t = burn_ops.pop().unwrap_or_default());
    let kernels = profile(runs, |t| *t = kernels.pop().unwrap_or_default());
    let mut plain = Vec::new();
    for _ in 0..runs {
        let x = batch();
        let start = Instant::now();
        let _ = std::hint::black_box(classifier.logits(x).into_data());
        plain.push(start.elapsed().as_secs_f64() * 1e3);
    }

    let mut kinds: Vec<&String> = burn_ops.kinds.keys().chain(kernels.kinds.keys()).collect();
    kinds.sort();
    kinds.dedup();
    kinds.sort_by(|a, b| {
        let min = |k: &String| burn_ops.kinds.get(k).map_or(0.0, |s| s.1);
        min(b).total_cmp(&min(a))
    });
    let cell = |p: &Profile, kind: &String| match p.kinds.get(kind) {
        Some((median, min)) => format!("{median:.2} | {min:.2}"),
        None => "– | –".to_string(),
    };
    println!();
    println!(
        "image model per-layer profile on the CPU, batch 1, {runs} runs (ms per kind, summed over its layers; \
         burn ops: channels-first burn convolutions as on the GPU; kernels: the CPU path)"
    );
    println!("| kind | burn ops median | burn ops min | kernels median | kernels min |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for kind in kinds {
        println!(
            "| {kind} | {} | {} |",
            cell(&burn_ops, kind),
            cell(&kernels, kind)
        );
    }
    let (bt, kt) = (burn_ops.total, kernels.total);
    println!(
        "| sum of the kinds | {:.2} | {:.2} | {:.2} | {:.2} |",
        bt.0, bt.1, kt.0, kt.1
    );
    let (plain_median, plain_min) = stats(plain);
    println!(
        "| the model's forward (CPU path, no clocks) | | | {plain_median:.2} | {plain_min:.2} |"
    );
    Ok(())
}
