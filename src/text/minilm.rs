//! all-MiniLM-L6-v2: a 6-layer BERT encoder (Devlin et al., 2019; distilled by Wang et al.,
//! 2020) whose mean-pooled, L2-normalized output is a sentence embedding (Reimers &
//! Gurevych, 2019).
//!
//! ```text
//! token ids [B,L] ─ word + position + type embeddings ─ LayerNorm
//!   └ 6 × [ self-attention (12 heads) ─ dense ─ +residual ─ LayerNorm
//!           dense 384→1536 ─ GELU ─ dense 1536→384 ─ +residual ─ LayerNorm ]
//!   └ mean over the unmasked tokens ─ L2 normalize → [B,384]
//! ```
//!
//! Field names follow the Hugging Face checkpoint (`encoder.layer.N.attention.output.dense`),
//! except `self` (a Rust keyword), spelled `self_attn`, and `LayerNorm`, spelled `layer_norm`.

use burn::module::Module;
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor};

#[derive(Debug, Clone, PartialEq)]
pub struct MiniLmConfig {
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
}

impl MiniLmConfig {
    pub fn all_minilm_l6_v2() -> Self {
        Self {
            vocab_size: 30522,
            hidden: 384,
            layers: 6,
            heads: 12,
            intermediate: 1536,
            max_positions: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
        }
    }

    /// A network with zeroed weights, ready to have real ones loaded into it.
    pub fn init(&self, device: &Device) -> MiniLm {
        let linear = |i: usize, o: usize| {
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(self.hidden)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let embedding = |n: usize| {
            EmbeddingConfig::new(n, self.hidden)
                .with_initializer(Initializer::Zeros)
                .init(device)
        };
        let layer = || Layer {
            attention: Attention {
                self_attn: SelfAttention {
                    query: linear(self.hidden, self.hidden),
                    key: linear(self.hidden, self.hidden),
                    value: linear(self.hidden, self.hidden),
                    heads: self.heads,
                },
                output: DenseNorm {
                    dense: linear(self.hidden, self.hidden),
                    layer_norm: norm(),
                },
            },
            intermediate: Dense {
                dense: linear(self.hidden, self.intermediate),
            },
            output: DenseNorm {
                dense: linear(self.intermediate, self.hidden),
                layer_norm: norm(),
            },
        };
        MiniLm {
            embeddings: Embeddings {
                word_embeddings: embedding(self.vocab_size),
                position_embeddings: embedding(self.max_positions),
                token_type_embeddings: embedding(self.type_vocab_size),
                layer_norm: norm(),
            },
            encoder: Encoder {
                layer: (0..self.layers).map(|_| layer()).collect(),
            },
        }
    }
}

#[derive(Module, Debug)]
pub struct Embeddings {
    pub word_embeddings: Embedding,
    pub position_embeddings: Embedding,
    pub token_type_embeddings: Embedding,
    pub layer_norm: LayerNorm,
}

impl Embeddings {
    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [batch, len] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..len as i64, &device)
            .reshape([1, len])
            .repeat_dim(0, batch);
        // Every token is of type 0: one sentence per input.
        let types = Tensor::<2, Int>::zeros([batch, len], &device);
        let x = self.word_embeddings.forward(ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(types);
        self.layer_norm.forward(x)
    }
}

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Linear,
    pub key: Linear,
    pub value: Linear,
    #[module(skip)]
    pub heads: usize,
}

impl SelfAttention {
    /// `additive_mask` is `[B,1,1,L]`: 0 for tokens, a large negative number for padding.
    fn forward(&self, x: Tensor<3>, additive_mask: Tensor<4>) -> Tensor<3> {
        let [batch, len, hidden] = x.dims();
        let head_dim = hidden / self.heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, len, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let (q, k, v) = (
            split(self.query.forward(x.clone())),
            split(self.key.forward(x.clone())),
            split(self.value.forward(x)),
        );
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt() + additive_mask;
        softmax(scores, 3)
            .matmul(v)
            .swap_dims(1, 2)
            .reshape([batch, len, hidden])
    }
}

/// A projection followed by the residual connection and LayerNorm.
#[derive(Module, Debug)]
pub struct DenseNorm {
    pub dense: Linear,
    pub layer_norm: LayerNorm,
}

impl DenseNorm {
    fn forward(&self, x: Tensor<3>, residual: Tensor<3>) -> Tensor<3> {
        self.layer_norm.forward(self.dense.forward(x) + residual)
    }
}

#[derive(Module, Debug)]
pub struct Dense {
    pub dense: Linear,
}

#[derive(Module, Debug)]
pub struct Attention {
    pub self_attn: SelfAttention,
    pub output: DenseNorm,
}

#[derive(Module, Debug)]
pub struct Layer {
    pub attention: Attention,
    pub intermediate: Dense,
    pub output: DenseNorm,
}

impl Layer {
    fn forward(&self, x: Tensor<3>, additive_mask: Tensor<4>) -> Tensor<3> {
        let attended = self.attention.output.forward(
            self.attention.self_attn.forward(x.clone(), additive_mask),
            x,
        );
        let expanded = gelu(self.intermediate.dense.forward(attended.clone()));
        self.output.forward(expanded, attended)
    }
}

#[derive(Module, Debug)]
pub struct Encoder {
    pub layer: Vec<Layer>,
}

#[derive(Module, Debug)]
pub struct MiniLm {
    pub embeddings: Embeddings,
    pub encoder: Encoder,
}

impl MiniLm {
    /// Token states `[B,L,384]` for token ids `[B,L]`; `mask` is 1 for tokens, 0 for padding.
    pub fn hidden_states(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<3> {
        let [batch, len] = ids.dims();
        let additive_mask = (mask.neg() + 1.0).reshape([batch, 1, 1, len]) * -1e9;
        let mut x = self.embeddings.forward(ids);
        for layer in &self.encoder.layer {
            x = layer.forward(x, additive_mask.clone());
        }
        x
    }

    /// Sentence embeddings `[B,384]`: the mean of the token states under `mask`, unit length.
    pub fn forward(&self, ids: Tensor<2, Int>, mask: Tensor<2>) -> Tensor<2> {
        let [batch, len] = ids.dims();
        let states = self.hidden_states(ids, mask.clone());
        let hidden = states.dims()[2];
        let weights = mask.reshape([batch, len, 1]);
        let summed = (states * weights.clone())
            .sum_dim(1)
            .reshape([batch, hidden]);
        let counts = weights.sum_dim(1).reshape([batch, 1]).clamp_min(1.0);
        let mean = summed / counts;
        let norm = mean
            .clone()
            .powi_scalar(2)
            .sum_dim(1)
            .sqrt()
            .clamp_min(1e-12);
        mean / norm
    }
}
