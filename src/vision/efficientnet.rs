//! EfficientNet-Lite0 (Tan & Le, 2019), the mobile variant of EfficientNet: ReLU6 instead of
//! swish, no squeeze-and-excitation, and stem and head left unscaled.
//!
//! ```text
//! image [N,3,224,224]
//!   └ stem: conv 3×3/2 → 32, ReLU6
//!   └ 16 MBConv blocks in 7 stages:
//!       expand 1×1 (×6), ReLU6 → depthwise k×k/s, ReLU6 → project 1×1 → (+ input when shapes allow)
//!   └ head: conv 1×1 → 1280, ReLU6
//!   └ global average pool → fc → 1000 logits
//! ```
//!
//! On the CPU a single picture runs channels-last (NHWC) through the kernels of
//! [`crate::vision::kernels`]: the stem's output is turned once, and the head's output turned
//! back. Batches, and other devices, run the same weights channels-first through burn's
//! convolutions.
//!
//! Batch norm is folded into the preceding convolution when the checkpoint is converted
//! (see [`crate::convert`]), so every convolution here carries a bias and no norm layer
//! runs at inference. Padding follows TensorFlow's "SAME" rule (asymmetric on stride 2),
//! which is what the pretrained weights were trained with.

use burn::backend::DispatchDevice;
use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use super::kernels::{
    depthwise_same_relu6, depthwise_weights_for_the_cpu, inverted_residual, laid_out_tap_by_tap,
    pointwise, pointwise_add, pointwise_weights_for_the_cpu, stem_same_relu6,
};

/// One stage of MBConv blocks, as in the paper's table 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageConfig {
    pub repeats: usize,
    pub kernel: usize,
    /// Stride of the stage's first block; the others use 1.
    pub stride: usize,
    pub expand_ratio: usize,
    pub in_channels: usize,
    pub out_channels: usize,
}

const fn stage(
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand_ratio: usize,
    in_channels: usize,
    out_channels: usize,
) -> StageConfig {
    StageConfig {
        repeats,
        kernel,
        stride,
        expand_ratio,
        in_channels,
        out_channels,
    }
}

/// Shape of an EfficientNet-Lite network.
#[derive(Debug, Clone, PartialEq)]
pub struct EfficientNetConfig {
    pub stem_channels: usize,
    pub stages: Vec<StageConfig>,
    pub head_channels: usize,
    pub num_classes: usize,
    /// Batch-norm epsilon of the checkpoint, used when folding.
    pub batch_norm_eps: f32,
    /// Side of the square input image.
    pub image_size: usize,
}

impl EfficientNetConfig {
    pub fn lite0() -> Self {
        Self {
            stem_channels: 32,
            stages: vec![
                stage(1, 3, 1, 1, 32, 16),
                stage(2, 3, 2, 6, 16, 24),
                stage(2, 5, 2, 6, 24, 40),
                stage(3, 3, 2, 6, 40, 80),
                stage(3, 5, 1, 6, 80, 112),
                stage(4, 5, 2, 6, 112, 192),
                stage(1, 3, 1, 6, 192, 320),
            ],
            head_channels: 1280,
            num_classes: 1000,
            batch_norm_eps: 1e-3,
            image_size: 224,
        }
    }

    /// The blocks, one entry per MBConv, with the stage's stride on its first block only.
    pub fn blocks(&self) -> Vec<BlockConfig> {
        let mut blocks = Vec::new();
        for stage in &self.stages {
            for i in 0..stage.repeats {
                let in_channels = if i == 0 {
                    stage.in_channels
                } else {
                    stage.out_channels
                };
                blocks.push(BlockConfig {
                    in_channels,
                    out_channels: stage.out_channels,
                    kernel: stage.kernel,
                    stride: if i == 0 { stage.stride } else { 1 },
                    expand_ratio: stage.expand_ratio,
                });
            }
        }
        blocks
    }

    /// A network with zeroed weights, ready to have real ones loaded into it.
    pub fn init(&self, device: &Device) -> EfficientNet {
        let last = self
            .stages
            .last()
            .map_or(self.stem_channels, |s| s.out_channels);
        EfficientNet {
            conv_stem: conv(self.stem_channels, 3, 3, 2, 1, device),
            blocks: self.blocks().iter().map(|b| b.init(device)).collect(),
            conv_head: conv(self.head_channels, last, 1, 1, 1, device),
            fc: LinearConfig::new(self.head_channels, self.num_classes)
                .with_initializer(Initializer::Zeros)
                .init(device),
        }
    }
}

/// One inverted-residual (MBConv) block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expand_ratio: usize,
}

impl BlockConfig {
    pub fn hidden_channels(&self) -> usize {
        self.in_channels * self.expand_ratio
    }

    pub fn has_residual(&self) -> bool {
        self.stride == 1 && self.in_channels == self.out_channels
    }

    fn init(&self, device: &Device) -> MbConv {
        let hidden = self.hidden_channels();
        MbConv {
            expand_conv: (self.expand_ratio != 1)
                .then(|| conv(hidden, self.in_channels, 1, 1, 1, device)),
            depthwise_conv: conv(hidden, hidden, self.kernel, self.stride, hidden, device),
            project_conv: conv(self.out_channels, hidden, 1, 1, 1, device),
            residual: self.has_residual(),
        }
    }
}

/// A convolution with folded batch norm (hence the bias) and TF "SAME" padding.
fn conv(
    out: usize,
    inp: usize,
    kernel: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([inp, out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Same)
        .with_bias(true)
        .with_initializer(Initializer::Zeros)
        .init(device)
}

fn relu6<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.clamp(0.0, 6.0)
}

#[derive(Module, Debug)]
pub struct MbConv {
    pub expand_conv: Option<Conv2d>,
    pub depthwise_conv: Conv2d,
    pub project_conv: Conv2d,
    #[module(skip)]
    pub residual: bool,
}

/// The least input height of a block that the CPU path runs in bands of rows (see
/// [`inverted_residual`]): Lite0's first four blocks, at 112×112 and 56×56, whose expanded maps
/// (1.2–4.8 MB) leave the caches between layers. Natively on the AMD EPYC (AVX2, one thread,
/// 2026-12-07, taking turns) the forward pass's least time went 10.9–11.2 → 10.7–10.9 ms in
/// bands from 56 rows, 10.8–11.3 ms with every block in bands: the smaller maps stay in the
/// caches anyway, and a band of a 7×7 or 14×14 block reads its large weights again.
const IN_BANDS_FROM: usize = 56;

impl MbConv {
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input.clone();
        if let Some(expand) = &self.expand_conv {
            x = relu6(conv_1x1(expand, x));
        }
        x = relu6(burn_conv(&self.depthwise_conv).forward(x));
        x = conv_1x1(&self.project_conv, x);
        if self.residual { x + input } else { x }
    }

    /// [`MbConv::forward`] on channels-last `[N, H, W, C]`, with the CPU kernels.
    fn forward_channels_last(&self, input: Tensor<4>) -> Tensor<4> {
        if input.dims()[1] >= IN_BANDS_FROM {
            let depthwise = &self.depthwise_conv;
            let project = &self.project_conv;
            return inverted_residual(
                input,
                self.expand_conv.as_ref().map(|e| (e.weight.val(), bias(e))),
                depthwise.weight.val(),
                bias(depthwise),
                depthwise.stride[0],
                project.weight.val(),
                bias(project),
                self.residual,
            );
        }
        let mut x = input.clone();
        if let Some(expand) = &self.expand_conv {
            x = pointwise(x, expand.weight.val(), bias(expand), true);
        }
        let depthwise = &self.depthwise_conv;
        x = depthwise_same_relu6(
            x,
            depthwise.weight.val(),
            bias(depthwise),
            depthwise.stride[0],
        );
        let project = &self.project_conv;
        if self.residual {
            pointwise_add(x, project.weight.val(), bias(project), input)
        } else {
            pointwise(x, project.weight.val(), bias(project), false)
        }
    }
}

/// `conv` with the same weights laid out for the CPU's 1×1 kernel (see
/// [`pointwise_weights_for_the_cpu`]).
fn laid_out_for_the_cpu(mut conv: Conv2d) -> Conv2d {
    // The layout leaves the weights' first dimension no longer the output channels.
    conv.bias = Some(Param::from_tensor(bias(&conv)));
    conv.weight = conv.weight.map(pointwise_weights_for_the_cpu);
    conv
}

/// A 1×1 convolution through burn's own operation, whichever layout its weights are in (on
/// the CPU, where its tests run this path too, they may be in panels).
fn conv_1x1(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let bias = conv.bias.as_ref().map(|b| b.val());
    let options = ConvOptions::new(conv.stride, [0, 0], conv.dilation, conv.groups);
    conv2d(x, burn_weight(conv), bias, options)
}

/// `conv`'s weights as burn's convolution takes them, `[Cout, Cin, k, k]`, whichever layout
/// [`EfficientNet::laid_out_for_device`] stored them in.
pub fn burn_weight(conv: &Conv2d) -> Tensor<4> {
    let weight = conv.weight.val();
    let [a, b, c, d] = weight.dims();
    if conv.groups > 1 && laid_out_tap_by_tap([a, b, c, d]) {
        weight.reshape([a * b, d]).transpose().reshape([d, 1, a, b])
    } else if [c, d] == conv.kernel_size {
        weight
    } else {
        // Panels, `[Cout / PANEL, PANEL, Cin, 1]`: the same order of values.
        weight.reshape([a * b, c, 1, 1])
    }
}

/// `conv` with its weights as burn's convolution takes them (see [`burn_weight`]).
fn burn_conv(conv: &Conv2d) -> Conv2d {
    let mut conv = conv.clone();
    conv.weight = Param::from_tensor(burn_weight(&conv));
    conv
}

fn bias(conv: &Conv2d) -> Tensor<1> {
    let bias = conv.bias.as_ref().map(|b| b.val());
    bias.unwrap_or_else(|| Tensor::zeros([conv.weight.dims()[0]], &conv.weight.device()))
}

/// Whether `device` runs the channels-last CPU path.
fn channels_last(device: &Device) -> bool {
    matches!(device.as_dispatch(), DispatchDevice::Flex(_))
}

#[derive(Module, Debug)]
pub struct EfficientNet {
    pub conv_stem: Conv2d,
    pub blocks: Vec<MbConv>,
    pub conv_head: Conv2d,
    pub fc: Linear,
}

impl EfficientNet {
    /// The head's output before pooling, `[N, 1280, H/32, W/32]` (7×7 for a 224 input): each
    /// cell sees mostly its own 32×32 patch, which is what class activation maps read.
    pub fn feature_map(&self, images: Tensor<4>) -> Tensor<4> {
        if channels_last(&images.device()) {
            // A batch (a photo's views, a taught example's) goes through the CPU kernels one
            // picture at a time: a whole batch's maps leave the caches, and at 8 pictures
            // each took 19.6 ms against 14.1 ms alone (burn's convolutions, which batches ran
            // on before, 44 ms; native, one thread, 2026-12-06).
            let n = images.dims()[0];
            if n == 1 {
                return self.feature_map_channels_last(images);
            }
            let maps = (0..n)
                .map(|i| self.feature_map_channels_last(images.clone().slice(i..i + 1)))
                .collect();
            return Tensor::cat(maps, 0);
        }
        self.feature_map_channels_first(images)
    }

    /// [`EfficientNet::feature_map`] through burn's own convolutions, channels-first: what
    /// every device but the CPU runs (public so that the CPU's tests can check this path too).
    pub fn feature_map_channels_first(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = relu6(self.conv_stem.forward(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        relu6(conv_1x1(&self.conv_head, x))
    }

    /// [`EfficientNet::feature_map`] of one picture through the CPU kernels, channels-last
    /// from the stem to the head.
    fn feature_map_channels_last(&self, image: Tensor<4>) -> Tensor<4> {
        let stem = &self.conv_stem;
        let mut x = stem_same_relu6(image, stem.weight.val(), bias(stem), stem.stride[0]);
        for block in &self.blocks {
            x = block.forward_channels_last(x);
        }
        let head = &self.conv_head;
        pointwise(x, head.weight.val(), bias(head), true).permute([0, 3, 1, 2])
    }

    /// Pooled features `[N, 1280]`: what the classifier's last layer sees (the spatial mean of
    /// [`EfficientNet::feature_map`]).
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        Self::pool(self.feature_map(images))
    }

    /// Global average pooling of a feature map `[N, C, H, W]` into `[N, C]`.
    pub fn pool(feature_map: Tensor<4>) -> Tensor<2> {
        let [n, c, h, w] = feature_map.dims();
        if channels_last(&feature_map.device()) {
            // The CPU's map is a channels-first view of channels-last values: averaged as rows
            // of channels where they lie, not copied channels-first first (0.007 against
            // 0.055 ms, native).
            return feature_map
                .permute([0, 2, 3, 1])
                .reshape([n, h * w, c])
                .mean_dim(1)
                .reshape([n, c]);
        }
        feature_map
            .reshape([n, c, h * w])
            .mean_dim(2)
            .reshape([n, c])
    }

    /// The network with its weights laid out for its device's kernels, which loading does
    /// once. On the CPU every 1×1 convolution's weights are stored as its kernel reads them:
    /// in panels of 16 output channels, each panel's weights input channel by input channel,
    /// where the output channels fill whole panels, else input-channel-major (the `[Cin, Cout]`
    /// matrix it multiplies by); every depthwise convolution's tap by tap, `[k·k, C]`.
    /// [`burn_weight`] gives either back in burn's layout. Other devices keep burn's layout.
    pub fn laid_out_for_device(mut self) -> Self {
        if !channels_last(&self.conv_head.weight.device()) {
            return self;
        }
        for block in &mut self.blocks {
            if let Some(expand) = block.expand_conv.take() {
                block.expand_conv = Some(laid_out_for_the_cpu(expand));
            }
            block.depthwise_conv.weight = block
                .depthwise_conv
                .weight
                .clone()
                .map(depthwise_weights_for_the_cpu);
            block.project_conv = laid_out_for_the_cpu(block.project_conv.clone());
        }
        self.conv_head = laid_out_for_the_cpu(self.conv_head);
        self
    }

    /// Logits `[N, 1000]` for normalized images `[N, 3, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.fc.forward(self.features(images))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_sixteen_blocks_with_the_papers_strides() {
        let blocks = EfficientNetConfig::lite0().blocks();
        assert_eq!(blocks.len(), 16);
        let strides: Vec<usize> = blocks.iter().map(|b| b.stride).collect();
        assert_eq!(strides, [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]);
        assert!(
            !blocks[0].has_residual(),
            "32 → 16 channels cannot add the input"
        );
        assert!(blocks[2].has_residual());
    }

    #[test]
    fn weights_laid_out_for_the_cpu_kernel_are_the_same_weights() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        // 40 output channels are input-channel-major, 48 three panels.
        for cout in [40, 48] {
            let mut conv = conv(cout, 24, 1, 1, 1, &device);
            conv.weight = conv
                .weight
                .map(|w| w.random_like(Distribution::Uniform(-1.0, 1.0)));
            let x = Tensor::<4>::random([1, 5, 7, 24], Distribution::Uniform(-3.0, 3.0), &device);
            let before = pointwise(x.clone(), conv.weight.val(), bias(&conv), true);
            let weight = conv.weight.val().into_data();
            let conv = laid_out_for_the_cpu(conv);
            assert_eq!(burn_weight(&conv).into_data(), weight);
            pointwise(x, conv.weight.val(), bias(&conv), true)
                .into_data()
                .assert_eq(&before.into_data(), true);
        }
    }

    #[test]
    fn depthwise_weights_laid_out_for_the_cpu_kernel_are_the_same_weights() {
        use burn::tensor::Distribution;
        let device = Device::flex();
        for (k, stride) in [(3, 1), (5, 2)] {
            let mut conv = conv(48, 48, k, stride, 48, &device);
            conv.weight = conv
                .weight
                .map(|w| w.random_like(Distribution::Uniform(-1.0, 1.0)));
            let x = Tensor::<4>::random([1, 9, 11, 48], Distribution::Uniform(-3.0, 3.0), &device);
            let run = |conv: &Conv2d| {
                depthwise_same_relu6(x.clone(), conv.weight.val(), bias(conv), stride).into_data()
            };
            let before = run(&conv);
            let weight = conv.weight.val().into_data();
            let mut laid_out = conv.clone();
            laid_out.weight = laid_out.weight.map(depthwise_weights_for_the_cpu);
            assert_eq!(laid_out.weight.dims(), [k, k, 1, 48]);
            assert_eq!(burn_weight(&laid_out).into_data(), weight);
            run(&laid_out).assert_eq(&before, true);
            // burn's own convolution, channels-first, takes them back in its layout.
            let planar = x.clone().permute([0, 3, 1, 2]);
            burn_conv(&laid_out)
                .forward(planar.clone())
                .into_data()
                .assert_eq(&conv.forward(planar).into_data(), true);
        }
    }

    #[test]
    fn forward_gives_one_logit_row_per_image() {
        let device = Device::flex();
        let model = EfficientNetConfig::lite0().init(&device);
        let logits = model.forward(Tensor::zeros([2, 3, 224, 224], &device));
        assert_eq!(logits.dims(), [2, 1000]);
    }
}
