//! CPU kernels for EfficientNet-Lite's layers, plugged into burn as a backend extension.
//!
//! [`LiteKernels`] is a burn backend extension trait: the CPU backend (`Flex`) implements it
//! with the hand-written kernels below, every other backend (WebGPU, native wgpu) with the
//! default bodies, which compose burn's own operations. The network stays one burn `Module`
//! and calls the extension through [`depthwise_same_relu6`].
//!
//! On the CPU the network runs channels-last (NHWC) between its stem and head: a depthwise
//! convolution then vectorizes across channels (every EfficientNet-Lite0 width is a multiple
//! of 16, so a vector is always full, whatever the spatial size, down to 7×7), and a 1×1
//! convolution is one matrix product over all pixels.
//!
//! The depthwise kernel computes TF "SAME" padding inside the kernel (taps that fall outside
//! the image are skipped; no padded copy is made), and adds the folded batch-norm bias and
//! clamps to ReLU6 while the sums are still in registers. The 1×1 kernel likewise starts its
//! sums from the bias (and the block's residual) and clamps them before they are stored, and
//! reads its weights where the model keeps them, packed once at load in panels of 16 output
//! channels ([`pointwise_weights_for_the_cpu`]), instead of packing them per call. Every
//! kernel is written once over macerator, the SIMD abstraction burn's CPU backend uses, so the
//! same source becomes AVX-512/AVX2 code natively (picked at run time) and SIMD128 code in the
//! browser.
//!
//! The first, widest blocks run their three layers a band of rows at a time
//! ([`mbconv_nhwc`]), through the same row and tile functions, so that their expanded maps
//! never leave the caches.

#[cfg(feature = "gpu")]
use burn::backend::Cube;
use std::mem::MaybeUninit;

use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Bytes, DType, Shape, Tensor, TensorData};
use macerator::{Scalar, Simd, Vector, vload_unaligned, vstore_unaligned};

use crate::runtime::{cpu_threads, prefetch};
// In the browser a pool thread that fell asleep between two layers wakes through
// `memory.atomic.wait`, slowly beside a layer of a millisecond or less: the layers share their
// pieces with helpers that stay awake (2 threads: 25–28 → 21–22 ms a frame, 2026-12-07).
// Natively the pool's own wake-up is quick (10.7 against 10.6 ms a pass on 2 threads).
#[cfg(target_arch = "wasm32")]
use crate::runtime::awake::for_each_chunk;
#[cfg(not(target_arch = "wasm32"))]
use crate::runtime::for_each_chunk;

/// TF "SAME" padding of one spatial side for `kernel` and `stride`: the output is
/// `ceil(size / stride)` and the odd pixel of padding goes after.
pub fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

/// EfficientNet-Lite's fused layers as burn operations.
// Builds without wgpu (the WASI converter, the browser's threaded module) have the CPU alone.
#[cfg_attr(feature = "gpu", backend_extension(Flex, Cube))]
#[cfg_attr(not(feature = "gpu"), backend_extension(Flex))]
pub trait LiteKernels: Backend {
    /// Depthwise convolution of a channels-last `x` `[N, H, W, C]` with `weight` `[C, 1, k, k]`
    /// (burn's layout for `groups == C`; on the CPU also `[k, k, 1, C]`, as
    /// [`depthwise_weights_for_the_cpu`] lays them out), `bias` `[C]`, TF "SAME" padding and
    /// stride `stride`, then ReLU6; returns `[N, ceil(H/s), ceil(W/s), C]`, channels-last.
    fn depthwise_same_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        use burn::backend::TensorMetadata;
        let channels = x.shape().dims::<4>()[3];
        let x = Self::float_permute(x, &[0, 3, 1, 2]);
        same_conv_relu6_channels_last::<Self>(x, weight, bias, stride, channels)
    }

    /// The stem: a full convolution of a planar `x` `[N, Cin, H, W]` (the network's input)
    /// with `weight` `[Cout, Cin, k, k]`, `bias` `[Cout]`, TF "SAME" padding and stride
    /// `stride`, then ReLU6; returns `[N, ceil(H/s), ceil(W/s), Cout]`, channels-last, which is
    /// where the CPU path turns to channels-last.
    fn stem_same_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        same_conv_relu6_channels_last::<Self>(x, weight, bias, stride, 1)
    }

    /// 1×1 convolution of a channels-last `x` `[N, H, W, Cin]` with `weight`
    /// `[Cout, Cin, 1, 1]` (the CPU's kernel also takes what [`pointwise_weights_for_the_cpu`]
    /// lays out) and `bias` `[Cout]`, then ReLU6 when `relu6`; returns `[N, H, W, Cout]`.
    fn pointwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu6: bool,
    ) -> FloatTensor<Self> {
        let y = pointwise_by_matmul::<Self>(x, weight, bias);
        if relu6 {
            Self::float_clamp(y, 0.0.into(), 6.0.into())
        } else {
            y
        }
    }

    /// [`LiteKernels::pointwise`] without ReLU6, plus `residual` `[N, H, W, Cout]`.
    fn pointwise_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::float_add(pointwise_by_matmul::<Self>(x, weight, bias), residual)
    }

    /// An inverted-residual block on a channels-last `x` `[N, H, W, Cin]`: the 1×1 expansion
    /// (`expand_weight`, `expand_bias`) + ReLU6, the depthwise "SAME" convolution
    /// (`depthwise_weight` `[C, 1, k, k]`, `depthwise_bias`, `stride`) + ReLU6, then the 1×1
    /// projection, plus `x` when `residual`; the three layers' ops one after another.
    #[allow(clippy::too_many_arguments)]
    fn inverted_residual(
        x: FloatTensor<Self>,
        expand_weight: FloatTensor<Self>,
        expand_bias: FloatTensor<Self>,
        depthwise_weight: FloatTensor<Self>,
        depthwise_bias: FloatTensor<Self>,
        stride: usize,
        project_weight: FloatTensor<Self>,
        project_bias: FloatTensor<Self>,
        residual: bool,
    ) -> FloatTensor<Self> {
        let y = Self::pointwise(x.clone(), expand_weight, expand_bias, true);
        depthwise_then_project::<Self>(
            y,
            (depthwise_weight, depthwise_bias, stride),
            (project_weight, project_bias),
            residual.then_some(x),
        )
    }

    /// [`LiteKernels::inverted_residual`] without the expansion: a depthwise-separable block.
    #[allow(clippy::too_many_arguments)]
    fn depthwise_separable(
        x: FloatTensor<Self>,
        depthwise_weight: FloatTensor<Self>,
        depthwise_bias: FloatTensor<Self>,
        stride: usize,
        project_weight: FloatTensor<Self>,
        project_bias: FloatTensor<Self>,
        residual: bool,
    ) -> FloatTensor<Self> {
        depthwise_then_project::<Self>(
            x.clone(),
            (depthwise_weight, depthwise_bias, stride),
            (project_weight, project_bias),
            residual.then_some(x),
        )
    }
}

/// The depthwise layer + ReLU6 and the projection (+ `residual`) of a block, one op after the
/// other: the other backends' blocks.
fn depthwise_then_project<B: LiteKernels>(
    y: FloatTensor<B>,
    (depthwise_weight, depthwise_bias, stride): (FloatTensor<B>, FloatTensor<B>, usize),
    (project_weight, project_bias): (FloatTensor<B>, FloatTensor<B>),
    residual: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    let y = B::depthwise_same_relu6(y, depthwise_weight, depthwise_bias, stride);
    match residual {
        Some(x) => B::pointwise_add(y, project_weight, project_bias, x),
        None => B::pointwise(y, project_weight, project_bias, false),
    }
}

/// burn's convolution of a planar `x` with TF "SAME" padding (as asymmetric pairs), then
/// ReLU6, turned channels-last: the other backends' stem and depthwise layers.
fn same_conv_relu6_channels_last<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
    stride: usize,
    groups: usize,
) -> FloatTensor<B> {
    use burn::backend::TensorMetadata;
    let [_, _, h, w] = x.shape().dims();
    let k = weight.shape().dims::<4>()[2];
    let options = ConvOptions::new_with_padding(
        [stride, stride],
        [same_padding(h, k, stride), same_padding(w, k, stride)],
        [1, 1],
        groups,
    );
    let y = B::conv2d(x, weight, Some(bias), options);
    let y = B::float_clamp(y, 0.0.into(), 6.0.into());
    B::float_permute(y, &[0, 2, 3, 1])
}

/// burn's own operations for a channels-last 1×1 convolution: one matrix product over all
/// pixels, then the bias.
fn pointwise_by_matmul<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: FloatTensor<B>,
) -> FloatTensor<B> {
    use burn::backend::TensorMetadata;
    let [n, h, w, c] = x.shape().dims();
    let [out, _, _, _] = weight.shape().dims();
    let weight = B::float_reshape(weight, Shape::from([out, c]));
    let weight = B::float_swap_dims(weight, 0, 1);
    let x = B::float_reshape(x, Shape::from([n * h * w, c]));
    let y = B::float_matmul(x, weight);
    let y = B::float_add(y, B::float_reshape(bias, Shape::from([1, out])));
    B::float_reshape(y, Shape::from([n, h, w, out]))
}

#[cfg(feature = "gpu")]
impl LiteKernels for Cube {}

impl LiteKernels for Flex {
    fn stem_same_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let dims: [usize; 4] = x.layout().shape().dims();
        let [cout, cin, k, _] = weight.layout().shape().dims::<4>();
        let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
        // [Cout, Cin·k·k] → [Cin·k·k, Cout]: each tap's weights for a run of output channels.
        let taps_per_channel = cin * k * k;
        let mut taps = vec![0.0; taps_per_channel * cout];
        for (co, w) in f32s(&weight).chunks_exact(taps_per_channel).enumerate() {
            for (tap, &v) in w.iter().enumerate() {
                taps[tap * cout + co] = v;
            }
        }
        let (out, out_dims) = stem_nhwc(f32s(&x), dims, &taps, k, f32s(&bias), stride);
        out.into_tensor(out_dims)
    }

    fn depthwise_same_relu6(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: usize,
    ) -> FloatTensor<Self> {
        let dims: [usize; 4] = x.layout().shape().dims();
        let (taps, k) = depthwise_taps(weight);
        let (x, bias) = (contiguous(x), contiguous(bias));
        let (out, out_dims) = depthwise_nhwc(f32s(&x), dims, f32s(&taps), k, f32s(&bias), stride);
        out.into_tensor(out_dims)
    }

    fn pointwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        relu6: bool,
    ) -> FloatTensor<Self> {
        pointwise_flex(x, weight, bias, None, relu6)
    }

    fn pointwise_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        residual: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        pointwise_flex(x, weight, bias, Some(residual), false)
    }

    fn inverted_residual(
        x: FlexTensor,
        expand_weight: FlexTensor,
        expand_bias: FlexTensor,
        depthwise_weight: FlexTensor,
        depthwise_bias: FlexTensor,
        stride: usize,
        project_weight: FlexTensor,
        project_bias: FlexTensor,
        residual: bool,
    ) -> FlexTensor {
        let expand = Some((expand_weight, expand_bias));
        let depthwise = (depthwise_weight, depthwise_bias, stride);
        block_flex(
            x,
            expand,
            depthwise,
            (project_weight, project_bias),
            residual,
        )
    }

    fn depthwise_separable(
        x: FlexTensor,
        depthwise_weight: FlexTensor,
        depthwise_bias: FlexTensor,
        stride: usize,
        project_weight: FlexTensor,
        project_bias: FlexTensor,
        residual: bool,
    ) -> FlexTensor {
        let depthwise = (depthwise_weight, depthwise_bias, stride);
        block_flex(x, None, depthwise, (project_weight, project_bias), residual)
    }
}

/// A block through [`mbconv_nhwc`]: `expand` and `project` as (weight, bias), `depthwise` as
/// (weight, bias, stride).
fn block_flex(
    x: FlexTensor,
    expand: Option<(FlexTensor, FlexTensor)>,
    (depthwise_weight, depthwise_bias, stride): (FlexTensor, FlexTensor, usize),
    (project_weight, project_bias): (FlexTensor, FlexTensor),
    residual: bool,
) -> FlexTensor {
    let dims: [usize; 4] = x.layout().shape().dims();
    let hidden = depthwise_bias.layout().shape().num_elements();
    let cout = project_bias.layout().shape().num_elements();
    let x = contiguous(x);
    let expand = expand.map(|(weight, bias)| {
        (
            one_by_one_weights(weight, dims[3], hidden),
            contiguous(bias),
        )
    });
    let (taps, k) = depthwise_taps(depthwise_weight);
    let depthwise_bias = contiguous(depthwise_bias);
    let project = (
        one_by_one_weights(project_weight, hidden, cout),
        contiguous(project_bias),
    );
    fn layer(((weights, panels), bias): &((FlexTensor, bool), FlexTensor)) -> OneByOne<'_> {
        OneByOne {
            weights: Weights::new(*panels, f32s(weights)),
            bias: f32s(bias),
        }
    }
    let (out, out_dims) = mbconv_nhwc(
        f32s(&x),
        dims,
        expand.as_ref().map(layer),
        f32s(&taps),
        k,
        f32s(&depthwise_bias),
        stride,
        layer(&project),
        residual,
    );
    out.into_tensor(out_dims)
}

/// A depthwise convolution's weights as the kernel reads them, `[k·k, C]` (one tap's weights
/// for a run of channels), and `k`: in place when [`depthwise_weights_for_the_cpu`] laid them
/// out (as the model does at load), else copied from burn's `[C, 1, k, k]`.
fn depthwise_taps(weight: FlexTensor) -> (FlexTensor, usize) {
    let [a, b, c, d] = weight.layout().shape().dims::<4>();
    if laid_out_tap_by_tap([a, b, c, d]) {
        assert!(a == b && c == 1, "depthwise weights {:?}", [a, b, c, d]);
        return (contiguous(weight), a);
    }
    let (channels, k) = (a, c);
    let weight = contiguous(weight);
    let mut taps = vec![0.0; k * k * channels];
    for (ch, w) in f32s(&weight).chunks_exact(k * k).enumerate() {
        for (tap, &v) in w.iter().enumerate() {
            taps[tap * channels + ch] = v;
        }
    }
    let layout = Layout::contiguous(Shape::from([k, k, 1, channels]));
    (
        FlexTensor::new(Bytes::from_elems(taps), layout, DType::F32),
        k,
    )
}

/// Whether depthwise weights of `dims` are laid out tap by tap, `[k, k, 1, C]`
/// ([`depthwise_weights_for_the_cpu`]), rather than in burn's `[C, 1, k, k]`. (With `k = 1`
/// and one channel the two are the same.)
pub fn laid_out_tap_by_tap([_, b, c, d]: [usize; 4]) -> bool {
    b != 1 || c != d
}

/// A depthwise convolution's weights `[C, 1, k, k]` stored as its CPU kernel reads them,
/// `[k, k, 1, C]` (`[k·k, C]` in memory: each tap's weights for every channel), their first
/// value at the start of a cache line, so that no forward pass transposes them again.
pub fn depthwise_weights_for_the_cpu(weight: Tensor<4>) -> Tensor<4> {
    let [channels, one, k, k2] = weight.dims();
    assert!(one == 1 && k == k2, "depthwise weights {:?}", weight.dims());
    stored_from_a_line(weight, k * k, |ch, tap| tap * channels + ch).reshape([k, k, 1, channels])
}

/// `weight`'s values in a new buffer whose first value starts a 64-byte cache line: value `j`
/// of its row `i` (rows of `row_len`, in `weight`'s order) put at `place(i, j)`.
fn stored_from_a_line(
    weight: Tensor<4>,
    row_len: usize,
    place: impl Fn(usize, usize) -> usize,
) -> Tensor<1> {
    let device = weight.device();
    let data = weight.into_data();
    let values = data.as_slice::<f32>().expect("f32 weights");
    let mut padded = Vec::with_capacity(values.len() + LINE - 1);
    let start = to_next_line(padded.as_ptr());
    padded.resize(start + values.len(), 0.0);
    // A loop rather than burn's permute and copy: in wasm that copy of a three-dimensional
    // view made the cached model load ~40 ms slower (2026-12-07).
    let stored = &mut padded[start..];
    for (i, row) in values.chunks_exact(row_len).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            stored[place(i, j)] = v;
        }
    }
    let len = padded.len();
    Tensor::<1>::from_data(TensorData::new(padded, [len]), &device).slice(start..len)
}

/// A 1×1 convolution's weights of `cin` to `cout` channels, in place when
/// [`pointwise_weights_for_the_cpu`] laid them out in panels or input-major (as the model does
/// at load; `true` for panels), else copied `[Cin, Cout]`.
fn one_by_one_weights(weight: FlexTensor, cin: usize, cout: usize) -> (FlexTensor, bool) {
    let [a, b, c, _] = weight.layout().shape().dims::<4>();
    let panels = b == PANEL && c == cin && a * PANEL == cout;
    assert!(
        panels || (a == cout && b == cin),
        "1×1 convolution of {cin} channels to {cout} with weights {:?}",
        [a, b, c]
    );
    let weights = contiguous(if panels {
        weight.transpose(1, 2)
    } else {
        weight.transpose(0, 1)
    });
    (weights, panels)
}

/// A channels-last 1×1 convolution on the CPU through [`pointwise_nhwc`]. The weights are
/// read in place when [`pointwise_weights_for_the_cpu`] laid them out (as the model does at
/// load), else copied `[Cin, Cout]`.
fn pointwise_flex(
    x: FlexTensor,
    weight: FlexTensor,
    bias: FlexTensor,
    residual: Option<FlexTensor>,
    relu6: bool,
) -> FlexTensor {
    let [n, h, w, cin] = x.layout().shape().dims::<4>();
    let cout = bias.layout().shape().num_elements();
    let (weights, panels) = one_by_one_weights(weight, cin, cout);
    let (x, bias) = (contiguous(x), contiguous(bias));
    let residual = residual.map(contiguous);
    let out = pointwise_nhwc(
        f32s(&x),
        cin,
        Weights::new(panels, f32s(&weights)),
        f32s(&bias),
        residual.as_ref().map(f32s),
        relu6,
    );
    out.into_tensor([n, h, w, cout])
}

/// A 1×1 convolution's weights `[Cout, Cin, 1, 1]` stored as the CPU kernel reads them: in
/// panels of [`PANEL`] output channels, `[Cout / PANEL, PANEL, Cin, 1]` viewing
/// `[Cout / PANEL, Cin, PANEL]` in memory ([`Weights::Panels`]), when the output channels fill
/// whole panels, else `[Cout, Cin, 1, 1]` viewing `[Cin, Cout]` ([`Weights::InputMajor`]).
/// Either way the first row of weights starts a 64-byte cache line.
pub fn pointwise_weights_for_the_cpu(weight: Tensor<4>) -> Tensor<4> {
    let [cout, cin, kh, kw] = weight.dims();
    assert_eq!(
        [kh, kw],
        [1, 1],
        "only 1×1 convolutions are laid out in panels"
    );
    let panels = cout.is_multiple_of(PANEL);
    // Each row of weights the kernel reads starts a 64-byte cache line (a row of 16 or more
    // floats then spans whole lines): a 1×1 product over rows 16 bytes into a line, as the
    // allocator leaves them, took 8–19% longer (the 7×7 layers, native, 2026-12-06).
    let stored = stored_from_a_line(weight, cin, |co, k| weight_at(panels, k, co, cin, cout));
    if panels {
        stored
            .reshape([cout / PANEL, cin, PANEL, 1])
            .swap_dims(1, 2)
    } else {
        stored.reshape([cin, cout, 1, 1]).swap_dims(0, 1)
    }
}

/// Where input channel `k`'s weight for output channel `col` lies, in panels or input-major.
fn weight_at(panels: bool, k: usize, col: usize, cin: usize, cout: usize) -> usize {
    if panels {
        (col / PANEL * cin + k) * PANEL + col % PANEL
    } else {
        k * cout + col
    }
}

/// Output channels per panel of [`Weights::Panels`].
pub(crate) const PANEL: usize = 16;

/// How a 1×1 convolution's weights lie in memory.
#[derive(Clone, Copy)]
pub(crate) enum Weights<'a> {
    /// `[Cin, Cout]`: a row of `Cout` weights per input channel.
    InputMajor(&'a [f32]),
    /// `[Cout / PANEL, Cin, PANEL]`: each run of [`PANEL`] output channels' weights together,
    /// a 64-byte line per input channel, so that a tile of columns reads a few lines one after
    /// another instead of a line `Cout` floats after the last (what the model stores for the
    /// CPU when `Cout` is a multiple of [`PANEL`]; see
    /// [`crate::vision::efficientnet::EfficientNet::laid_out_for_device`]).
    Panels(&'a [f32]),
}

impl<'a> Weights<'a> {
    fn new(panels: bool, values: &'a [f32]) -> Self {
        if panels {
            Weights::Panels(values)
        } else {
            Weights::InputMajor(values)
        }
    }

    fn len(&self) -> usize {
        self.parts().0.len()
    }

    /// The weights, and whether they lie in panels.
    fn parts(&self) -> (&[f32], bool) {
        match *self {
            Weights::InputMajor(w) => (w, false),
            Weights::Panels(w) => (w, true),
        }
    }

    /// Where output channel `col`'s weight for input channel 0 lies, and how far on the
    /// next input channel's.
    fn column(&self, col: usize, cin: usize, cout: usize) -> (*const f32, usize) {
        let (w, panels) = self.parts();
        let stride = if panels { PANEL } else { cout };
        (w[weight_at(panels, 0, col, cin, cout)..].as_ptr(), stride)
    }

    fn at(&self, k: usize, col: usize, cin: usize, cout: usize) -> f32 {
        let (w, panels) = self.parts();
        w[weight_at(panels, k, col, cin, cout)]
    }
}

/// A channels-last 1×1 convolution: `out` `[M, Cout]` = `x` `[M, Cin]` · `weights`
/// `[Cin, Cout]` + `bias` (+ `residual` `[M, Cout]`), then ReLU6 when `relu6`.
///
/// Tiles of [`TILE_ROWS`] pixels by two vectors of output channels keep their sums in
/// registers over all input channels: each step broadcasts one input value per pixel and
/// loads one row of the weights (`V` vectors, from [`Weights`] laid out at load), so they are
/// read where they are instead of being packed per call as a general matrix product packs them
/// (natively, all of Lite0's 1×1 products took 6.3 ms here against 8.5 ms through the `gemm`
/// crate). The sums start from the bias (and residual) and are clamped on their way out, so
/// the output is written once.
pub(crate) fn pointwise_nhwc(
    x: &[f32],
    cin: usize,
    weights: Weights,
    bias: &[f32],
    residual: Option<&[f32]>,
    relu6: bool,
) -> Output {
    let cout = bias.len();
    assert!(
        cin > 0 && x.len().is_multiple_of(cin),
        "input length is not a multiple of its channels"
    );
    let m = x.len() / cin;
    assert_eq!(
        weights.len(),
        cin * cout,
        "weights do not match the channels"
    );
    assert!(
        !matches!(weights, Weights::Panels(_)) || cout.is_multiple_of(PANEL),
        "{cout} channels are not whole panels"
    );
    if let Some(r) = residual {
        assert_eq!(r.len(), m * cout, "residual does not match the output");
    }
    // Blocks of pixels whose inputs (≈ 64 KiB) stay in the second-level cache while every
    // panel of weights passes over them, so that the weights are read once per block. With
    // 16 KiB blocks the 7×7 layers' weights (0.9–1.6 MB each, beyond that cache) came from
    // memory once per six pixels: the projections took 5.0 ms a pass natively against 4.4 ms
    // now (2026-12-06). A multiple of the tile's rows; also the pieces threads share out.
    let mut rows = 16384 / cin;
    // With threads, at least one block for each: the 7×7 and 14×14 layers are a block or
    // two otherwise.
    let threads = cpu_threads();
    if threads > 1 {
        rows = rows.min(m.div_ceil(threads));
    }
    let rows = rows.clamp(TILE_ROWS, m.max(TILE_ROWS)).div_ceil(TILE_ROWS) * TILE_ROWS;
    let fill = |out: &mut [MaybeUninit<f32>]| {
        for_each_chunk(out, rows * cout, |(index, out)| {
            let first = index * rows;
            let count = out.len() / cout;
            let block = Product {
                x: &x[first * cin..(first + count) * cin],
                cin,
                weights,
                bias,
                residual: residual.map(|r| &r[first * cout..(first + count) * cout]),
                relu6,
            };
            pointwise_rows(&block, out);
        })
    };
    // SAFETY: the tiles and the scalar tail of `pointwise_rows` cover every row and column.
    unsafe { Output::filled(m * cout, fill) }
}

/// Rows of a tile. Natively six rows by two vectors of columns keep 12 sums, two weight vectors
/// and a broadcast input in registers (16 on AVX2). V8 keeps fewer SIMD values in registers:
/// with six rows it spilled, and all of Lite0's 1×1 products took 32 ms under Node 20 against
/// 27 ms with four rows (three by three vectors 28 ms, two by four 27 ms).
#[cfg(not(target_arch = "wasm32"))]
const TILE_ROWS: usize = 6;
#[cfg(target_arch = "wasm32")]
const TILE_ROWS: usize = 4;

/// How many rows of weights ahead the first tile of a block asks the caches for.
const WEIGHT_ROWS_AHEAD: usize = 16;

/// One block of pixels of a 1×1 convolution: what [`pointwise_nhwc`] was given, its rows
/// narrowed to the block.
#[derive(Clone, Copy)]
struct Product<'a> {
    x: &'a [f32],
    cin: usize,
    weights: Weights<'a>,
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    relu6: bool,
}

#[macerator::with_simd]
fn pointwise_rows<'a, S: Simd>(p: &'a Product<'a>, out: &'a mut [MaybeUninit<f32>]) {
    let lanes = S::lanes32();
    let Product {
        x,
        cin,
        weights,
        bias,
        residual,
        relu6,
    } = *p;
    let cout = bias.len();
    let m = out.len() / cout;
    let mut col = 0;
    // AVX-512 has 32 vector registers: six rows by four vectors keep 24 sums, four weight
    // vectors and a broadcast input in them, and each input value broadcast serves twice the
    // multiply-adds (Lite0's forward pass 7.9 → 7.1–7.2 ms on one thread, 2026-12-07).
    #[cfg(target_arch = "x86_64")]
    if lanes >= 16 {
        while col + 4 * lanes <= cout {
            tiles::<S, 4>(p, out, m, col);
            col += 4 * lanes;
        }
    }
    while col + 2 * lanes <= cout {
        tiles::<S, 2>(p, out, m, col);
        col += 2 * lanes;
    }
    while col + lanes <= cout {
        tiles::<S, 1>(p, out, m, col);
        col += lanes;
    }
    // Columns left over by a wide vector (AVX-512's 16 lanes against the projections' 24 and
    // 40 channels) take one more vector ending at the last column: the columns it shares with
    // the one before are computed again by the same operations in the same order, so they are
    // written with the values they already hold. A scalar loop over them took 40% of the
    // forward pass on AVX-512 (one thread, 15.2–15.8 → 9.1–9.3 ms, 2026-12-07).
    if col < cout && cout >= lanes {
        tiles::<S, 1>(p, out, m, cout - lanes);
        col = cout;
    }
    for row in 0..m {
        for c in col..cout {
            let mut acc = bias[c] + residual.map_or(0.0, |r| r[row * cout + c]);
            for k in 0..cin {
                acc += x[row * cin + k] * weights.at(k, c, cin, cout);
            }
            out[row * cout + c].write(if relu6 { acc.clamp(0.0, 6.0) } else { acc });
        }
    }
}

/// Every row of the block for the `V` vectors of columns from `col`, in tiles of
/// [`tile_rows`].
#[inline(always)]
fn tiles<S: Simd, const V: usize>(p: &Product, out: &mut [MaybeUninit<f32>], m: usize, col: usize) {
    let mut row = 0;
    while row < m {
        let rows = tile_rows(m - row);
        match rows {
            1 => p.tile::<S, 1, V>(out, row, col),
            2 => p.tile::<S, 2, V>(out, row, col),
            3 => p.tile::<S, 3, V>(out, row, col),
            4 => p.tile::<S, 4, V>(out, row, col),
            5 => p.tile::<S, 5, V>(out, row, col),
            _ => p.tile::<S, TILE_ROWS, V>(out, row, col),
        }
        row += rows;
    }
}

/// Rows of the next tile when `left` rows remain. A tile of `R` rows keeps `2R` sums going:
/// from four rows on (eight sums) the multiply-adds overlap fully, below that each step waits
/// for the previous one's latency, so a lone last row costs two thirds of a full tile. Natively
/// the last rows are split into tiles of four to six instead (49 pixels, every 7×7 layer: 8×6
/// + 1 → 7×6 + 4 + 3; a block of 13: 6 + 6 + 1 → 5 + 4 + 4).
fn tile_rows(left: usize) -> usize {
    if TILE_ROWS != 6 {
        return left.min(TILE_ROWS);
    }
    match left {
        0..=6 => left,
        7 | 8 => 4,
        9 | 13 => 5,
        _ => 6,
    }
}

impl Product<'_> {
    /// `R` rows from `row` by `V` vectors of columns: the sums start from the bias (and
    /// residual), take one input-channel step per iteration, and are clamped on the way out.
    #[inline(always)]
    fn tile<S: Simd, const R: usize, const V: usize>(
        &self,
        out: &mut [MaybeUninit<f32>],
        row: usize,
        col: usize,
    ) {
        let lanes = S::lanes32();
        let cout = self.bias.len();
        let cin = self.cin;
        assert!((row + R) * cin <= self.x.len() && (row + R) * cout <= out.len());
        assert!(col + V * lanes <= cout && self.weights.len() == cin * cout);
        // A vector never straddles two panels: lanes (4, 8 or 16) divide PANEL, and every
        // tile's columns start at a multiple of the lanes, but for the last vector of a
        // `Cout` that is not a multiple of them, which only input-major weights have.
        assert!(matches!(self.weights, Weights::InputMajor(_)) || col.is_multiple_of(lanes));
        // SAFETY: the asserts above bound every row (`row..row + R`), column
        // (`col..col + V·lanes`) and input channel (`0..cin`) read or written below.
        unsafe {
            let bias = self.bias.as_ptr().add(col);
            let mut acc: [[Vector<S, f32>; V]; R] = core::array::from_fn(|_| {
                core::array::from_fn(|v| vload_unaligned::<S, _>(bias.add(v * lanes)))
            });
            if let Some(r) = self.residual {
                for (i, acc) in acc.iter_mut().enumerate() {
                    let r = r.as_ptr().add((row + i) * cout + col);
                    for (v, a) in acc.iter_mut().enumerate() {
                        *a += vload_unaligned::<S, _>(r.add(v * lanes));
                    }
                }
            }
            let x = self.x.as_ptr().add(row * cin);
            let mut w: [*const f32; V] =
                core::array::from_fn(|v| self.weights.column(col + v * lanes, cin, cout).0);
            let stride = self.weights.column(col, cin, cout).1;
            // The block's first tile meets each row of weights first; they come from memory
            // or the last-level cache then (the 7×7 layers' are 0.9–1.6 MB). Input-major,
            // a row lies `cout` floats after the last, which the hardware's prefetchers,
            // confined to a page, follow only a few rows at a time: asking for them 16 rows
            // ahead took the 7×7 projections from 0.35 to 0.33 ms a layer in the network
            // (native, 2026-12-06). In panels each vector's weights are a stream of lines one
            // after another; asking for each stream's line 16 ahead still helped (the forward
            // pass, taking turns with onnxruntime: 1.01–1.03× its time, against 1.04–1.07×
            // without and 1.04–1.10× asking for the first stream's alone, 2026-12-07).
            let prefetch_ahead = if row == 0 {
                WEIGHT_ROWS_AHEAD * stride
            } else {
                0
            };
            let panels = matches!(self.weights, Weights::Panels(_));
            for k in 0..cin {
                if prefetch_ahead > 0 {
                    if panels {
                        for w in w {
                            prefetch(w.wrapping_add(prefetch_ahead));
                        }
                    } else {
                        prefetch(w[0].wrapping_add(prefetch_ahead));
                    }
                }
                let wv: [Vector<S, f32>; V] =
                    core::array::from_fn(|v| vload_unaligned::<S, _>(w[v]));
                for (i, acc) in acc.iter_mut().enumerate() {
                    let xv = (*x.add(i * cin + k)).splat::<S>();
                    for (a, wv) in acc.iter_mut().zip(wv) {
                        *a = xv.mul_add(wv, *a);
                    }
                }
                w = w.map(|w| w.add(stride));
            }
            let (zero, six) = (0.0f32.splat::<S>(), 6.0f32.splat::<S>());
            for (i, acc) in acc.into_iter().enumerate() {
                let o = out.as_mut_ptr().cast::<f32>().add((row + i) * cout + col);
                for (v, a) in acc.into_iter().enumerate() {
                    let a = if self.relu6 { a.max(zero).min(six) } else { a };
                    vstore_unaligned::<S, _>(o.add(v * lanes), a);
                }
            }
        }
    }
}

/// `t` itself when its values lie in row-major order from its start, else a copy that does.
fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

fn f32s(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("EfficientNet-Lite's CPU kernels take f32 tensors")
}

/// The stem's full "SAME" convolution + bias + ReLU6: planar `x` `[N, Cin, H, W]`, `taps`
/// `[Cin·k·k, Cout]`, `bias` `[Cout]`; the output is channels-last. Returns it and its shape.
pub(crate) fn stem_nhwc(
    x: &[f32],
    [n, cin, h, w]: [usize; 4],
    taps: &[f32],
    k: usize,
    bias: &[f32],
    stride: usize,
) -> (Output, [usize; 4]) {
    let cout = bias.len();
    assert_eq!(
        x.len(),
        n * cin * h * w,
        "input length does not match its shape"
    );
    assert_eq!(taps.len(), cin * k * k * cout, "weights do not match");
    let g = Geometry::same(h, w, cin, k, stride);
    let windows = StemWindows::new(&g);
    let out = by_output_rows(
        x,
        n,
        cin * h * w,
        g.ho * g.wo * cout,
        g.wo * cout,
        |input, row, oh| stem_row(input, row, taps, bias, &g, &windows, oh),
    );
    (out, [n, g.ho, g.wo, cout])
}

/// One output row of the stem. A window inside the picture is read in place, through one
/// table of tap offsets from its corner; a window that hangs over the edge is first gathered
/// with zeros where SAME padding puts them, then read through the identity table. Pixels go
/// two at a time where both windows lie inside, so each weight vector loaded serves two sums.
#[macerator::with_simd]
fn stem_row<S: Simd>(
    input: &[f32],
    out_row: &mut [MaybeUninit<f32>],
    taps: &[f32],
    bias: &[f32],
    g: &Geometry,
    windows: &StemWindows,
    oh: usize,
) {
    let cout = bias.len();
    let plane = g.h * g.w;
    let (inside, identity) = (&windows.inside, &windows.identity);
    let mut window = vec![0.0f32; identity.offsets.len()];
    let ih0 = (oh * g.stride) as isize - g.top as isize;
    let corner = |ow: usize| -> Option<usize> {
        let iw0 = (ow * g.stride) as isize - g.left as isize;
        let fits = |start: isize, len: usize| start >= 0 && start as usize + g.k <= len;
        (fits(ih0, g.h) && fits(iw0, g.w)).then(|| ih0 as usize * g.w + iw0 as usize)
    };
    let mut ow = 0;
    while ow < g.wo {
        if let (Some(a), Some(b)) = (corner(ow), corner(ow + 1).filter(|_| ow + 1 < g.wo)) {
            let (first, second) = out_row[ow * cout..(ow + 2) * cout].split_at_mut(cout);
            stem_pixels::<S, 2>(input, inside, [a, b], [first, second], taps, bias);
            ow += 2;
            continue;
        }
        let out = &mut out_row[ow * cout..(ow + 1) * cout];
        match corner(ow) {
            Some(a) => stem_pixels::<S, 1>(input, inside, [a], [out], taps, bias),
            None => {
                let mut t = 0;
                for ci in 0..g.c {
                    for kh in 0..g.k {
                        let ih = (ih0 + kh as isize)
                            .try_into()
                            .ok()
                            .filter(|&i: &usize| i < g.h);
                        for kw in 0..g.k {
                            let iw = (ow * g.stride + kw)
                                .checked_sub(g.left)
                                .filter(|&i| i < g.w);
                            window[t] = match (ih, iw) {
                                (Some(ih), Some(iw)) => input[ci * plane + ih * g.w + iw],
                                _ => 0.0,
                            };
                            t += 1;
                        }
                    }
                }
                stem_pixels::<S, 1>(&window, identity, [0], [out], taps, bias);
            }
        }
        ow += 1;
    }
}

/// The stem's tables of tap offsets, made once per call: from a window's corner in the planar
/// input (`inside`), and into a gathered window (`identity`).
struct StemWindows {
    inside: TapOffsets,
    identity: TapOffsets,
}

impl StemWindows {
    fn new(g: &Geometry) -> Self {
        let plane = g.h * g.w;
        let inside = (0..g.c)
            .flat_map(|ci| {
                (0..g.k).flat_map(move |kh| (0..g.k).map(move |kw| ci * plane + kh * g.w + kw))
            })
            .collect();
        StemWindows {
            inside: TapOffsets::new(inside),
            identity: TapOffsets::new((0..g.c * g.k * g.k).collect()),
        }
    }
}

/// A window's tap offsets from its corner, with the farthest of them, so that one comparison
/// per window bounds every read (checking each offset per pair of pixels took a quarter of the
/// stem's time in a profile).
struct TapOffsets {
    offsets: Vec<usize>,
    reach: usize,
}

impl TapOffsets {
    fn new(offsets: Vec<usize>) -> Self {
        let reach = offsets.iter().copied().max().unwrap_or(0);
        TapOffsets { offsets, reach }
    }
}

/// All output channels of `P` stem pixels whose windows start at `corners` in `src` and
/// whose taps lie at `windows` offsets from there: the sums run from the bias to the ReLU6 in
/// registers, four vectors of channels at a time, each input value broadcast once per four.
#[inline(always)]
fn stem_pixels<S: Simd, const P: usize>(
    src: &[f32],
    windows: &TapOffsets,
    corners: [usize; P],
    mut outs: [&mut [MaybeUninit<f32>]; P],
    taps: &[f32],
    bias: &[f32],
) {
    let cout = bias.len();
    let lanes = S::lanes32();
    let offsets = &windows.offsets[..];
    assert!(taps.len() == offsets.len() * cout);
    for corner in corners {
        assert!(corner + windows.reach < src.len());
    }
    let (zero, six) = (0.0f32.splat::<S>(), 6.0f32.splat::<S>());
    let mut ch = 0;
    macro_rules! run {
        ($v:literal) => {
            while ch + $v * lanes <= cout {
                // SAFETY: the asserts above bound every input read; `ch + V·lanes <= cout`
                // bounds the weights' and outputs' columns, and `taps` holds `offsets.len()`
                // rows of `cout`.
                unsafe {
                    let b = bias.as_ptr().add(ch);
                    let mut acc: [[Vector<S, f32>; $v]; P] = core::array::from_fn(|_| {
                        core::array::from_fn(|v| vload_unaligned::<S, _>(b.add(v * lanes)))
                    });
                    for (t, &o) in offsets.iter().enumerate() {
                        let w = taps.as_ptr().add(t * cout + ch);
                        let wv: [Vector<S, f32>; $v] =
                            core::array::from_fn(|v| vload_unaligned::<S, _>(w.add(v * lanes)));
                        for (acc, &corner) in acc.iter_mut().zip(&corners) {
                            let xv = (*src.get_unchecked(corner + o)).splat::<S>();
                            for (a, wv) in acc.iter_mut().zip(wv) {
                                *a = xv.mul_add(wv, *a);
                            }
                        }
                    }
                    for (acc, out) in acc.into_iter().zip(outs.iter_mut()) {
                        let o = out.as_mut_ptr().cast::<f32>().add(ch);
                        for (v, a) in acc.into_iter().enumerate() {
                            vstore_unaligned::<S, _>(o.add(v * lanes), a.max(zero).min(six));
                        }
                    }
                }
                ch += $v * lanes;
            }
        };
    }
    run!(4);
    run!(1);
    for ch in ch..cout {
        for (out, &corner) in outs.iter_mut().zip(&corners) {
            let mut acc = bias[ch];
            for (t, &o) in offsets.iter().enumerate() {
                acc += src[corner + o] * taps[t * cout + ch];
            }
            out[ch].write(acc.clamp(0.0, 6.0));
        }
    }
}

/// Depthwise "SAME" convolution + bias + ReLU6 on channels-last data: `x` `[N, H, W, C]`,
/// `taps` `[k·k, C]`, `bias` `[C]`. Returns the output and its shape.
pub(crate) fn depthwise_nhwc(
    x: &[f32],
    [n, h, w, c]: [usize; 4],
    taps: &[f32],
    k: usize,
    bias: &[f32],
    stride: usize,
) -> (Output, [usize; 4]) {
    assert_eq!(
        x.len(),
        n * h * w * c,
        "input length does not match its shape"
    );
    assert_eq!(taps.len(), k * k * c, "weights do not match the channels");
    assert_eq!(bias.len(), c, "bias does not match the channels");
    let g = Geometry::same(h, w, c, k, stride);
    let out = by_output_rows(
        x,
        n,
        h * w * c,
        g.ho * g.wo * c,
        g.wo * c,
        |input, row, oh| depthwise_row(input, 0, row, taps, bias, &g, oh),
    );
    (out, [n, g.ho, g.wo, c])
}

/// A 1×1 convolution's weights, as [`pointwise_weights_for_the_cpu`] laid them out, and bias.
#[derive(Clone, Copy)]
pub(crate) struct OneByOne<'a> {
    pub weights: Weights<'a>,
    pub bias: &'a [f32],
}

/// The least output pixels of a block's band (whole rows of the depthwise layer's output), so
/// that the 1×1 products around it get a few dozen pixels at once.
const BAND_PIXELS: usize = 64;

/// An inverted-residual block on channels-last `x` `[N, H, W, Cin]`, band by band of rows:
/// the 1×1 expansion + ReLU6 (when `expand`), the depthwise "SAME" convolution (`taps`
/// `[k·k, C]`, `dw_bias`, `stride`) + ReLU6 and the 1×1 projection (+ `x` when `residual`).
/// Layer by layer, the expansion's output (up to 4.8 MB at 112×112×96) went to memory and
/// came back for the depthwise layer, whose output did the same for the projection; here each
/// band's expanded rows are made just before the depthwise rows that read them, in a few
/// rows' buffer that stays in the cache, and the rows a band shares with the next are kept
/// rather than made again. Each thread takes a run of output rows. Returns the output and its
/// shape.
#[allow(clippy::too_many_arguments)]
pub(crate) fn mbconv_nhwc(
    x: &[f32],
    [n, h, w, cin]: [usize; 4],
    expand: Option<OneByOne>,
    taps: &[f32],
    k: usize,
    dw_bias: &[f32],
    stride: usize,
    project: OneByOne,
    residual: bool,
) -> (Output, [usize; 4]) {
    let hidden = dw_bias.len();
    let cout = project.bias.len();
    assert_eq!(
        x.len(),
        n * h * w * cin,
        "input length does not match its shape"
    );
    match expand {
        Some(e) => assert_eq!(
            (e.weights.len(), e.bias.len()),
            (cin * hidden, hidden),
            "expansion does not match the channels"
        ),
        None => assert_eq!(cin, hidden, "a block without expansion keeps its channels"),
    }
    assert_eq!(
        taps.len(),
        k * k * hidden,
        "depthwise weights do not match the channels"
    );
    assert_eq!(
        project.weights.len(),
        hidden * cout,
        "projection does not match the channels"
    );
    assert!(
        !residual || (stride == 1 && cin == cout),
        "a residual block keeps its shape"
    );
    let g = Geometry::same(h, w, hidden, k, stride);
    let band = BAND_PIXELS.div_ceil(g.wo).min(g.ho);
    // The output rows each thread takes, whole bands.
    let rows = g.ho.div_ceil(cpu_threads()).div_ceil(band) * band;
    let (image_in, image_out) = (h * w * cin, g.ho * g.wo * cout);
    let fill = |out: &mut [MaybeUninit<f32>]| {
        for (image, out) in out.chunks_mut(image_out).enumerate() {
            let x = &x[image * image_in..(image + 1) * image_in];
            for_each_chunk(out, rows * g.wo * cout, |(index, out)| {
                let first = index * rows;
                let block = Block {
                    x,
                    cin,
                    expand,
                    taps,
                    dw_bias,
                    project,
                    residual,
                    g: &g,
                };
                block.rows(first..first + out.len() / (g.wo * cout), band, out);
            });
        }
    };
    // SAFETY: each image's output rows are cut into runs that `Block::rows` fills whole.
    (
        unsafe { Output::filled(n * image_out, fill) },
        [n, g.ho, g.wo, cout],
    )
}

/// One image's inverted-residual block, as [`mbconv_nhwc`] was given it.
struct Block<'a> {
    x: &'a [f32],
    cin: usize,
    expand: Option<OneByOne<'a>>,
    taps: &'a [f32],
    dw_bias: &'a [f32],
    project: OneByOne<'a>,
    residual: bool,
    g: &'a Geometry,
}

impl Block<'_> {
    /// Output rows `rows`, `band` at a time, into `out`.
    fn rows(&self, rows: std::ops::Range<usize>, band: usize, out: &mut [MaybeUninit<f32>]) {
        let g = self.g;
        let (hidden, cout) = (g.c, self.project.bias.len());
        // The input rows a run of output rows reads: their windows, clipped to the image.
        let reads = |rows: std::ops::Range<usize>| {
            let top = (rows.start * g.stride).saturating_sub(g.top);
            let bottom = ((rows.end - 1) * g.stride + g.k)
                .saturating_sub(g.top)
                .min(g.h);
            top..bottom
        };
        // The expanded input rows `held` (where there is an expansion), first to last.
        let mut expanded = Scratch::new(
            self.expand
                .map_or(0, |_| (g.k + (band - 1) * g.stride) * g.w * hidden),
        );
        let mut held = 0..0;
        let mut depthwise = Scratch::new(band * g.wo * hidden);
        let mut oh = rows.start;
        while oh < rows.end {
            let t = band.min(rows.end - oh);
            let need = reads(oh..oh + t);
            let (input, first) = match self.expand {
                None => (self.x, 0),
                Some(expand) => {
                    let row_len = g.w * hidden;
                    // Keep the rows this band shares with the last; make the rest.
                    let kept = if held.end > need.start {
                        let from = need.start - held.start;
                        expanded.shift(from * row_len..held.len() * row_len);
                        held.end
                    } else {
                        expanded.shift(0..0);
                        need.start
                    };
                    let made = kept..need.end;
                    let at = (made.start - need.start) * row_len;
                    let product = Product {
                        x: &self.x[made.start * g.w * self.cin..made.end * g.w * self.cin],
                        cin: self.cin,
                        weights: expand.weights,
                        bias: expand.bias,
                        residual: None,
                        relu6: true,
                    };
                    pointwise_rows(&product, expanded.spare(at, made.len() * row_len));
                    held = need.clone();
                    (expanded.filled(held.len() * row_len), held.start)
                }
            };
            let row_len = g.wo * hidden;
            for (j, out_row) in depthwise
                .spare(0, t * row_len)
                .chunks_mut(row_len)
                .enumerate()
            {
                depthwise_row(input, first, out_row, self.taps, self.dw_bias, g, oh + j);
            }
            let out_len = g.wo * cout;
            let product = Product {
                x: depthwise.filled(t * row_len),
                cin: hidden,
                weights: self.project.weights,
                bias: self.project.bias,
                residual: self
                    .residual
                    .then(|| &self.x[oh * out_len..(oh + t) * out_len]),
                relu6: false,
            };
            let at = (oh - rows.start) * out_len;
            pointwise_rows(&product, &mut out[at..at + t * out_len]);
            oh += t;
        }
    }
}

/// A kernel's working buffer, its first value at the start of a cache line, filled from its
/// start: [`Scratch::spare`] hands out room that a kernel writes, [`Scratch::filled`] what
/// has been written.
struct Scratch {
    buf: Vec<MaybeUninit<f32>>,
    start: usize,
    /// Values from the start written so far.
    written: usize,
}

impl Scratch {
    fn new(len: usize) -> Self {
        let mut buf: Vec<MaybeUninit<f32>> = Vec::with_capacity(len + LINE - 1);
        let start = to_next_line(buf.as_ptr().cast());
        buf.resize_with(start + len, MaybeUninit::uninit);
        Scratch {
            buf,
            start,
            written: 0,
        }
    }

    /// The `len` values from `at` (at most what is written so far), to be written; counts them
    /// written from then on.
    fn spare(&mut self, at: usize, len: usize) -> &mut [MaybeUninit<f32>] {
        assert!(at <= self.written, "a gap in the buffer");
        self.written = self.written.max(at + len);
        &mut self.buf[self.start + at..self.start + at + len]
    }

    /// The first `len` values, all written.
    fn filled(&self, len: usize) -> &[f32] {
        assert!(len <= self.written, "values not written");
        let values = &self.buf[self.start..self.start + len];
        // SAFETY: every value up to `written` was handed out by `spare` to a kernel that
        // writes every value it is given; MaybeUninit<f32> has f32's layout.
        unsafe { &*(values as *const [MaybeUninit<f32>] as *const [f32]) }
    }

    /// Moves the written values `range` to the start, and counts only them written.
    fn shift(&mut self, range: std::ops::Range<usize>) {
        assert!(range.end <= self.written);
        self.buf
            .copy_within(self.start + range.start..self.start + range.end, self.start);
        self.written = range.len();
    }
}

/// Runs `row(image, output row, oh)` over every output row of `n` images (`image_len` input
/// and `out_len` output floats each, rows of `row_len`), on the pool where there is one.
fn by_output_rows(
    x: &[f32],
    n: usize,
    image_len: usize,
    out_len: usize,
    row_len: usize,
    row: impl Fn(&[f32], &mut [MaybeUninit<f32>], usize) + Sync + Send,
) -> Output {
    let rows_per_image = out_len / row_len;
    let fill = |out: &mut [MaybeUninit<f32>]| {
        for_each_chunk(out, row_len, |(index, out_row)| {
            let image = index / rows_per_image;
            row(
                &x[image * image_len..(image + 1) * image_len],
                out_row,
                index % rows_per_image,
            )
        })
    };
    // SAFETY: `row` writes every value of its output row (each row function's pixels cover
    // the row, every channel of each).
    unsafe { Output::filled(n * out_len, fill) }
}

/// Floats in a 64-byte cache line.
pub(crate) const LINE: usize = 64 / size_of::<f32>();

/// How many floats past `p` the next cache line starts (0 when `p` starts one).
pub(crate) fn to_next_line(p: *const f32) -> usize {
    (LINE - (p as usize / size_of::<f32>()) % LINE) % LINE
}

/// A kernel's output, channels-last, its first value at the start of a cache line. The
/// allocator leaves a buffer 16 bytes into a line as often as not, and then every other
/// vector a layer reads from it straddles two lines: the depthwise kernels took up to 24%
/// longer on such inputs, the stride-2 ones most (native, AVX2, 2026-12-06).
pub(crate) struct Output {
    buf: Vec<f32>,
    start: usize,
}

impl Output {
    /// `len` values written by `fill`, into a buffer left unset until then (zeroing it first
    /// took 7% of a forward pass, `memset` in a profile).
    ///
    /// # Safety
    /// `fill` writes every value of the slice it is given.
    unsafe fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Self {
        let mut buf = Vec::with_capacity(len + LINE - 1);
        let start = to_next_line(buf.as_ptr());
        let spare = buf.spare_capacity_mut();
        for pad in &mut spare[..start] {
            pad.write(0.0);
        }
        fill(&mut spare[start..start + len]);
        // SAFETY: the padding is written above and every value after it by `fill`.
        unsafe { buf.set_len(start + len) };
        Output { buf, start }
    }

    /// A tensor of `shape` over the values, where they lie.
    fn into_tensor(self, shape: [usize; 4]) -> FlexTensor {
        let contiguous = Layout::contiguous(Shape::from(shape));
        let layout = Layout::new(
            contiguous.shape().clone(),
            contiguous.strides().to_vec(),
            self.start,
        );
        FlexTensor::new(Bytes::from_elems(self.buf), layout, DType::F32)
    }
}

/// A "SAME" convolution's sizes: the input's `h × w × c`, the kernel, the stride, the
/// padding before the first row and column, and the output's `ho × wo`.
struct Geometry {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
    stride: usize,
    top: usize,
    left: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn same(h: usize, w: usize, c: usize, k: usize, stride: usize) -> Self {
        Geometry {
            h,
            w,
            c,
            k,
            stride,
            top: same_padding(h, k, stride).0,
            left: same_padding(w, k, stride).0,
            ho: h.div_ceil(stride),
            wo: w.div_ceil(stride),
        }
    }
}

/// Taps of one output pixel as (input offset, weight offset) pairs, in floats; 25 covers
/// EfficientNet's largest kernel, 5×5.
type Taps = ([(usize, usize); 25], usize);

/// One output row `oh` of one image, whose input rows from `first` on are `input` (all of them
/// but in a block's bands, [`mbconv_nhwc`]). Pixels whose window lies inside the image share one table
/// of tap offsets for the row (shifted by the pixel's column) and go up to eight at a time, so
/// each weight vector loaded serves eight sums and eight chains of multiply-adds overlap
/// (natively the depthwise layers took 2.5 ms a pass against 3.0 ms two at a time); with
/// stride 1, eight such pixels go through [`sliding`] instead, which loads each input vector
/// once for all of them. Border pixels get their window clipped.
#[macerator::with_simd]
fn depthwise_row<S: Simd>(
    input: &[f32],
    first: usize,
    out_row: &mut [MaybeUninit<f32>],
    taps: &[f32],
    bias: &[f32],
    g: &Geometry,
    oh: usize,
) {
    let c = g.c;
    // Kernel rows that land inside the image: the rest multiply padding zeros.
    let ih0 = (oh * g.stride) as isize - g.top as isize;
    let kh_start = (-ih0).max(0) as usize;
    let kh_end = (g.h as isize - ih0).clamp(0, g.k as isize) as usize;
    // Every row the window reads is in `input`, which the kernels below rely on.
    if kh_end > kh_start {
        let (top, bottom) = (
            (ih0 + kh_start as isize) as usize,
            (ih0 + kh_end as isize) as usize,
        );
        assert!(
            first <= top && (bottom - first) * g.w * c <= input.len(),
            "input rows {first}.. do not cover the window's rows {top}..{bottom}"
        );
    }
    let window = |iw0: isize, kw: std::ops::Range<usize>| -> Option<Taps> {
        let mut offsets = [(0usize, 0usize); 25];
        let mut count = 0;
        for kh in kh_start..kh_end {
            let ih = (ih0 + kh as isize) as usize - first;
            for kw in kw.clone() {
                let iw = (iw0 + kw as isize) as usize;
                *offsets.get_mut(count)? = ((ih * g.w + iw) * c, (kh * g.k + kw) * c);
                count += 1;
            }
        }
        Some((offsets, count))
    };
    // The interior's table, for a window starting at column 0.
    let Some((inner, inner_count)) = window(0, 0..g.k.min(g.w)) else {
        // Kernels above 5×5 are not EfficientNet's; a plain loop keeps them correct.
        return depthwise_row_scalar(input, first, out_row, taps, bias, g, oh);
    };
    let inner = &inner[..inner_count];
    let interior = |ow: usize| {
        let iw0 = (ow * g.stride) as isize - g.left as isize;
        iw0 >= 0 && iw0 as usize + g.k <= g.w
    };
    let shift = |ow: usize| (ow * g.stride - g.left) * c;
    let mut ow = 0;
    while ow < g.wo {
        // The run of pixels from `ow` whose windows all lie inside, up to eight.
        let run = (ow..g.wo.min(ow + 8)).take_while(|&p| interior(p)).count();
        macro_rules! group {
            ($p:literal, $v:literal) => {{
                let mut rest = &mut out_row[ow * c..(ow + $p) * c];
                let outs: [&mut [MaybeUninit<f32>]; $p] = core::array::from_fn(|_| {
                    let (first, tail) = std::mem::take(&mut rest).split_at_mut(c);
                    rest = tail;
                    first
                });
                let shifts = core::array::from_fn(|i| shift(ow + i));
                pixels::<S, $p, $v>(input, outs, taps, bias, inner, shifts);
                ow += $p;
            }};
        }
        match run {
            // Stride 1: eight pixels share their columns (with stride 2 the same scheme took
            // 43–70% longer than the table's, alone, natively).
            8 if matches!((g.k, g.stride), (3 | 5, 1)) => {
                let out = &mut out_row[ow * c..(ow + 8) * c];
                let rows = (kh_start, kh_end);
                let corner = ((ih0 + kh_start as isize) as usize - first) * g.w * c + shift(ow);
                match g.k {
                    3 => sliding::<S, 3>(input, out, taps, bias, g, rows, corner),
                    _ => sliding::<S, 5>(input, out, taps, bias, g, rows, corner),
                }
                ow += 8;
            }
            8 => group!(8, 1),
            4..=7 => group!(4, 1),
            2 | 3 => group!(2, 2),
            1 => group!(1, 4),
            _ => {
                let iw0 = (ow * g.stride) as isize - g.left as isize;
                let kw_start = (-iw0).max(0) as usize;
                let kw_end = (g.w as isize - iw0).clamp(0, g.k as isize) as usize;
                let (offsets, count) = window(iw0, kw_start..kw_end).expect("the window fits");
                let out = &mut out_row[ow * c..(ow + 1) * c];
                pixels::<S, 1, 4>(input, [out], taps, bias, &offsets[..count], [0]);
                ow += 1;
            }
        }
    }
}

/// Eight neighbouring output pixels of a row whose windows lie inside the image, for a `K`×`K`
/// kernel of stride 1: each input vector of a kernel row is loaded once and multiplied
/// into every one of the eight sums whose window covers it (up to `K` of them), with that
/// row's `K` weight vectors held in registers. Per kernel row that is `7 + K` input loads for
/// `8·K` multiply-adds, where one load per multiply-add made the other kernels wait
/// on their loads. `rows` are the kernel rows that land inside the image, `corner` the offset
/// of the first of them at the first pixel's window.
#[inline(always)]
fn sliding<S: Simd, const K: usize>(
    input: &[f32],
    out: &mut [MaybeUninit<f32>],
    taps: &[f32],
    bias: &[f32],
    g: &Geometry,
    (kh_start, kh_end): (usize, usize),
    corner: usize,
) {
    const P: usize = 8;
    let lanes = S::lanes32();
    let c = g.c;
    let row_len = g.w * c;
    let span = P - 1 + K;
    assert!(g.k == K && g.stride == 1 && out.len() == P * c && taps.len() == K * K * c);
    assert!(kh_start <= kh_end && kh_end <= K);
    if kh_end > kh_start {
        // The farthest input value read: the last kernel row's last column, last channel.
        assert!(corner + (kh_end - kh_start - 1) * row_len + span * c <= input.len());
    }
    let (zero, six) = (0.0f32.splat::<S>(), 6.0f32.splat::<S>());
    let mut ch = 0;
    while ch + lanes <= c {
        // SAFETY: the asserts above bound every input read (rows `kh_start..kh_end` from
        // `corner`, `span` columns, channels below `c`); `ch + lanes <= c` bounds the weights'
        // and outputs' reads and writes (`K·K` taps of `c`, `P` pixels of `c`).
        unsafe {
            let b = vload_unaligned::<S, _>(bias.as_ptr().add(ch));
            let mut acc: [Vector<S, f32>; P] = [b; P];
            for kh in kh_start..kh_end {
                let row = input.as_ptr().add(corner + (kh - kh_start) * row_len + ch);
                let w = taps.as_ptr().add(kh * K * c + ch);
                let wv: [Vector<S, f32>; K] =
                    core::array::from_fn(|kw| vload_unaligned::<S, _>(w.add(kw * c)));
                for j in 0..span {
                    let x = vload_unaligned::<S, _>(row.add(j * c));
                    for (kw, wv) in wv.iter().enumerate() {
                        if j >= kw && j - kw < P {
                            let a = &mut acc[j - kw];
                            *a = x.mul_add(*wv, *a);
                        }
                    }
                }
            }
            let o = out.as_mut_ptr().cast::<f32>().add(ch);
            for (p, a) in acc.into_iter().enumerate() {
                vstore_unaligned::<S, _>(o.add(p * c), a.max(zero).min(six));
            }
        }
        ch += lanes;
    }
    for ch in ch..c {
        for p in 0..P {
            let mut acc = bias[ch];
            for kh in kh_start..kh_end {
                for kw in 0..K {
                    let x = input[corner + (kh - kh_start) * row_len + (p + kw) * c + ch];
                    acc += x * taps[(kh * K + kw) * c + ch];
                }
            }
            out[p * c + ch].write(acc.clamp(0.0, 6.0));
        }
    }
}

/// All channels of `P` pixels whose windows share the tap `offsets` (each pixel's shifted by
/// its entry in `shifts`), `V` vectors of channels at a time: per run of channels the sums
/// stay in registers from the bias to the ReLU6. Each weight vector loaded serves the `P`
/// pixels; a lone pixel takes several vectors at once instead, so that its sums too are
/// independent chains.
#[inline(always)]
fn pixels<S: Simd, const P: usize, const V: usize>(
    input: &[f32],
    mut outs: [&mut [MaybeUninit<f32>]; P],
    taps: &[f32],
    bias: &[f32],
    offsets: &[(usize, usize)],
    shifts: [usize; P],
) {
    let lanes = S::lanes32();
    let c = bias.len();
    let (zero, six) = (0.0f32.splat::<S>(), 6.0f32.splat::<S>());
    let ins: [&[f32]; P] = core::array::from_fn(|i| &input[shifts[i]..]);
    let mut ch = 0;
    macro_rules! run {
        ($v:expr) => {
            while ch + $v * lanes <= c {
                // SAFETY: `ch + v·lanes <= c`, and every offset is a pixel or tap start inside
                // its slice (windows are clipped to the image), so each load reads `lanes`
                // floats in bounds; each output holds `c` values.
                unsafe {
                    let b = bias.as_ptr().add(ch);
                    let mut acc: [[Vector<S, f32>; $v]; P] = core::array::from_fn(|_| {
                        core::array::from_fn(|v| vload_unaligned::<S, _>(b.add(v * lanes)))
                    });
                    for &(xi, wi) in offsets {
                        let w = taps.as_ptr().add(wi + ch);
                        let wv: [Vector<S, f32>; $v] =
                            core::array::from_fn(|v| vload_unaligned::<S, _>(w.add(v * lanes)));
                        for (acc, x) in acc.iter_mut().zip(&ins) {
                            let x = x.as_ptr().add(xi + ch);
                            for (v, (a, wv)) in acc.iter_mut().zip(wv).enumerate() {
                                *a = vload_unaligned::<S, _>(x.add(v * lanes)).mul_add(wv, *a);
                            }
                        }
                    }
                    for (acc, out) in acc.into_iter().zip(outs.iter_mut()) {
                        let o = out.as_mut_ptr().cast::<f32>().add(ch);
                        for (v, a) in acc.into_iter().enumerate() {
                            vstore_unaligned::<S, _>(o.add(v * lanes), a.max(zero).min(six));
                        }
                    }
                }
                ch += $v * lanes;
            }
        };
    }
    run!(V);
    run!(1);
    for ch in ch..c {
        for (x, out) in ins.iter().zip(outs.iter_mut()) {
            let mut acc = bias[ch];
            for &(xi, wi) in offsets {
                acc += x[xi + ch] * taps[wi + ch];
            }
            out[ch].write(acc.clamp(0.0, 6.0));
        }
    }
}

fn depthwise_row_scalar(
    input: &[f32],
    first: usize,
    out_row: &mut [MaybeUninit<f32>],
    taps: &[f32],
    bias: &[f32],
    g: &Geometry,
    oh: usize,
) {
    for ow in 0..g.wo {
        for ch in 0..g.c {
            let mut acc = bias[ch];
            for kh in 0..g.k {
                let ih = (oh * g.stride + kh) as isize - g.top as isize;
                for kw in 0..g.k {
                    let iw = (ow * g.stride + kw) as isize - g.left as isize;
                    if (0..g.h as isize).contains(&ih) && (0..g.w as isize).contains(&iw) {
                        let (ih, iw) = (ih as usize, iw as usize);
                        let at = ((ih - first) * g.w + iw) * g.c + ch;
                        acc += input[at] * taps[(kh * g.k + kw) * g.c + ch];
                    }
                }
            }
            out_row[ow * g.c + ch].write(acc.clamp(0.0, 6.0));
        }
    }
}

/// Depthwise convolution with TF "SAME" padding, bias and ReLU6 on a channels-last tensor
/// `[N, H, W, C]`; `weight` is `[C, 1, k, k]`. Runs the CPU kernel on the CPU and burn's
/// convolution elsewhere.
pub fn depthwise_same_relu6(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as LiteKernels>::depthwise_same_relu6(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
    ))
}

/// The stem convolution with TF "SAME" padding, bias and ReLU6: planar `x` `[N, Cin, H, W]`
/// in, channels-last `[N, H/s, W/s, Cout]` out; `weight` is `[Cout, Cin, k, k]`. Runs the CPU
/// kernel on the CPU and burn's convolution elsewhere.
pub fn stem_same_relu6(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as LiteKernels>::stem_same_relu6(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        stride,
    ))
}

/// 1×1 convolution on a channels-last tensor `[N, H, W, Cin]` with `weight` `[Cout, Cin, 1, 1]`
/// and `bias`, then ReLU6 when `relu6`.
pub fn pointwise(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, relu6: bool) -> Tensor<4> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as LiteKernels>::pointwise(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        relu6,
    ))
}

/// An inverted-residual block on a channels-last `x` `[N, H, W, Cin]` (see
/// [`LiteKernels::inverted_residual`]): on the CPU the three layers band by band of rows
/// ([`mbconv_nhwc`]), elsewhere one after another.
#[allow(clippy::too_many_arguments)]
pub fn inverted_residual(
    x: Tensor<4>,
    expand: Option<(Tensor<4>, Tensor<1>)>,
    depthwise_weight: Tensor<4>,
    depthwise_bias: Tensor<1>,
    stride: usize,
    project_weight: Tensor<4>,
    project_bias: Tensor<1>,
    residual: bool,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    let (x, depthwise_weight, depthwise_bias) = (
        x.into_dispatch(),
        depthwise_weight.into_dispatch(),
        depthwise_bias.into_dispatch(),
    );
    let (project_weight, project_bias) =
        (project_weight.into_dispatch(), project_bias.into_dispatch());
    Tensor::from_dispatch(match expand {
        Some((expand_weight, expand_bias)) => <Dispatch as LiteKernels>::inverted_residual(
            x,
            expand_weight.into_dispatch(),
            expand_bias.into_dispatch(),
            depthwise_weight,
            depthwise_bias,
            stride,
            project_weight,
            project_bias,
            residual,
        ),
        None => <Dispatch as LiteKernels>::depthwise_separable(
            x,
            depthwise_weight,
            depthwise_bias,
            stride,
            project_weight,
            project_bias,
            residual,
        ),
    })
}

/// [`pointwise`] without ReLU6, plus `residual` `[N, H, W, Cout]`.
pub fn pointwise_add(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    residual: Tensor<4>,
) -> Tensor<4> {
    use burn::backend::Dispatch;
    Tensor::from_dispatch(<Dispatch as LiteKernels>::pointwise_add(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        residual.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::module::conv2d;
    use burn::tensor::{Device, Distribution, Tolerance};

    /// burn's own depthwise convolution (padding as asymmetric pairs), then ReLU6, on NCHW.
    fn reference(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>, stride: usize) -> Tensor<4> {
        let [_, c, h, w] = x.dims();
        let k = weight.dims()[2];
        let options = ConvOptions::new_with_padding(
            [stride, stride],
            [same_padding(h, k, stride), same_padding(w, k, stride)],
            [1, 1],
            c,
        );
        conv2d(x, weight, Some(bias), options).clamp(0.0, 6.0)
    }

    fn check(device: &Device, c: usize, h: usize, w: usize, k: usize, stride: usize) {
        let x = Tensor::<4>::random([2, c, h, w], Distribution::Uniform(-3.0, 3.0), device);
        let weight = Tensor::<4>::random([c, 1, k, k], Distribution::Uniform(-1.0, 1.0), device);
        let bias = Tensor::<1>::random([c], Distribution::Uniform(-1.0, 1.0), device);
        let expected = reference(x.clone(), weight.clone(), bias.clone(), stride);
        let got = depthwise_same_relu6(x.permute([0, 2, 3, 1]), weight, bias, stride)
            .permute([0, 3, 1, 2]);
        assert_eq!(got.dims(), expected.dims(), "{k}×{k}/{stride} on {h}×{w}");
        got.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn depthwise_kernel_matches_burns_convolution_for_every_lite0_shape() {
        let device = Device::flex();
        // 7×7 is not EfficientNet's; it takes the plain loop.
        for (k, stride) in [(3, 1), (3, 2), (5, 1), (5, 2), (7, 1)] {
            // Even and odd sizes (odd ones pad symmetrically at stride 2), widths that fill
            // whole vectors and ones that leave a remainder, and maps smaller than the kernel.
            for (c, h, w) in [(32, 12, 12), (24, 7, 9), (19, 4, 5), (48, 2, 3), (16, 1, 1)] {
                check(&device, c, h, w, k, stride);
            }
        }
    }

    #[test]
    fn stem_kernel_matches_burns_convolution_on_planar_input() {
        let device = Device::flex();
        // Lite0's stem (3→32, 3×3/2) on even and odd sizes, output widths that fill four
        // vectors, one, or leave a remainder, and a map smaller than the kernel.
        for (cin, cout, h, w, k, stride) in [
            (3, 32, 16, 16, 3, 2),
            (3, 32, 7, 9, 3, 2),
            (3, 32, 1, 2, 3, 2),
            (3, 20, 6, 5, 3, 1),
            (2, 7, 5, 8, 5, 2),
        ] {
            let x = Tensor::<4>::random([2, cin, h, w], Distribution::Uniform(-3.0, 3.0), &device);
            let weight =
                Tensor::<4>::random([cout, cin, k, k], Distribution::Uniform(-1.0, 1.0), &device);
            let bias = Tensor::<1>::random([cout], Distribution::Uniform(-1.0, 1.0), &device);
            let options = ConvOptions::new_with_padding(
                [stride, stride],
                [same_padding(h, k, stride), same_padding(w, k, stride)],
                [1, 1],
                1,
            );
            let expected = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options)
                .clamp(0.0, 6.0)
                .permute([0, 2, 3, 1]);
            let got = stem_same_relu6(x, weight, bias, stride);
            assert_eq!(
                got.dims(),
                expected.dims(),
                "{cin}→{cout} {k}×{k}/{stride} on {h}×{w}"
            );
            got.into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-4));
        }
    }

    #[test]
    fn pointwise_kernel_matches_burns_convolution_with_relu6_and_residual() {
        let device = Device::flex();
        // Pixel counts whose last rows make every tile height from one to six (7, 9, 13 and 49
        // pixels end in tiles of three to five rows natively), channel counts that end in a
        // one-vector panel, in a vector overlapping the one before (24, 44 and 300 with 16
        // lanes) and in single channels (fewer than a vector), and several blocks of pixels:
        // 13 pixels of 1200 channels are a block of 13, and 2 × 1800 pixels of 16 channels four
        // blocks of up to 1026 on one thread (the final one partial), more with threads.
        for (n, cin, cout, h, w) in [
            (2, 16, 96, 5, 7),
            (2, 40, 240, 3, 3),
            (2, 17, 9, 1, 2),
            (2, 3, 44, 1, 5),
            (1, 8, 16, 1, 7),
            (1, 8, 16, 3, 3),
            (1, 32, 48, 7, 7),
            (1, 1200, 32, 1, 13),
            (2, 8, 300, 19, 19),
            (2, 16, 24, 45, 40),
        ] {
            let x = Tensor::<4>::random([n, cin, h, w], Distribution::Uniform(-3.0, 3.0), &device);
            let weight =
                Tensor::<4>::random([cout, cin, 1, 1], Distribution::Uniform(-1.0, 1.0), &device);
            let bias = Tensor::<1>::random([cout], Distribution::Uniform(-1.0, 1.0), &device);
            let residual =
                Tensor::<4>::random([n, cout, h, w], Distribution::Uniform(-3.0, 3.0), &device);
            let plain = conv2d(
                x.clone(),
                weight.clone(),
                Some(bias.clone()),
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            );
            let last = |t: Tensor<4>| t.permute([0, 2, 3, 1]);
            let first = |t: Tensor<4>| t.permute([0, 3, 1, 2]);
            // Sums over 1200 channels reach ~60, where float rounding alone differs by ~1e-4.
            let tolerance = Tolerance::rel_abs(1e-5, 1e-4);
            // burn's layout, and the model's on the CPU (in panels where `Cout` is a multiple
            // of 16: 96, 240, 16, 48 and 32 here).
            for weight in [weight.clone(), pointwise_weights_for_the_cpu(weight)] {
                first(pointwise(
                    last(x.clone()),
                    weight.clone(),
                    bias.clone(),
                    true,
                ))
                .into_data()
                .assert_approx_eq::<f32>(&plain.clone().clamp(0.0, 6.0).into_data(), tolerance);
                first(pointwise(
                    last(x.clone()),
                    weight.clone(),
                    bias.clone(),
                    false,
                ))
                .into_data()
                .assert_approx_eq::<f32>(&plain.clone().into_data(), tolerance);
                first(pointwise_add(
                    last(x.clone()),
                    weight,
                    bias.clone(),
                    last(residual.clone()),
                ))
                .into_data()
                .assert_approx_eq::<f32>(
                    &(plain.clone() + residual.clone()).into_data(),
                    tolerance,
                );
            }
        }
    }

    #[test]
    fn blocks_in_bands_match_their_layers_one_after_another() {
        let device = Device::flex();
        let random = |dims: [usize; 4], range: f64| {
            Tensor::<4>::random(dims, Distribution::Uniform(-range, range), &device)
        };
        let bias = |c: usize| Tensor::<1>::random([c], Distribution::Uniform(-1.0, 1.0), &device);
        // Lite0's first blocks shrunk (32, 3×3/1 without expansion; 16→96, 3×3/2; 24→144,
        // 3×3/1 with its residual; 5×5/2), odd sizes that pad unevenly, bands that end short
        // of the image, maps smaller than the kernel, and widths that leave no whole panel
        // (40, 20). `hidden` 0: no expansion.
        for (cin, hidden, cout, h, w, k, stride, residual) in [
            (32, 0, 16, 19, 21, 3, 1, false),
            (16, 0, 16, 9, 8, 3, 1, true),
            (16, 96, 24, 23, 22, 3, 2, false),
            (24, 144, 24, 17, 9, 3, 1, true),
            (24, 144, 40, 13, 15, 5, 2, false),
            (40, 240, 40, 7, 7, 5, 1, true),
            (8, 48, 20, 3, 2, 5, 1, false),
            (8, 32, 16, 1, 1, 3, 2, false),
        ] {
            let x = random([2, h, w, cin], 3.0);
            let expand = (hidden > 0).then(|| (random([hidden, cin, 1, 1], 0.5), bias(hidden)));
            let hidden = if hidden > 0 { hidden } else { cin };
            let depthwise = random([hidden, 1, k, k], 1.0);
            let project = random([cout, hidden, 1, 1], 0.5);
            let (db, pb) = (bias(hidden), bias(cout));
            let mut y = x.clone();
            if let Some((weight, bias)) = &expand {
                y = pointwise(y, weight.clone(), bias.clone(), true);
            }
            let y = depthwise_same_relu6(y, depthwise.clone(), db.clone(), stride);
            let expected = if residual {
                pointwise_add(y, project.clone(), pb.clone(), x.clone())
            } else {
                pointwise(y, project.clone(), pb.clone(), false)
            };
            // burn's layout of the 1×1 weights, and the model's on the CPU.
            for laid_out in [false, true] {
                let lay = |w: &Tensor<4>| {
                    if laid_out {
                        pointwise_weights_for_the_cpu(w.clone())
                    } else {
                        w.clone()
                    }
                };
                let got = inverted_residual(
                    x.clone(),
                    expand.as_ref().map(|(w, b)| (lay(w), b.clone())),
                    depthwise.clone(),
                    db.clone(),
                    stride,
                    lay(&project),
                    pb.clone(),
                    residual,
                );
                let shape = format!("{cin}→{hidden}→{cout} {k}×{k}/{stride} on {h}×{w}");
                assert_eq!(got.dims(), expected.dims(), "{shape}");
                // The same operations on the same values in the same order: the same floats.
                assert_eq!(got.into_data(), expected.clone().into_data(), "{shape}");
            }
        }
    }

    /// The other backends' bodies (burn's own operations, channels-first inside) against the
    /// CPU kernels, on native wgpu when this machine has an adapter (a software one will do).
    #[test]
    fn other_backends_compute_what_the_cpu_kernels_compute() {
        let Ok(gpu) = crate::runtime::open_device(crate::BackendKind::Wgpu) else {
            eprintln!("no wgpu adapter: the other backends' bodies are not checked here");
            return;
        };
        let cpu = Device::flex();
        let x = Tensor::<4>::random([1, 6, 7, 16], Distribution::Uniform(-3.0, 3.0), &cpu);
        let dw = Tensor::<4>::random([16, 1, 5, 5], Distribution::Uniform(-1.0, 1.0), &cpu);
        let pw = Tensor::<4>::random([24, 16, 1, 1], Distribution::Uniform(-1.0, 1.0), &cpu);
        let expand = Tensor::<4>::random([16, 16, 1, 1], Distribution::Uniform(-0.5, 0.5), &cpu);
        let bias16 = Tensor::<1>::random([16], Distribution::Uniform(-1.0, 1.0), &cpu);
        let bias24 = Tensor::<1>::random([24], Distribution::Uniform(-1.0, 1.0), &cpu);
        let residual = Tensor::<4>::random([1, 3, 4, 24], Distribution::Uniform(-3.0, 3.0), &cpu);
        let planar = Tensor::<4>::random([1, 3, 11, 14], Distribution::Uniform(-3.0, 3.0), &cpu);
        let stem = Tensor::<4>::random([16, 3, 3, 3], Distribution::Uniform(-1.0, 1.0), &cpu);
        let run = |device: &Device| {
            let to = |t: Tensor<4>| t.to_device(device);
            let s = stem_same_relu6(
                to(planar.clone()),
                to(stem.clone()),
                bias16.clone().to_device(device),
                2,
            );
            let y = depthwise_same_relu6(
                to(x.clone()),
                to(dw.clone()),
                bias16.clone().to_device(device),
                2,
            );
            let a = pointwise(
                y.clone(),
                to(pw.clone()),
                bias24.clone().to_device(device),
                true,
            );
            let b = pointwise_add(
                y,
                to(pw.clone()),
                bias24.clone().to_device(device),
                to(residual.clone()),
            );
            let block = inverted_residual(
                to(x.clone()),
                Some((to(expand.clone()), bias16.clone().to_device(device))),
                to(dw.clone()),
                bias16.clone().to_device(device),
                2,
                to(pw.clone()),
                bias24.clone().to_device(device),
                false,
            );
            (
                a.into_data(),
                b.into_data(),
                s.into_data(),
                block.into_data(),
            )
        };
        let (cpu_a, cpu_b, cpu_s, cpu_block) = run(&cpu);
        let (gpu_a, gpu_b, gpu_s, gpu_block) = run(&gpu);
        gpu_block.assert_approx_eq::<f32>(&cpu_block, Tolerance::absolute(1e-4));
        gpu_s.assert_approx_eq::<f32>(&cpu_s, Tolerance::absolute(1e-4));
        gpu_a.assert_approx_eq::<f32>(&cpu_a, Tolerance::absolute(1e-4));
        gpu_b.assert_approx_eq::<f32>(&cpu_b, Tolerance::absolute(1e-4));
    }

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(28, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 5, 2), (2, 2));
    }
}
