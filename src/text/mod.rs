//! Reading the labels a person types: the sentence encoder all-MiniLM-L6-v2 ([`minilm`]), its
//! tokenizer and pooled embeddings ([`sentence`]), and the ranking of typed labels against the
//! classifier's probabilities ([`zero_shot`], ConSE).

pub mod minilm;
pub mod sentence;
pub mod zero_shot;

pub use zero_shot::{LabelRanker, LabelScore, ScoreKind, parse_labels, tidy_labels};
