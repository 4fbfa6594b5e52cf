//! `glimpse bench --profile`: where the image model's CPU time goes, one image, by kind of
//! layer. It replays the network's forward pass op by op (the CPU backend runs each op
//! eagerly, so a clock around an op measures that op) and splits out what burn does on its own
//! inside a convolution call: the padded copy that TF "SAME" padding costs on stride-2 layers
//! (burn pads asymmetric padding with a copy before the kernel), the separate ReLU6 and
//! residual passes. The kinds are the targets of faster kernels (issue #11).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::nn::conv::Conv2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Tensor, TensorData};
use glimpse::vision::efficientnet::{EfficientNet, EfficientNetConfig};
use glimpse::{Classifier, Result};

/// Per-kind milliseconds of one forward pass.
type Times = BTreeMap<String, f64>;

/// TF "SAME" padding of one spatial side: the output is `ceil(size / stride)` and the odd
/// pixel of padding goes after.
fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

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
    for (block, config) in model.blocks.iter().zip(EfficientNetConfig::lite0().blocks()) {
        let input = x.clone();
        if let Some(expand) = &block.expand_conv {
            x = clock.conv("expand 1×1", expand, x);
            x = relu6(&mut clock, x);
        }
        let k = config.kernel;
        let s = config.stride;
        x = clock.conv(
            &format!("depthwise {k}×{k}/{s}"),
            &block.depthwise_conv,
            x,
        );
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

/// Prints the median per-kind time over `runs` passes on `classifier`'s device, with the
/// plain forward pass's median beside their sum.
pub fn print_profile(classifier: &Classifier, input: &[f32], runs: usize) -> Result<()> {
    let model = classifier.model();
    let batch = || classifier.batch(&[input.to_vec()]);
    // The replay must compute what the model computes, or its times say nothing.
    let reference: TensorData = classifier.logits(batch()).into_data();
    let mut scratch = Times::new();
    let replayed = forward(model, batch(), &mut scratch).into_data();
    replayed.assert_approx_eq::<f32>(&reference, burn::tensor::Tolerance::absolute(1e-4));

    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..runs {
        let mut times = Times::new();
        let x = batch();
        forward(model, x, &mut times);
        totals.push(times.values().sum::<f64>());
        for (kind, ms) in times {
            samples.entry(kind).or_default().push(ms);
        }
        let x = batch();
        let start = Instant::now();
        let _ = std::hint::black_box(classifier.logits(x).into_data());
        plain.push(start.elapsed().as_secs_f64() * 1e3);
    }
    // Median and min: on a busy machine the min is the steadier of the two.
    let stats = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[0])
    };
    let (total, total_min) = stats(totals);
    let mut rows: Vec<(String, (f64, f64))> = samples
        .into_iter()
        .map(|(kind, v)| (kind, stats(v)))
        .collect();
    rows.sort_by(|a, b| b.1.1.total_cmp(&a.1.1));
    println!();
    println!(
        "image model per-layer profile on the CPU, batch 1, {runs} runs (ms per kind, summed over its layers)"
    );
    println!("| kind | median ms | min ms | share of min |");
    println!("| --- | ---: | ---: | ---: |");
    for (kind, (median, min)) in rows {
        println!(
            "| {kind} | {median:.2} | {min:.2} | {:.0}% |",
            100.0 * min / total_min
        );
    }
    println!("| sum of the kinds | {total:.2} | {total_min:.2} | |");
    let (plain_median, plain_min) = stats(plain);
    println!("| plain forward (for comparison) | {plain_median:.2} | {plain_min:.2} | |");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::same_padding;

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(28, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
    }
}
