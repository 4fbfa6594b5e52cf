//! `glimpse bench --profile`: where the image model's CPU time goes, one image, by kind of
//! layer, for two ways of running the same weights: burn's own operations channels-first (what
//! the GPU runs, and what the CPU ran before its own kernels) and the CPU kernels
//! channels-last (what the CPU runs now, [`glimpse::vision::kernels`]; its replay is the
//! library's, [`glimpse::vision::profile`], which the browser runs too). Each replays the
//! forward pass op by op (the CPU backend runs each op eagerly, so a clock around an op
//! measures that op). For burn's operations it splits out what burn does on its own inside a
//! convolution call: the padded copy that TF "SAME" padding costs on stride-2 layers (burn pads
//! asymmetric padding with a copy before the kernel), the separate ReLU6 and residual passes;
//! the kernels fuse those into the convolutions.

use std::sync::OnceLock;
use std::time::Instant;

use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData};
use glimpse::vision::efficientnet::{EfficientNet, burn_weight};
use glimpse::vision::kernels::same_padding;
use glimpse::vision::profile::{
    Clock, Profile, Spread, Times, forward_kernels, kind, profile_kernels,
};
use glimpse::{Classifier, Result};

/// Milliseconds since the first call: the profiles' clock.
pub fn now() -> f64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64() * 1e3
}

/// A convolution as burn's module runs it, with the asymmetric-padding copy timed on its own.
fn conv(clock: &mut Clock, kind: &str, conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [k, _] = conv.kernel_size;
    let [s, _] = conv.stride;
    let (top, bottom) = same_padding(h, k, s);
    let (left, right) = same_padding(w, k, s);
    let weight = burn_weight(conv);
    let bias = conv.bias.as_ref().map(|b| b.val());
    let groups = conv.groups;
    let (x, padding) = if top != bottom || left != right {
        let padded = clock.time_tensor("SAME padding copies (stride 2)", || {
            x.pad([(top, bottom), (left, right)], PadMode::Constant(0.0))
        });
        (padded, [0, 0])
    } else {
        (x, [top, left])
    };
    clock.time_tensor(kind, || {
        conv2d(
            x,
            weight,
            bias,
            ConvOptions::new([s, s], padding, [1, 1], groups),
        )
    })
}

fn relu6(clock: &mut Clock, x: Tensor<4>) -> Tensor<4> {
    clock.time_tensor("ReLU6 (separate pass)", || x.clamp(0.0, 6.0))
}

/// burn's operations channels-first, as the GPU runs them (and the CPU did before its own
/// kernels), each timed under its kind.
fn forward(model: &EfficientNet, images: Tensor<4>, times: &mut Times) -> Tensor<2> {
    let clock = &mut Clock { times, now: &now };
    let mut x = conv(clock, kind::STEM, &model.conv_stem, images);
    x = relu6(clock, x);
    for block in &model.blocks {
        let input = x.clone();
        if let Some(expand) = &block.expand_conv {
            x = conv(clock, kind::EXPAND, expand, x);
            x = relu6(clock, x);
        }
        let (k, s) = (
            block.depthwise_conv.kernel_size[0],
            block.depthwise_conv.stride[0],
        );
        x = conv(clock, &kind::depthwise(k, s), &block.depthwise_conv, x);
        x = relu6(clock, x);
        x = conv(clock, kind::PROJECT, &block.project_conv, x);
        if block.residual {
            x = clock.time_tensor("residual add (separate pass)", || x + input);
        }
    }
    x = conv(clock, kind::HEAD, &model.conv_head, x);
    x = relu6(clock, x);
    clock.time(kind::POOL_FC, || {
        let logits = model.fc.forward(EfficientNet::pool(x));
        let _ = std::hint::black_box(logits.clone().into_data());
        logits
    })
}

/// Prints the median per-kind time over `runs` passes on `classifier`'s device, with the
/// plain forward pass's median beside their sum.
pub fn print_profile(classifier: &Classifier, input: &[f32], runs: usize) -> Result<()> {
    let model = classifier.model();
    let batch = || classifier.batch(&[input.to_vec()]);
    // Each replay must compute what the model computes, or its times say nothing (the
    // kernels' replay checks itself in `profile_kernels`).
    let reference: TensorData = classifier.logits(batch()).into_data();
    forward(model, batch(), &mut Times::new())
        .into_data()
        .assert_approx_eq::<f32>(&reference, burn::tensor::Tolerance::absolute(1e-4));

    // The two replays take turns, so a busy spell on the machine hits both alike.
    let (mut burn_ops, mut kernels) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut times = Times::new();
        forward(model, batch(), &mut times);
        burn_ops.push(times);
        let mut times = Times::new();
        forward_kernels(
            model,
            batch(),
            &mut Clock {
                times: &mut times,
                now: &now,
            },
        );
        kernels.push(times);
    }
    let (burn_ops, kernels) = (Profile::of(burn_ops), Profile::of(kernels));
    let (_, plain) = profile_kernels(classifier, input, runs, &now);

    let mut kinds: Vec<&String> = burn_ops.kinds.keys().chain(kernels.kinds.keys()).collect();
    kinds.sort();
    kinds.dedup();
    kinds.sort_by(|a, b| {
        let min = |k: &String| burn_ops.kinds.get(k).map_or(0.0, |s| s.min);
        min(b).total_cmp(&min(a))
    });
    let cell = |p: &Profile, kind: &String| match p.kinds.get(kind) {
        Some(Spread { median, min }) => format!("{median:.2} | {min:.2}"),
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
        bt.median, bt.min, kt.median, kt.min
    );
    println!(
        "| the model's forward (CPU path, no clocks) | | | {:.2} | {:.2} |",
        plain.median, plain.min
    );
    Ok(())
}
