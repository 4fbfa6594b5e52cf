//! Writing a caption: the facts it may state ([`facts`], gathered from the picture by
//! `evidence`: a second object only when confirmed in its own region) and the object words it may use
//! ([`words`]), the few-shot prompt and the template ([`prompt`]), constrained greedy decoding
//! and its stop rules ([`captioner`]), run by a LLaMA-family decoder ([`llama`]) whose weights stay 4-bit
//! ([`quant`]: the products that decode blocks in registers; `intdot`: their integer block
//! dot products for decoding), read from a GGUF file
//! ([`gguf`]: the container; [`blocks`]: how each encoding holds its values) with the
//! tokenizer its metadata holds ([`tokenizer`]). [`Captioner::from_gguf`] loads it all.
//! [`profile`] times a decoded token's parts.

pub mod blocks;
pub mod captioner;
pub mod evidence;
pub mod facts;
pub mod gguf;
mod intdot;
pub mod llama;
pub mod profile;
pub mod prompt;
pub mod quant;
pub mod tokenizer;
pub mod words;

pub use captioner::{Caption, Captioner, Choice, Generation, MAX_TOKENS, Source};
pub use facts::{Certainty, Facts, Subject};
