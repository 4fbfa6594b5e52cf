//! One-sentence captions grounded in the classifier's labels: a few-shot ChatML prompt turns
//! "bull mastiff 67%, boxer 29%" into words with the small language model. A zero-shot
//! instruction makes a 135M model ramble; three short examples keep it to one sentence. A
//! caption that does not name the top class is replaced by a plain template.

use burn::tensor::{Device, Tensor, TensorData};
use tokenizers::Tokenizer;

use super::gguf::Gguf;
use super::llama::{self, KvCache, Llama, Storage};
use super::tokenizer::{self, TextStream, token_bytes};
use crate::error::{GlimpseError, Result};
use crate::vision::Prediction;

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
    /// Tokens generated.
    pub tokens: usize,
    /// Tokens in the prompt (prefilled in one pass).
    pub prompt_tokens: usize,
}

pub struct Captioner {
    model: Llama,
    tokenizer: Tokenizer,
    end_of_turn: u32,
}

impl Captioner {
    /// The caption model from a LLaMA-family GGUF file (SmolLM2-135M-Instruct here): the
    /// decoder with its weights kept quantized on `device`, and the tokenizer its metadata
    /// holds. One call, as every surface loads it.
    pub fn from_gguf(bytes: &[u8], device: &Device) -> Result<Self> {
        let gguf = Gguf::parse(bytes)?;
        let tokenizer = tokenizer::from_gguf(&gguf)?;
        let model = llama::load(&gguf, bytes, device, Storage::Quantized)?;
        Self::new(model, tokenizer)
    }

    pub fn new(model: Llama, tokenizer: Tokenizer) -> Result<Self> {
        let end_of_turn = tokenizer.token_to_id("<|im_end|>").ok_or_else(|| {
            GlimpseError::ModelLoad("the caption model's vocabulary has no <|im_end|>".into())
        })?;
        Ok(Self {
            model,
            tokenizer,
            end_of_turn,
        })
    }

    /// The decoder (for its weight statistics).
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Starts a caption for the classifier's `top` classes (best first). Drive it with
    /// [`Captioner::predict`] and [`Captioner::accept`] until it is finished, or use
    /// [`Captioner::caption`].
    pub fn start(&self, top: &[Prediction]) -> Result<Generation> {
        let best = top
            .first()
            .ok_or_else(|| GlimpseError::InvalidArgument("no classes to describe".into()))?;
        let ids = self
            .tokenizer
            .encode(prompt(top), false)
            .map_err(|e| GlimpseError::ModelLoad(format!("cannot tokenize the prompt: {e}")))?
            .get_ids()
            .to_vec();
        Ok(Generation {
            best: best.label.clone(),
            cache: KvCache::default(),
            prompt_tokens: ids.len(),
            input: ids,
            generated: Vec::new(),
            stream: TextStream::default(),
            text: String::new(),
            finished: false,
        })
    }

    /// Runs the model over the generation's pending input (the whole prompt first, then the
    /// last token) and returns the most probable next token and its logit, still on the
    /// device as `[id, logit]`: read it (`into_data` natively, `into_data_async` in the
    /// browser), turn it into a [`Choice`] and pass its token to `accept`. One read-back.
    pub fn predict(&self, generation: &mut Generation) -> Tensor<1> {
        let ids = std::mem::take(&mut generation.input);
        let logits = self.last_logits(&ids, &mut generation.cache);
        Tensor::cat(vec![logits.clone().argmax(0).float(), logits.max_dim(0)], 0)
    }

    /// The logits `[vocab]` after feeding `ids` behind the positions in `cache`.
    pub fn last_logits(&self, ids: &[u32], cache: &mut KvCache) -> Tensor<1> {
        let logits = self.model.next_logits(ids, cache);
        let vocab = logits.dims()[1];
        logits.reshape([vocab])
    }

    /// Takes the predicted token: returns the text it adds (possibly empty, never half a
    /// character), or `None` once the caption is finished.
    pub fn accept(&self, generation: &mut Generation, next: u32) -> Option<String> {
        let g = generation;
        if g.finished
            || g.generated.len() >= MAX_TOKENS
            || next == self.end_of_turn
            || repeats(&g.generated, next)
        {
            g.finished = true;
            return None;
        }
        let token = self.tokenizer.id_to_token(next).unwrap_or_default();
        let piece = g.stream.push(&token_bytes(&token));
        if piece.contains('\n') {
            g.finished = true;
            return None;
        }
        g.text.push_str(&piece);
        g.generated.push(next);
        g.input = vec![next];
        if g.text.trim_end().ends_with(['.', '!', '?']) || g.generated.len() >= MAX_TOKENS {
            g.finished = true;
        }
        Some(piece)
    }

    /// Writes a caption for the classifier's `top` classes (best first), calling `on_text` with
    /// each piece of text as it is generated (never half a character).
    pub fn caption(&self, top: &[Prediction], mut on_text: impl FnMut(&str)) -> Result<Caption> {
        let mut generation = self.start(top)?;
        while !generation.finished {
            let next = Choice::read(self.predict(&mut generation).into_data())?;
            if let Some(piece) = self.accept(&mut generation, next.token) {
                on_text(&piece);
            }
        }
        Ok(generation.into_caption())
    }
}

/// A caption being written: the model's cache and what it has said so far.
pub struct Generation {
    best: String,
    cache: KvCache,
    prompt_tokens: usize,
    /// Token ids to feed on the next step.
    input: Vec<u32>,
    generated: Vec<u32>,
    stream: TextStream,
    text: String,
    finished: bool,
}

impl Generation {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The sentence, or the template when the sentence does not name the top class.
    pub fn into_caption(self) -> Caption {
        let text = self.text.trim().to_string();
        let names_it = text.to_lowercase().contains(&head_noun(&self.best));
        if names_it && !text.is_empty() {
            Caption {
                text,
                fallback: false,
                tokens: self.generated.len(),
                prompt_tokens: self.prompt_tokens,
            }
        } else {
            Caption {
                text: fallback(&self.best),
                fallback: true,
                tokens: self.generated.len(),
                prompt_tokens: self.prompt_tokens,
            }
        }
    }
}

/// The token greedy decoding chose, and its logit (what [`Captioner::predict`] computes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub token: u32,
    pub logit: f32,
}

impl Choice {
    /// From the data of [`Captioner::predict`]'s `[id, logit]` tensor.
    pub fn read(data: TensorData) -> Result<Self> {
        let values = data.try_to_vec::<f32>().map_err(|e| {
            GlimpseError::Backend(format!("the model's choice is unreadable: {e:?}"))
        })?;
        let [id, logit] = values[..] else {
            return Err(GlimpseError::Backend("the model produced no token".into()));
        };
        if !(id >= 0.0 && id.fract() == 0.0 && id <= u32::MAX as f32) {
            return Err(GlimpseError::Backend(format!(
                "the model produced an impossible token id ({id})"
            )));
        }
        Ok(Self {
            token: id as u32,
            logit,
        })
    }
}

/// The classes a caption prompt names: the top three, leaving out those under 5% (but always
/// the best one). `top` is best first.
pub fn prompt_classes(top: &[Prediction]) -> Vec<Prediction> {
    let mut classes: Vec<Prediction> = top.iter().take(3).cloned().collect();
    let best = classes.first().cloned();
    classes.retain(|p| p.prob >= 0.05);
    if let (true, Some(best)) = (classes.is_empty(), best) {
        classes.push(best);
    }
    classes
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
