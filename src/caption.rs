//! One-sentence captions grounded in the classifier's labels: a few-shot ChatML prompt turns
//! "bull mastiff 67%, boxer 29%" into words with the small language model. A zero-shot
//! instruction makes a 135M model ramble; three short examples keep it to one sentence. A
//! caption that does not name the top class is replaced by a plain template.

use burn::tensor::{Device, Int, Tensor, TensorData};
use tokenizers::Tokenizer;

use crate::classifier::Prediction;
use crate::error::{GlimpseError, Result};
use crate::gguf_tokenizer::{TextStream, token_bytes};
use crate::llama::{KvCache, Llama};

/// At most this many tokens are generated.
pub const MAX_TOKENS: usize = 24;

const SYSTEM: &str = "You write one short, plain sentence describing a photo, using the labels an image classifier gave it.";

/// (labels, caption) examples shown to the model before the real request.
const EXAMPLES: [(&str, &str); 3] = [
    (
        "golden retriever 81%, tennis ball 12%",
        "A golden retriever playing with a tennis ball.",
    ),
    ("espresso 62%, cup 20%", "A cup of espresso on a table."),
    (
        "sports car 70%, racer 9%",
        "A red sports car parked on the street.",
    ),
];

fn user_turn(labels: &str) -> String {
    format!("Labels: {labels}\nCaption:")
}

/// The classifier's top classes as the prompt writes them: `bull mastiff 67%, boxer 29%`.
pub fn describe(top: &[Prediction]) -> String {
    top.iter()
        .map(|p| format!("{} {:.0}%", p.label, p.prob * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ChatML prompt (SmolLM2's template) with the few-shot examples and the request.
pub fn prompt(top: &[Prediction]) -> String {
    let mut text = format!("<|im_start|>system\n{SYSTEM}<|im_end|>\n");
    for (labels, caption) in EXAMPLES {
        text.push_str(&format!(
            "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n{caption}<|im_end|>\n",
            user_turn(labels)
        ));
    }
    text.push_str(&format!(
        "<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        user_turn(&describe(top))
    ));
    text
}

/// The last word of the class's first name ("bull mastiff" → "mastiff"), which a caption
/// about the photo should contain.
pub fn head_noun(label: &str) -> String {
    label
        .split_whitespace()
        .last()
        .unwrap_or(label)
        .to_lowercase()
}

/// "A photo of a bull mastiff." for when the model's sentence does not name the class.
pub fn fallback(label: &str) -> String {
    let article = if label.starts_with(|c: char| "aeiouAEIOU".contains(c)) {
        "an"
    } else {
        "a"
    };
    format!("A photo of {article} {label}.")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Caption {
    pub text: String,
    /// True when the template replaced what the model wrote.
    pub fallback: bool,
    pub tokens: usize,
}

pub struct Captioner {
    model: Llama,
    tokenizer: Tokenizer,
    device: Device,
    end_of_turn: u32,
}

impl Captioner {
    pub fn new(model: Llama, tokenizer: Tokenizer, device: Device) -> Result<Self> {
        let end_of_turn = tokenizer.token_to_id("<|im_end|>").ok_or_else(|| {
            GlimpseError::ModelLoad("the caption model's vocabulary has no <|im_end|>".into())
        })?;
        Ok(Self {
            model,
            tokenizer,
            device,
            end_of_turn,
        })
    }

    /// Writes a caption for the classifier's `top` classes (best first), calling `on_text` with
    /// each piece of text as it is generated (never half a character).
    pub fn caption(&self, top: &[Prediction], mut on_text: impl FnMut(&str)) -> Result<Caption> {
        let best = top
            .first()
            .ok_or_else(|| GlimpseError::InvalidArgument("no classes to describe".into()))?;
        let ids = self
            .tokenizer
            .encode(prompt(top), false)
            .map_err(|e| GlimpseError::ModelLoad(format!("cannot tokenize the prompt: {e}")))?
            .get_ids()
            .to_vec();

        let mut cache = KvCache::default();
        let mut next = self.step(&ids, &mut cache)?;
        let mut generated: Vec<u32> = Vec::new();
        let mut stream = TextStream::default();
        let mut text = String::new();
        while generated.len() < MAX_TOKENS && next != self.end_of_turn && !repeats(&generated, next)
        {
            let token = self.tokenizer.id_to_token(next).unwrap_or_default();
            let piece = stream.push(&token_bytes(&token));
            if piece.contains('\n') {
                break;
            }
            text.push_str(&piece);
            on_text(&piece);
            generated.push(next);
            if text.trim_end().ends_with(['.', '!', '?']) {
                break;
            }
            next = self.step(&[next], &mut cache)?;
        }
        let text = text.trim().to_string();
        let names_it = text.to_lowercase().contains(&head_noun(&best.label));
        Ok(if names_it && !text.is_empty() {
            Caption {
                text,
                fallback: false,
                tokens: generated.len(),
            }
        } else {
            Caption {
                text: fallback(&best.label),
                fallback: true,
                tokens: generated.len(),
            }
        })
    }

    /// Feeds `ids` after the cached positions; returns the most probable next token.
    fn step(&self, ids: &[u32], cache: &mut KvCache) -> Result<u32> {
        let tokens: Vec<i64> = ids.iter().map(|&id| id as i64).collect();
        let input =
            Tensor::<2, Int>::from_data(TensorData::new(tokens, [1, ids.len()]), &self.device);
        let next = self
            .model
            .next_logits(input, cache)
            .argmax(1)
            .into_scalar::<i64>();
        u32::try_from(next)
            .map_err(|_| GlimpseError::Backend("the model produced a negative token id".into()))
    }
}

/// True when `next` would complete a 3-gram that already occurred (the model looping).
fn repeats(generated: &[u32], next: u32) -> bool {
    let n = generated.len();
    n >= 2
        && generated
            .windows(3)
            .any(|w| w == [generated[n - 2], generated[n - 1], next])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(label: &str, prob: f32) -> Prediction {
        Prediction {
            index: 0,
            label: label.into(),
            prob,
        }
    }

    #[test]
    fn the_prompt_lists_labels_with_percentages_after_the_examples() {
        let text = prompt(&[pred("bull mastiff", 0.674), pred("boxer", 0.286)]);
        assert!(text.ends_with(
            "Labels: bull mastiff 67%, boxer 29%\nCaption:<|im_end|>\n<|im_start|>assistant\n"
        ));
        assert_eq!(text.matches("<|im_start|>assistant").count(), 4);
    }

    #[test]
    fn the_fallback_names_the_class_with_the_right_article() {
        assert_eq!(fallback("bull mastiff"), "A photo of a bull mastiff.");
        assert_eq!(fallback("espresso"), "A photo of an espresso.");
        assert_eq!(head_noun("Loafer"), "loafer");
    }

    #[test]
    fn a_repeated_trigram_stops_generation() {
        assert!(repeats(&[1, 2, 3, 1, 2], 3));
        assert!(!repeats(&[1, 2, 3, 1, 2], 4));
    }
}
