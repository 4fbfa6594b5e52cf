//! A LLaMA-family decoder (Touvron et al., 2023) for the caption model, SmolLM2-135M:
//!
//! ```text
//! token ids ─ embedding
//!   └ N × [ x + attention(RMSNorm(x))      grouped-query attention, RoPE, causal, KV cache
//!           x + SwiGLU(RMSNorm(x)) ]        down(silu(gate(x)) · up(x))
//!   └ RMSNorm ─ logits = x · embeddingᵀ     (tied embeddings)
//! ```
//!
//! [`Llama::from_gguf`] with [`Storage::Quantized`] keeps the matrices in the file's quantized
//! encoding, decoded inside the products ([`super::quant`]); [`Storage::F32`] expands them to
//! f32, the reference path they are
//! checked against. Weights keep GGUF's layout, so RoPE rotates adjacent pairs
//! `(x[2i], x[2i+1])` of each head (llama.cpp's converter reorders the q/k rows for it).
//!
//! Decoding on the CPU, a block's norms, products, rotation, attention over the cache, gating
//! and residual adds run on the activations' values (`Block::decode_on_values`), the cache
//! being host values there, and the hidden state stays host values from one such block to the
//! next; everywhere else (a prompt, WebGPU, f32 weights) the block is burn operations
//! throughout. The cache is written in place (`LayerCache`).

use burn::backend::DispatchDevice;
use burn::module::Param;
use burn::nn::{RmsNorm, RmsNormConfig};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::sync::OnceLock;

use super::blocks::dequantize;
use super::gguf::{Gguf, GgufError, TensorInfo, Value};
use super::intdot::SharedRows;
use super::profile::Part;
use super::quant::{BlockMatrix, GEMM_FROM_ROWS, QuantizedMatrix};
use crate::runtime::awake;

#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub ffn: usize,
    pub rms_eps: f64,
    pub rope_base: f32,
}

impl LlamaConfig {
    /// Reads the `llama.*` hyper-parameters of a GGUF file.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self, GgufError> {
        match gguf.architecture() {
            Some("llama") => {}
            other => {
                return Err(GgufError(format!(
                    "architecture {other:?} is not supported (LLaMA only)"
                )));
            }
        }
        let int = |key: &str| {
            gguf.get(&format!("llama.{key}"))
                .and_then(Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| GgufError(format!("llama.{key} is missing")))
        };
        let float = |key: &str, default: f32| {
            gguf.get(&format!("llama.{key}"))
                .and_then(Value::as_f32)
                .unwrap_or(default)
        };
        let vocab_size = match int("vocab_size") {
            Ok(v) => v,
            Err(_) => gguf
                .get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(<[Value]>::len)
                .unwrap_or(0),
        };
        Ok(Self {
            vocab_size,
            hidden: int("embedding_length")?,
            layers: int("block_count")?,
            heads: int("attention.head_count")?,
            kv_heads: int("attention.head_count_kv")?,
            ffn: int("feed_forward_length")?,
            rms_eps: float("attention.layer_norm_rms_epsilon", 1e-5) as f64,
            rope_base: float("rope.freq_base", 10_000.0),
        })
    }

    pub fn head_dim(&self) -> usize {
        self.hidden / self.heads
    }

    /// Refuses shapes the decoder cannot run and a vocabulary that disagrees with the
    /// tokenizer stored beside it.
    fn check(&self, gguf: &Gguf) -> Result<(), GgufError> {
        // RoPE rotates pairs, so each head's width must be even (and not zero).
        if self.heads == 0
            || self.kv_heads == 0
            || !self.hidden.is_multiple_of(self.heads)
            || !self.heads.is_multiple_of(self.kv_heads)
            || self.head_dim() == 0
            || !self.head_dim().is_multiple_of(2)
        {
            return Err(GgufError(format!(
                "{} query heads, {} key/value heads and width {} do not fit together",
                self.heads, self.kv_heads, self.hidden
            )));
        }
        if self.vocab_size == 0 || self.ffn == 0 {
            return Err(GgufError(format!(
                "a vocabulary of {} tokens and a feed-forward width of {} cannot make a model",
                self.vocab_size, self.ffn
            )));
        }
        let eps_usable = self.rms_eps.is_finite() && self.rms_eps >= 0.0;
        let base_usable = self.rope_base.is_finite() && self.rope_base > 0.0;
        if !eps_usable || !base_usable {
            return Err(GgufError(format!(
                "the norm epsilon {} or the RoPE base {} is not a usable number",
                self.rms_eps, self.rope_base
            )));
        }
        if let Some(tokens) = gguf.get("tokenizer.ggml.tokens").and_then(Value::as_array)
            && tokens.len() != self.vocab_size
        {
            return Err(GgufError(format!(
                "the tokenizer has {} tokens but the model's vocabulary is {}",
                tokens.len(),
                self.vocab_size
            )));
        }
        Ok(())
    }
}

/// A matrix `[out, in]` applied as `x · Wᵀ`, as GGUF stores it.
#[derive(Debug, Clone)]
// A burn tensor is a large value (about 600 bytes); a model holds a few hundred matrices.
#[allow(clippy::large_enum_variant)]
pub enum Matrix {
    /// f32 on the device: the reference the quantized forms are checked against.
    Dense(Tensor<2>),
    /// The file's own blocks in host memory, decoded inside the product (CPU backend).
    Blocks(BlockMatrix),
    /// A burn quantized tensor, dequantized inside the GPU's matrix product.
    Quantized(QuantizedMatrix),
}

impl Matrix {
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Matrix::Dense(w) => w.dims(),
            Matrix::Blocks(w) => w.dims(),
            Matrix::Quantized(w) => w.dims(),
        }
    }

    /// `x · Wᵀ` for `x` of shape `[batch, positions, in]`.
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        super::profile::timed(Part::Product(self.dims()), || match self {
            // Computed as `(W · xᵀ)ᵀ` so the weight is read in its stored layout and only the
            // small activation is transposed.
            Matrix::Dense(w) => {
                let [batch, _, _] = x.dims();
                let [out, inp] = w.dims();
                let weight = w.clone().reshape([1, out, inp]).expand([batch, out, inp]);
                weight.matmul(x.swap_dims(1, 2)).swap_dims(1, 2)
            }
            Matrix::Blocks(w) => w.forward(x),
            Matrix::Quantized(w) => w.forward(x),
        })
    }

    /// Rows `ids` (`[n]`) as f32 `[n, in]`: the embedding lookup, which decodes only them.
    /// The rows `ids` (token ids, known on the host: a GPU read-back is not possible
    /// synchronously in the browser).
    fn rows(&self, ids: &[usize], device: &Device) -> Tensor<2> {
        match self {
            Matrix::Dense(w) => {
                let ids: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
                let len = ids.len();
                w.clone().select(
                    0,
                    Tensor::<1, Int>::from_data(TensorData::new(ids, [len]), device),
                )
            }
            Matrix::Blocks(w) => {
                let [_, cols] = w.dims();
                Tensor::from_data(TensorData::new(w.rows_f32(ids), [ids.len(), cols]), device)
            }
            Matrix::Quantized(w) => w.rows(ids, device),
        }
    }

    /// Bytes held on the device (host memory being the CPU backend's device memory).
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::Dense(w) => w.shape().num_elements() * 4,
            Matrix::Blocks(w) => w.bytes(),
            Matrix::Quantized(w) => w.bytes(),
        }
    }

    /// Bytes kept in host memory besides: the row-lookup copy of a GPU embedding.
    pub fn host_bytes(&self) -> usize {
        match self {
            Matrix::Quantized(w) => w.host_bytes(),
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Attention {
    pub q: Matrix,
    pub k: Matrix,
    pub v: Matrix,
    pub o: Matrix,
    pub heads: usize,
    pub kv_heads: usize,
}

#[derive(Debug, Clone)]
pub struct FeedForward {
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub attn_norm: RmsNorm,
    pub attn: Attention,
    pub ffn_norm: RmsNorm,
    pub ffn: FeedForward,
    /// The two norms' weights as host values, read from their tensors on the first token
    /// decoded on values: reading a tensor back copies it through the backend, and a token
    /// would do that 60 times.
    norm_values: OnceLock<[Vec<f32>; 2]>,
}

#[derive(Debug, Clone)]
pub struct Llama {
    /// `[vocab, hidden]`; also the output projection when that is tied to it.
    pub embedding: Matrix,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    /// The output projection, when it is not tied to the embedding.
    pub output: Option<Matrix>,
    pub rope_base: f32,
    pub device: Device,
}

/// Keys and values of the positions seen so far, per layer. A clone is a cache of its own
/// (host values are copied; a tensor buffer is copied when either side writes to it).
#[derive(Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
}

/// One layer's keys and values. A step writes its positions into buffers in place and
/// attends over the filled part, instead of concatenating (copying) the whole cache every
/// token; the buffers grow by doubling.
// The tensor variant is the larger by about a kilobyte; a model has one cache per layer, so
// boxing it would save nothing worth an indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum LayerCache {
    /// `[1, kv_heads, capacity, head_dim]` tensors whose first `len` positions are filled
    /// (off the CPU).
    Tensors {
        keys: Tensor<4>,
        values: Tensor<4>,
        len: usize,
    },
    /// Host values that a decoded token's attention reads in place (the CPU).
    Host(HostCache),
}

/// Room a layer's cache starts with past the prompt: most captions fit without a regrowth.
const CACHE_HEADROOM: usize = 64;

/// Positions whose attention scores are summed together (a multiple of every SIMD width).
const LANES: usize = 16;

/// Keys and values as host values, the first `len` positions of every head filled: keys
/// `[kv_heads, capacity / LANES, head_dim, LANES]` (transposed in tiles of [`LANES`]
/// positions, so that a query's scores over a tile are sums of whole rows scaled by one of its
/// values, which vectorize, and a tile is one run of memory: with rows of the whole capacity,
/// a tile's rows lay a page apart, which the hardware's prefetcher does not follow), values
/// `[kv_heads, capacity, head_dim]`.
#[derive(Clone)]
struct HostCache {
    keys: Vec<f32>,
    values: Vec<f32>,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    len: usize,
}

impl HostCache {
    fn new(heads: usize, head_dim: usize, capacity: usize) -> Self {
        let capacity = capacity.next_multiple_of(LANES);
        Self {
            keys: vec![0.0; heads * head_dim * capacity],
            values: vec![0.0; heads * capacity * head_dim],
            heads,
            head_dim,
            capacity,
            len: 0,
        }
    }

    /// Appends `n` positions of keys and values given position by position, `[n, heads ·
    /// head_dim]` (as the products write them).
    fn append(&mut self, keys: &[f32], values: &[f32], n: usize) {
        let (heads, d, len) = (self.heads, self.head_dim, self.len);
        let total = len + n;
        if total > self.capacity {
            let (old, grown) = (self.capacity, total.max(2 * self.capacity));
            let grown = grown.next_multiple_of(LANES);
            // Per head, `capacity · head_dim` values: the keys' tiles in order (the new ones
            // appended) and the values' first `len · head_dim` filled.
            let regrow = |buffer: &[f32], row: usize, filled: usize, new_row: usize| {
                let mut new = vec![0.0; buffer.len() / row * new_row];
                for (old, new) in buffer.chunks_exact(row).zip(new.chunks_exact_mut(new_row)) {
                    new[..filled].copy_from_slice(&old[..filled]);
                }
                new
            };
            self.keys = regrow(&self.keys, old * d, old * d, grown * d);
            self.values = regrow(&self.values, old * d, len * d, grown * d);
            self.capacity = grown;
        }
        let capacity = self.capacity;
        for (i, (k, v)) in keys
            .chunks_exact(heads * d)
            .zip(values.chunks_exact(heads * d))
            .take(n)
            .enumerate()
        {
            let at = len + i;
            for h in 0..heads {
                let tile = h * d * capacity + at / LANES * d * LANES + at % LANES;
                for (c, &value) in k[h * d..(h + 1) * d].iter().enumerate() {
                    self.keys[tile + c * LANES] = value;
                }
                self.values[(h * capacity + at) * d..][..d].copy_from_slice(&v[h * d..(h + 1) * d]);
            }
        }
        self.len = total;
    }

    /// Head `h`'s keys, `[capacity / LANES, head_dim, LANES]` (the first `len` positions
    /// filled).
    fn keys(&self, h: usize) -> &[f32] {
        &self.keys[h * self.head_dim * self.capacity..][..self.head_dim * self.capacity]
    }

    /// Head `h`'s filled values, `[len, head_dim]`.
    fn values(&self, h: usize) -> &[f32] {
        &self.values[h * self.capacity * self.head_dim..][..self.len * self.head_dim]
    }

    /// The filled keys and values as `[1, heads, len, head_dim]` tensors.
    fn tensors(&self, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let (d, len) = (self.head_dim, self.len);
        let mut keys = Vec::with_capacity(self.heads * len * d);
        for h in 0..self.heads {
            let rows = self.keys(h);
            let key = move |j: usize, c: usize| rows[j / LANES * d * LANES + c * LANES + j % LANES];
            keys.extend((0..len).flat_map(|j| (0..d).map(move |c| key(j, c))));
        }
        let values: Vec<f32> = (0..self.heads)
            .flat_map(|h| self.values(h).iter().copied())
            .collect();
        let tensor =
            |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [1, self.heads, len, d]), device);
        (tensor(keys), tensor(values))
    }
}

impl LayerCache {
    fn len(&self) -> usize {
        match self {
            LayerCache::Tensors { len, .. } => *len,
            LayerCache::Host(host) => host.len,
        }
    }

    fn truncate(&mut self, to: usize) {
        match self {
            LayerCache::Tensors { len, .. } => *len = (*len).min(to),
            LayerCache::Host(host) => host.len = host.len.min(to),
        }
    }

    /// Appends `keys` and `values` (`[b, kv_heads, n, head_dim]`) after the filled positions,
    /// and returns every filled position as tensors of the same form.
    fn append(
        cache: &mut Option<LayerCache>,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> (Tensor<4>, Tensor<4>) {
        let [b, heads, n, d] = keys.dims();
        let device = keys.device();
        let on_cpu = matches!(device.as_dispatch(), DispatchDevice::Flex(_));
        if cache.is_none() && on_cpu && b == 1 {
            *cache = Some(LayerCache::Host(HostCache::new(
                heads,
                d,
                n + CACHE_HEADROOM,
            )));
        }
        if let Some(LayerCache::Host(host)) = cache {
            // Position by position, as `HostCache::append` takes them.
            let by_position = |t: Tensor<4>| {
                t.swap_dims(1, 2)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 activations")
            };
            host.append(&by_position(keys), &by_position(values), n);
            return host.tensors(&device);
        }
        let (mut keys_buffer, mut values_buffer, len) = match cache.take() {
            Some(LayerCache::Tensors { keys, values, len }) => (keys, values, len),
            _ => (
                Tensor::zeros([b, heads, n + CACHE_HEADROOM, d], &device),
                Tensor::zeros([b, heads, n + CACHE_HEADROOM, d], &device),
                0,
            ),
        };
        let total = len + n;
        let capacity = keys_buffer.dims()[2];
        if total > capacity {
            let grown = total.max(2 * capacity);
            let grow = |buffer: Tensor<4>| {
                let extra = Tensor::zeros([b, heads, grown - len, d], &buffer.device());
                Tensor::cat(vec![buffer.narrow(2, 0, len), extra], 2)
            };
            keys_buffer = grow(keys_buffer);
            values_buffer = grow(values_buffer);
        }
        // Only the cache holds the buffers here (the last step's views are gone), so the
        // backend writes in place where it can.
        let at = [0..b, 0..heads, len..total, 0..d];
        keys_buffer = keys_buffer.slice_assign(at.clone(), keys);
        values_buffer = values_buffer.slice_assign(at, values);
        let views = (
            keys_buffer.clone().narrow(2, 0, total),
            values_buffer.clone().narrow(2, 0, total),
        );
        *cache = Some(LayerCache::Tensors {
            keys: keys_buffer,
            values: values_buffer,
            len: total,
        });
        views
    }
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.layers
            .first()
            .and_then(|l| l.as_ref())
            .map_or(0, LayerCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every position from `len` on (a caption taking a word back): they are
    /// overwritten by the next positions.
    pub fn truncate(&mut self, len: usize) {
        for layer in &mut self.layers {
            if len == 0 {
                *layer = None;
            } else if let Some(layer) = layer {
                layer.truncate(len);
            }
        }
    }
}

impl FeedForward {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.down
            .forward(silu(self.gate.forward(x.clone())) * self.up.forward(x))
    }
}

/// The rotary position angles of positions `start..start + len` (`[len, head_dim / 2]`),
/// computed once per pass and shared by every layer's queries and keys.
struct Rotation {
    cos: Vec<f32>,
    sin: Vec<f32>,
    half: usize,
    /// The same as `[1, 1, len, head_dim / 2]` tensors, off the CPU (where the rotation runs
    /// as burn operations).
    tensors: Option<(Tensor<4>, Tensor<4>)>,
}

impl Rotation {
    fn new(start: usize, len: usize, head_dim: usize, base: f32, device: &Device) -> Self {
        let half = head_dim / 2;
        let mut cos = Vec::with_capacity(len * half);
        let mut sin = Vec::with_capacity(len * half);
        for pos in start..start + len {
            for i in 0..half {
                let angle = pos as f32 * base.powf(-2.0 * i as f32 / head_dim as f32);
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let on_cpu = matches!(device.as_dispatch(), DispatchDevice::Flex(_));
        let tensors = (!on_cpu).then(|| {
            let tensor = |v: &[f32]| {
                Tensor::<4>::from_data(TensorData::new(v.to_vec(), [1, 1, len, half]), device)
            };
            (tensor(&cos), tensor(&sin))
        });
        Self {
            cos,
            sin,
            half,
            tensors,
        }
    }

    /// [`Rotation::apply`] on host values `[b, len, heads · head_dim]`, in place.
    fn rotate_values(&self, values: &mut [f32], heads: usize) {
        let half = self.half;
        let len = self.cos.len() / half;
        let width = heads * 2 * half;
        for (row, pos) in values.chunks_exact_mut(width).zip((0..len).cycle()) {
            let cos = &self.cos[pos * half..(pos + 1) * half];
            let sin = &self.sin[pos * half..(pos + 1) * half];
            for head in row.chunks_exact_mut(2 * half) {
                for ((pair, &c), &s) in head.chunks_exact_mut(2).zip(cos).zip(sin) {
                    let (even, odd) = (pair[0], pair[1]);
                    pair[0] = even * c - odd * s;
                    pair[1] = even * s + odd * c;
                }
            }
        }
    }

    /// Rotates adjacent pairs of each head of `x` `[b, len, heads · head_dim]` by its
    /// position's angles; returns the heads apart, `[b, heads, len, head_dim]`. On the CPU it
    /// is one pass over the values rather than a dozen small tensor operations per call.
    fn apply(&self, x: Tensor<3>, heads: usize) -> Tensor<4> {
        let [b, len, width] = x.dims();
        let (d, half) = (width / heads, width / heads / 2);
        let device = x.device();
        let x = match &self.tensors {
            None => {
                let mut values = x
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 activations");
                self.rotate_values(&mut values, heads);
                Tensor::<3>::from_data(TensorData::new(values, [b, len, width]), &device)
            }
            Some((cos, sin)) => {
                let pairs = x.reshape([b, len, heads, half, 2]).swap_dims(1, 2);
                let even = pairs.clone().narrow(4, 0, 1).reshape([b, heads, len, half]);
                let odd = pairs.narrow(4, 1, 1).reshape([b, heads, len, half]);
                let rotated_even = even.clone() * cos.clone() - odd.clone() * sin.clone();
                let rotated_odd = even * sin.clone() + odd * cos.clone();
                let rotated = Tensor::stack::<5>(vec![rotated_even, rotated_odd], 4);
                return rotated.reshape([b, heads, len, d]);
            }
        };
        x.reshape([b, len, heads, d]).swap_dims(1, 2)
    }
}

impl Attention {
    fn forward(
        &self,
        x: Tensor<3>,
        start: usize,
        rotation: &Rotation,
        cache: &mut Option<LayerCache>,
    ) -> Tensor<3> {
        let [b, len, hidden] = x.dims();
        let v = self
            .v
            .forward(x.clone())
            .reshape([b, len, self.kv_heads, hidden / self.heads])
            .swap_dims(1, 2);
        let q = rotation.apply(self.q.forward(x.clone()), self.heads);
        let k = rotation.apply(self.k.forward(x), self.kv_heads);
        self.o.forward(self.attend([q, k, v], start, cache))
    }

    /// [`Attention::attend`] for one sequence on the CPU, on host values: `queries` `[len,
    /// heads · head_dim]` (rotated) over the `host` cache, which already holds their
    /// positions' keys and values; the heads' contexts side by side, `[len, hidden]`. The
    /// same arithmetic as the tensor form (scores divided by √head_dim, the softmax's
    /// maximum subtracted), without its two dozen tensor operations per layer.
    fn attend_host(&self, queries: &[f32], start: usize, host: &HostCache) -> Vec<f32> {
        let (heads, d) = (self.heads, host.head_dim);
        let group = heads / self.kv_heads;
        let mut context = vec![0.0f32; queries.len()];
        let room = HEADS_TOGETHER * host.len.next_multiple_of(LANES);
        // The query heads of key/value head `kv` (`query` and `out`: their `[group, head_dim]`),
        // a few at a time, so that each key and value is read once for all of them.
        let attend_kv =
            |query: &[f32], out: &mut [f32], kv: usize, visible: usize, scores: &mut [f32]| {
                for first in (0..group).step_by(HEADS_TOGETHER) {
                    let n = HEADS_TOGETHER.min(group - first);
                    let heads = first * d..(first + n) * d;
                    let (q, out) = (&query[heads.clone()], &mut out[heads]);
                    let at = CachedHead { host, kv, visible };
                    match n {
                        1 => attend_heads_simd::<1>(q, out, &at, scores),
                        2 => attend_heads_simd::<2>(q, out, &at, scores),
                        3 => attend_heads_simd::<3>(q, out, &at, scores),
                        _ => attend_heads_simd::<4>(q, out, &at, scores),
                    }
                }
            };
        if queries.len() == heads * d {
            // A decoded token: its key/value heads on the threads that run its products.
            let visible = start + 1;
            awake::for_each_chunk(&mut context, group * d, |(kv, out)| {
                let query = &queries[kv * group * d..(kv + 1) * group * d];
                attend_kv(query, out, kv, visible, &mut vec![0.0; room]);
            });
            return context;
        }
        let mut scores = vec![0.0f32; room];
        for (i, (query, out)) in queries
            .chunks_exact(heads * d)
            .zip(context.chunks_exact_mut(heads * d))
            .enumerate()
        {
            // Query `i` sees its own position and every one before it.
            let visible = start + i + 1;
            for kv in 0..self.kv_heads {
                let span = kv * group * d..(kv + 1) * group * d;
                attend_kv(
                    &query[span.clone()],
                    &mut out[span],
                    kv,
                    visible,
                    &mut scores,
                );
            }
        }
        context
    }

    /// The queries `[b, heads, len, head_dim]` over the cache with the keys and values
    /// (`[b, kv_heads, len, head_dim]`) appended: the heads' contexts side by side,
    /// `[b, len, hidden]`, before the output projection.
    fn attend(
        &self,
        [q, k, v]: [Tensor<4>; 3],
        start: usize,
        cache: &mut Option<LayerCache>,
    ) -> Tensor<3> {
        let [b, heads, len, head_dim] = q.dims();
        let (k, v) = LayerCache::append(cache, k, v);

        // Each key/value head serves `group = heads / kv_heads` query heads. Their queries are
        // stacked along the positions, `[b, kv_heads, group · len, head_dim]`, so each key and
        // value is read where it lies instead of being copied `group` times (which, with the
        // cache growing, was a large part of a decoded token's time outside the products).
        let total = k.dims()[2];
        let group = heads / self.kv_heads;
        let grouped = [b, self.kv_heads, group * len, total];
        let q = q.reshape([b, self.kv_heads, group * len, head_dim]);
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt();
        let scores = if len > 1 {
            let mask = causal_mask(len, start, &scores.device());
            (scores.reshape([b, heads, len, total]) + mask).reshape(grouped)
        } else {
            scores
        };
        softmax(scores, 3)
            .matmul(v)
            .reshape([b, heads, len, head_dim])
            .swap_dims(1, 2)
            .reshape([b, len, heads * head_dim])
    }
}

/// Query heads of a key/value head taken together by [`Attention::attend_host`].
const HEADS_TOGETHER: usize = 4;

/// Key/value head `kv` of a cache, its first `visible` positions.
struct CachedHead<'a> {
    host: &'a HostCache,
    kv: usize,
    visible: usize,
}

/// [`attend_heads`] compiled for the vector instructions there are: AVX-512 or AVX2 natively
/// (picked at run time), SIMD128 in wasm. Its loops are written for the compiler to vectorize,
/// which it does with the enclosing function's instructions: natively, outside a function like
/// this one, only SSE2's four lanes and no more (attention over the cache took 2.1 ms of a
/// decoded token's 19.2 there; 1.5 ms of 18.6 in here).
// `S` is how `with_simd` compiles the function once per instruction set; its body, written for
// the compiler to vectorize, never names it.
#[allow(clippy::extra_unused_type_parameters)]
#[macerator::with_simd]
fn attend_heads_simd<'a, S: macerator::Simd, const N: usize>(
    queries: &'a [f32],
    out: &'a mut [f32],
    at: &'a CachedHead<'a>,
    room: &'a mut [f32],
) {
    attend_heads::<N>(queries, out, (at.host, at.kv, at.visible, room));
}

/// f32 values in a cache line.
const LINE: usize = 16;

/// Asks for the cache line that holds `value`, to be read soon: the hardware's prefetcher
/// starts again at each page, and a key tile is one (4 KiB at SmolLM2's head_dim of 64).
#[inline(always)]
fn fetch_ahead(value: &f32) {
    // Wasm has no prefetch instruction; a load starts the line's transfer as well.
    #[cfg(target_arch = "wasm32")]
    // SAFETY: a read of a reference; volatile, so that it is not dropped.
    let _ = unsafe { std::ptr::read_volatile(value) };
    #[cfg(not(target_arch = "wasm32"))]
    crate::runtime::prefetch(value);
}

/// `N` query heads (`queries`, `[N, head_dim]`) over the first `visible` positions of key/value
/// head `kv` of the cache, added into `out` (`[N, head_dim]`); `room` holds their scores.
#[inline(always)]
fn attend_heads<const N: usize>(
    queries: &[f32],
    out: &mut [f32],
    (host, kv, visible, room): (&HostCache, usize, usize, &mut [f32]),
) {
    let d = host.head_dim;
    let (keys, values) = (host.keys(kv), host.values(kv));
    let root = (d as f32).sqrt();
    let padded = visible.next_multiple_of(LANES);
    let mut rows = room[..N * padded].chunks_exact_mut(padded);
    let mut scores: [&mut [f32]; N] = std::array::from_fn(|_| rows.next().unwrap());
    let q: [&[f32]; N] = std::array::from_fn(|t| &queries[t * d..(t + 1) * d]);
    // Sixteen positions at a time, every head's sums held in registers over the query's
    // values (key rows are padded to a multiple of sixteen positions).
    for chunk in 0..padded / LANES {
        let mut sums = [[0.0f32; LANES]; N];
        let tile = &keys[chunk * d * LANES..][..d * LANES];
        if (chunk + 1) * LANES < visible {
            let next = &keys[(chunk + 1) * d * LANES..][..d * LANES];
            next.chunks(LINE).for_each(|line| fetch_ahead(&line[0]));
        }
        for (c, row) in tile.chunks_exact(LANES).enumerate() {
            for (sums, q) in sums.iter_mut().zip(&q) {
                let qc = q[c];
                for (sum, &key) in sums.iter_mut().zip(row) {
                    *sum += qc * key;
                }
            }
        }
        for (scores, sums) in scores.iter_mut().zip(&sums) {
            scores[chunk * LANES..][..LANES].copy_from_slice(sums);
        }
    }
    // Softmax, as the tensor form computes it: divided by √head_dim, the maximum subtracted.
    for scores in scores.iter_mut() {
        let scores = &mut scores[..visible];
        let mut max = f32::NEG_INFINITY;
        for score in scores.iter_mut() {
            *score /= root;
            max = max.max(*score);
        }
        for score in scores.iter_mut() {
            *score = exp(*score - max);
        }
        let sum: f32 = scores.iter().sum();
        for score in scores.iter_mut() {
            *score /= sum;
        }
    }
    // Four positions' values at a time into each head's context.
    let quads = visible / 4;
    for (j, v) in values.chunks_exact(4 * d).take(quads).enumerate() {
        if let Some(ahead) = values.get((4 * j + 16) * d..(4 * j + 20) * d) {
            ahead.chunks(LINE).for_each(|line| fetch_ahead(&line[0]));
        }
        let (v0, v1, v2, v3) = (&v[..d], &v[d..2 * d], &v[2 * d..3 * d], &v[3 * d..]);
        for (scores, out) in scores.iter().zip(out.chunks_exact_mut(d)) {
            let w = &scores[4 * j..4 * j + 4];
            for ((((o, a), b), c), e) in out.iter_mut().zip(v0).zip(v1).zip(v2).zip(v3) {
                *o += w[0] * a + w[1] * b + w[2] * c + w[3] * e;
            }
        }
    }
    for (j, value) in values
        .chunks_exact(d)
        .enumerate()
        .take(visible)
        .skip(4 * quads)
    {
        for (scores, out) in scores.iter().zip(out.chunks_exact_mut(d)) {
            let weight = scores[j];
            for (o, v) in out.iter_mut().zip(value) {
                *o += weight * v;
            }
        }
    }
}

impl Block {
    fn forward(
        &self,
        x: Tensor<3>,
        start: usize,
        rotation: &Rotation,
        cache: &mut Option<LayerCache>,
    ) -> Tensor<3> {
        let x = x.clone()
            + self
                .attn
                .forward(self.attn_norm.forward(x), start, rotation, cache);
        x.clone() + self.ffn.forward(self.ffn_norm.forward(x))
    }

    /// The block's seven matrices where it decodes `positions` on values
    /// ([`Self::decode_on_values`]); `None` where it runs as tensor operations: other devices,
    /// f32 weights, or natively a prompt (which the backend's matrix product serves better).
    fn value_matrices(&self, positions: usize, rotation: &Rotation) -> Option<[&BlockMatrix; 7]> {
        if positions >= GEMM_FROM_ROWS || rotation.tensors.is_some() {
            return None;
        }
        let matrices = [
            &self.attn.q,
            &self.attn.k,
            &self.attn.v,
            &self.attn.o,
            &self.ffn.gate,
            &self.ffn.up,
            &self.ffn.down,
        ];
        let [q, k, v, o, gate, up, down] = matrices.map(|m| match m {
            Matrix::Blocks(w) => Some(w),
            _ => None,
        });
        Some([q?, k?, v?, o?, gate?, up?, down?])
    }

    /// The block for a few positions on the CPU (decoding), on the hidden state's values
    /// `[b, len, hidden]`: the norms, the seven products, the rotation, attention over the
    /// cache, the gating and the residual adds; this replaces about 90 small tensor
    /// operations per block (each allocating, on inputs of a few hundred values), and
    /// attention's two dozen.
    #[allow(clippy::too_many_arguments)]
    fn decode_on_values(
        &self,
        [q, k, v, o, gate, up, down]: [&BlockMatrix; 7],
        mut residual: Vec<f32>,
        [b, len, hidden]: [usize; 3],
        start: usize,
        rotation: &Rotation,
        cache: &mut Option<LayerCache>,
        device: &Device,
    ) -> Vec<f32> {
        let m = b * len;
        // Products that share their input (q, k and v; gate and up) share its quantization.
        let product = |w: &BlockMatrix, x: &SharedRows| {
            super::profile::timed(Part::Product(w.dims()), || w.dot_values(x, m))
        };
        let [attn_gamma, ffn_gamma] = self.norm_values.get_or_init(|| {
            [&self.attn_norm, &self.ffn_norm].map(|norm| {
                norm.gamma
                    .val()
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 norm weights")
            })
        });

        let normed = rms_norm_values(&residual, attn_gamma, self.attn_norm.epsilon);
        let (heads, kv_heads) = (self.attn.heads, self.attn.kv_heads);
        let head_dim = hidden / heads;
        let normed = SharedRows::new(&normed);
        let mut queries = product(q, &normed);
        let mut keys = product(k, &normed);
        let values = product(v, &normed);
        rotation.rotate_values(&mut queries, heads);
        rotation.rotate_values(&mut keys, kv_heads);
        let context = super::profile::timed(Part::Attention, || match cache {
            Some(LayerCache::Host(host)) if b == 1 => {
                host.append(&keys, &values, len);
                self.attn.attend_host(&queries, start, host)
            }
            _ => {
                let split = |values: Vec<f32>, heads: usize| {
                    Tensor::<4>::from_data(
                        TensorData::new(values, [b, len, heads, head_dim]),
                        device,
                    )
                    .swap_dims(1, 2)
                };
                let qkv = [
                    split(queries, heads),
                    split(keys, kv_heads),
                    split(values, kv_heads),
                ];
                self.attn
                    .attend(qkv, start, cache)
                    .into_data()
                    .try_into_vec::<f32>()
                    .expect("f32 activations")
            }
        });
        for (r, a) in residual
            .iter_mut()
            .zip(product(o, &SharedRows::new(&context)))
        {
            *r += a;
        }

        let normed = rms_norm_values(&residual, ffn_gamma, self.ffn_norm.epsilon);
        let normed = SharedRows::new(&normed);
        let mut gated = product(gate, &normed);
        for (g, u) in gated.iter_mut().zip(product(up, &normed)) {
            // SiLU in the form burn's CPU backend computes it, then the gate.
            let e = exp(-g.abs());
            let sigmoid = if *g >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            *g = *g * sigmoid * u;
        }
        for (r, f) in residual
            .iter_mut()
            .zip(product(down, &SharedRows::new(&gated)))
        {
            *r += f;
        }
        residual
    }
}

/// `eˣ` within 2 ulp for the arguments a decoded token's softmax and SiLU take (at most 0, and
/// above −87 where it matters: smaller ones give about 1e−38 instead of less), in arithmetic the
/// compiler vectorizes: `f32::exp` is a call per value into the platform's libm, about 10 ns
/// each in wasm, and a token takes about 100,000 of them. `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2`
/// (ln 2 in two parts, so `r` is exact), `eʳ` by its Taylor polynomial of degree 7 (relative
/// error below 1e−8), and `2ᵏ` put in the exponent's bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Adding 1.5·2²³ rounds to an integer, which then sits in the low bits of the sum.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HIGH: f32 = 0.693_145_75;
    const LN2_LOW: f32 = 1.428_606_8e-6;
    let x = if x < -87.0 { -87.0 } else { x };
    let x = if x > 88.0 { 88.0 } else { x };
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let k = shifted - ROUND;
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    let r = (x - k * LN2_HIGH) - k * LN2_LOW;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// [`RmsNorm::forward`] on host rows (the last dimension being the norm's width).
fn rms_norm_values(x: &[f32], gamma: &[f32], epsilon: f64) -> Vec<f32> {
    let epsilon = epsilon as f32;
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(gamma.len()) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / row.len() as f32;
        let rms = (mean + epsilon).sqrt();
        out.extend(row.iter().zip(gamma).map(|(v, g)| v / rms * g));
    }
    out
}

/// `[1, 1, len, start + len]`: 0 where query `i` may see key `j` (j ≤ start + i), else −∞.
fn causal_mask(len: usize, start: usize, device: &Device) -> Tensor<4> {
    let total = start + len;
    let values: Vec<f32> = (0..len)
        .flat_map(|i| {
            (0..total).map(move |j| {
                if j <= start + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, 1, len, total]), device)
}

/// What the weights occupy: every matrix and norm the model holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightStats {
    /// On the device (for the CPU backend, host memory).
    pub bytes: usize,
    /// In host memory besides, for a GPU device (embedding rows to look up).
    pub host_bytes: usize,
    pub params: usize,
}

impl WeightStats {
    /// Device bits per weight.
    pub fn bits_per_weight(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.params as f64
    }
}

impl Llama {
    /// Bytes and number of the weights held (a tied output projection counted once).
    pub fn weight_stats(&self) -> WeightStats {
        let mut matrices: Vec<&Matrix> = vec![&self.embedding];
        matrices.extend(self.output.as_ref());
        let mut norms = vec![&self.norm];
        for block in &self.blocks {
            let (a, f) = (&block.attn, &block.ffn);
            matrices.extend([&a.q, &a.k, &a.v, &a.o, &f.gate, &f.up, &f.down]);
            norms.extend([&block.attn_norm, &block.ffn_norm]);
        }
        let norm_params: usize = norms.iter().map(|n| n.gamma.dims()[0]).sum();
        WeightStats {
            bytes: matrices.iter().map(|m| m.bytes()).sum::<usize>() + norm_params * 4,
            host_bytes: matrices.iter().map(|m| m.host_bytes()).sum(),
            params: matrices
                .iter()
                .map(|m| m.dims().iter().product::<usize>())
                .sum::<usize>()
                + norm_params,
        }
    }

    /// Each weight matrix a token passes through, by role and shape, in order.
    pub fn matrix_roles(&self) -> Vec<(&'static str, [usize; 2])> {
        let mut roles = Vec::new();
        for block in &self.blocks {
            let (a, f) = (&block.attn, &block.ffn);
            for (name, m) in [
                ("q", &a.q),
                ("k", &a.k),
                ("v", &a.v),
                ("o", &a.o),
                ("gate", &f.gate),
                ("up", &f.up),
                ("down", &f.down),
            ] {
                roles.push((name, m.dims()));
            }
        }
        roles.push(("output", self.output_projection().dims()));
        roles
    }

    /// Logits `[1, L, vocab]` for the token ids `tokens` following the positions in `cache`,
    /// which is extended with them.
    pub fn forward(&self, tokens: &[u32], cache: &mut KvCache) -> Tensor<3> {
        self.output_projection().forward(self.hidden(tokens, cache))
    }

    /// Runs `tokens` behind the positions in `cache` only for their keys and values: a
    /// prompt's beginning that later prompts continue.
    pub fn feed(&self, tokens: &[u32], cache: &mut KvCache) {
        let _ = self.hidden(tokens, cache);
    }

    /// The logits `[1, vocab]` of the last position only: what generation needs, without
    /// projecting every prompt position onto the vocabulary.
    pub fn next_logits(&self, tokens: &[u32], cache: &mut KvCache) -> Tensor<2> {
        let x = self.hidden(tokens, cache);
        let [b, len, _] = x.dims();
        let last = x.narrow(1, len - 1, 1);
        let logits = self.output_projection().forward(last);
        let vocab = logits.dims()[2];
        logits.reshape([b, vocab])
    }

    fn output_projection(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.embedding)
    }

    /// The final normalized hidden states `[1, L, hidden]`.
    fn hidden(&self, tokens: &[u32], cache: &mut KvCache) -> Tensor<3> {
        let start = cache.len();
        cache.layers.resize_with(self.blocks.len(), || None);
        let ids: Vec<usize> = tokens.iter().map(|&t| t as usize).collect();
        let hidden = self.embedding.dims()[1];
        let mut x = self
            .embedding
            .rows(&ids, &self.device)
            .reshape([1, ids.len(), hidden]);
        let head_dim = self
            .blocks
            .first()
            .map_or(hidden, |b| hidden / b.attn.heads);
        let rotation = Rotation::new(start, ids.len(), head_dim, self.rope_base, &self.device);
        let dims = [1, ids.len(), hidden];
        // The hidden state's values while blocks decode on them, handed back to a tensor only
        // where a block does not (or at the end).
        let mut values: Option<Vec<f32>> = None;
        for (block, layer_cache) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            match block.value_matrices(ids.len(), &rotation) {
                Some(matrices) => {
                    let residual = values.take().unwrap_or_else(|| {
                        x.clone()
                            .into_data()
                            .try_into_vec::<f32>()
                            .expect("f32 activations")
                    });
                    values = Some(block.decode_on_values(
                        matrices,
                        residual,
                        dims,
                        start,
                        &rotation,
                        layer_cache,
                        &self.device,
                    ));
                }
                None => {
                    if let Some(values) = values.take() {
                        x = Tensor::from_data(TensorData::new(values, dims), &self.device);
                    }
                    x = block.forward(x, start, &rotation, layer_cache);
                }
            }
        }
        if let Some(values) = values {
            x = Tensor::from_data(TensorData::new(values, dims), &self.device);
        }
        self.norm.forward(x)
    }
}

/// How [`load`] keeps the weight matrices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Every matrix dequantized to f32 (about 4 bytes per weight): the reference.
    F32,
    /// Every matrix in the file's own encoding, decoded inside the products.
    Quantized,
}

impl Llama {
    /// Reads a LLaMA-family GGUF file and loads the decoder onto `device`, keeping its
    /// matrices as `storage` says. Every failure names what is wrong with the file.
    pub fn from_gguf(bytes: &[u8], storage: Storage, device: &Device) -> Result<Llama, GgufError> {
        load(&Gguf::parse(bytes)?, bytes, device, storage)
    }
}

/// [`Llama::from_gguf`] for a file already parsed (the tokenizer is read from the same
/// header). `Storage::Quantized` keeps Q4_0, Q4_1, Q8_0, F16, BF16 or F32 blocks and decodes
/// them inside the products; norms are f32.
pub fn load(
    gguf: &Gguf,
    bytes: &[u8],
    device: &Device,
    storage: Storage,
) -> Result<Llama, GgufError> {
    let config = LlamaConfig::from_gguf(gguf)?;
    config.check(gguf)?;
    let on_cpu = matches!(device.as_dispatch(), DispatchDevice::Flex(_));
    let raw = |name: &str| -> Result<(&TensorInfo, &[u8]), GgufError> {
        let info = gguf
            .tensor(name)
            .ok_or_else(|| GgufError(format!("the file has no tensor `{name}`")))?;
        let range = gguf.data_range(info)?;
        let data = bytes
            .get(range.start as usize..range.end as usize)
            .ok_or_else(|| GgufError(format!("tensor `{name}` lies outside the file")))?;
        Ok((info, data))
    };
    // `lookup`: the matrix is also an embedding table, which needs row lookups.
    let matrix_for =
        |name: &str, rows: usize, cols: usize, lookup: bool| -> Result<Matrix, GgufError> {
            let (info, data) = raw(name)?;
            if info.dims != [cols as u64, rows as u64] {
                return Err(GgufError(format!(
                    "tensor `{name}` is {:?}, expected [{cols}, {rows}]",
                    info.dims
                )));
            }
            let named = |e: GgufError| GgufError(format!("tensor `{name}`: {}", e.0));
            Ok(match storage {
                Storage::F32 => Matrix::Dense(Tensor::from_data(
                    TensorData::new(
                        dequantize(info.ggml_type, data).map_err(named)?,
                        [rows, cols],
                    ),
                    device,
                )),
                Storage::Quantized if on_cpu => Matrix::Blocks(
                    BlockMatrix::new(info.ggml_type, rows, cols, data).map_err(named)?,
                ),
                // A GPU gets burn's quantized tensors where the type maps onto them, else f32
                // (its shaders have no f16).
                Storage::Quantized => {
                    match QuantizedMatrix::new(info.ggml_type, rows, cols, data, device)
                        .map_err(named)?
                    {
                        Some(w) if lookup => Matrix::Quantized(
                            w.with_host_rows(info.ggml_type, data).map_err(named)?,
                        ),
                        Some(w) => Matrix::Quantized(w),
                        None => Matrix::Dense(Tensor::from_data(
                            TensorData::new(
                                dequantize(info.ggml_type, data).map_err(named)?,
                                [rows, cols],
                            ),
                            device,
                        )),
                    }
                }
            })
        };
    let matrix = |name: &str, rows: usize, cols: usize| matrix_for(name, rows, cols, false);
    let norm = |name: &str| -> Result<RmsNorm, GgufError> {
        let (info, data) = raw(name)?;
        // Checked before the norm is built: its width comes from the metadata, which could
        // claim any size.
        if info.dims != [config.hidden as u64] {
            return Err(GgufError(format!(
                "tensor `{name}` is {:?}, expected [{}]",
                info.dims, config.hidden
            )));
        }
        let mut norm = RmsNormConfig::new(config.hidden)
            .with_epsilon(config.rms_eps)
            .init(device);
        norm.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(dequantize(info.ggml_type, data)?, [config.hidden]),
            device,
        ));
        Ok(norm)
    };
    let (h, kv) = (config.hidden, config.kv_heads * config.head_dim());
    let blocks = (0..config.layers)
        .map(|i| {
            let name = |part: &str| format!("blk.{i}.{part}.weight");
            Ok(Block {
                attn_norm: norm(&name("attn_norm"))?,
                attn: Attention {
                    q: matrix(&name("attn_q"), h, h)?,
                    k: matrix(&name("attn_k"), kv, h)?,
                    v: matrix(&name("attn_v"), kv, h)?,
                    o: matrix(&name("attn_output"), h, h)?,
                    heads: config.heads,
                    kv_heads: config.kv_heads,
                },
                ffn_norm: norm(&name("ffn_norm"))?,
                ffn: FeedForward {
                    gate: matrix(&name("ffn_gate"), config.ffn, h)?,
                    up: matrix(&name("ffn_up"), config.ffn, h)?,
                    down: matrix(&name("ffn_down"), h, config.ffn)?,
                },
                norm_values: OnceLock::new(),
            })
        })
        .collect::<Result<Vec<_>, GgufError>>()?;
    let embedding = matrix_for("token_embd.weight", config.vocab_size, h, true)?;
    let output = match gguf.tensor("output.weight") {
        Some(_) => Some(matrix("output.weight", config.vocab_size, h)?),
        None => None,
    };
    Ok(Llama {
        embedding,
        blocks,
        norm: norm("output_norm.weight")?,
        output,
        rope_base: config.rope_base,
        device: device.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::gguf::tests::Builder;

    fn header(architecture: &str, tokens: usize) -> Vec<u8> {
        let mut b = Builder::new().string_kv("general.architecture", architecture);
        for (key, value) in [
            ("embedding_length", 8),
            ("block_count", 1),
            ("attention.head_count", 2),
            ("attention.head_count_kv", 1),
            ("feed_forward_length", 16),
            ("vocab_size", 4),
        ] {
            b = b.u32_kv(&format!("{architecture}.{key}"), value);
        }
        b.string_array_kv("tokenizer.ggml.tokens", &vec!["t"; tokens])
            .build()
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_platform_exp() {
        let (mut x, mut worst) = (-87.0f32, (0.0f32, 0.0f32));
        while x <= 88.0 {
            let (got, expected) = (exp(x), x.exp());
            let ulp = f32::from_bits(expected.to_bits() + 1) - expected;
            let error = (got - expected).abs() / ulp;
            if error > worst.0 {
                worst = (error, x);
            }
            x += 0.000_37;
        }
        assert!(worst.0 <= 2.0, "{} ulp at {}", worst.0, worst.1);
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) > 0.0);
    }

    #[test]
    fn an_unsupported_architecture_is_named() {
        let bytes = header("mamba", 4);
        let err = LlamaConfig::from_gguf(&Gguf::parse(&bytes).unwrap()).unwrap_err();
        assert!(
            err.0.contains("\"mamba\"") && err.0.contains("not supported"),
            "{err}"
        );
    }

    #[test]
    fn a_vocabulary_that_disagrees_with_the_tokenizer_is_refused() {
        let bytes = header("llama", 5);
        let gguf = Gguf::parse(&bytes).unwrap();
        let err = load(&gguf, &bytes, &Device::flex(), Storage::F32).unwrap_err();
        assert!(
            err.0
                .contains("the tokenizer has 5 tokens but the model's vocabulary is 4"),
            "{err}"
        );
    }

    #[test]
    fn a_norm_wider_than_its_tensor_is_refused_before_it_is_built() {
        // Found by the `gguf` fuzz target: the metadata claimed a width of 4194368.
        let bytes = Builder::new()
            .string_kv("general.architecture", "llama")
            .u32_kv("llama.embedding_length", 1 << 22)
            .u32_kv("llama.block_count", 1)
            .u32_kv("llama.attention.head_count", 2)
            .u32_kv("llama.attention.head_count_kv", 1)
            .u32_kv("llama.feed_forward_length", 16)
            .u32_kv("llama.vocab_size", 4)
            .tensor("blk.0.attn_norm.weight", &[8], 0, vec![0; 32])
            .build();
        let gguf = Gguf::parse(&bytes).unwrap();
        let err = load(&gguf, &bytes, &Device::flex(), Storage::Quantized).unwrap_err();
        assert!(err.0.contains("is [8], expected [4194304]"), "{err}");
    }

    #[test]
    fn heads_of_odd_width_are_refused() {
        let bytes = Builder::new()
            .string_kv("general.architecture", "llama")
            .u32_kv("llama.embedding_length", 6)
            .u32_kv("llama.block_count", 1)
            .u32_kv("llama.attention.head_count", 2)
            .u32_kv("llama.attention.head_count_kv", 1)
            .u32_kv("llama.feed_forward_length", 16)
            .u32_kv("llama.vocab_size", 4)
            .build();
        let gguf = Gguf::parse(&bytes).unwrap();
        let err = load(&gguf, &bytes, &Device::flex(), Storage::Quantized).unwrap_err();
        assert!(err.0.contains("do not fit together"), "{err}");
    }

    #[test]
    fn a_missing_weight_is_named() {
        let bytes = header("llama", 4);
        let gguf = Gguf::parse(&bytes).unwrap();
        let err = load(&gguf, &bytes, &Device::flex(), Storage::F32).unwrap_err();
        assert!(
            err.0.contains("no tensor `blk.0.attn_norm.weight`"),
            "{err}"
        );
    }
}
