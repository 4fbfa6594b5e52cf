//! One-sentence captions that say only what the evidence holds.
//!
//! The language model receives facts, not the classifier's list of guesses ([`Facts`]: one
//! subject with its certainty and the head of its WordNet definition, a second object only
//! when it was confirmed in its own region), in a ChatML prompt whose few-shot examples are
//! chosen by case, the example of the same case last (a 135M model copies the last one's
//! pattern). Decoding is greedy and deterministic, and constrained: a word that names an
//! object the facts do not hold, or a number, is taken back and its first token banned at
//! that position ([`AllowedWords`]). Text is streamed a whole word at a time, so a word that
//! is taken back is never shown. When the classifier is unsure, the caption names the two
//! rivals as alternatives by rule; when decoding fails, a template says what the facts say.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use tokenizers::Tokenizer;

use super::facts::{Certainty, Facts, Subject, article};
use super::gguf::Gguf;
use super::llama::{self, KvCache, Llama, Storage};
use super::prompt::{head_noun, prompt_parts, template};
use super::tokenizer::{self, TextStream, token_bytes};
use super::words::{AllowedWords, is_word_char, split_words};
use crate::error::{GlimpseError, Result};

/// At most this many tokens are generated.
pub const MAX_TOKENS: usize = 24;
/// At most this many words are taken back in one caption before the template is used.
pub const MAX_BACKTRACKS: usize = 24;
/// A sentence shorter than this many words is not a caption.
const MIN_WORDS: usize = 3;
/// Prompt beginnings kept with their keys and values: one per case of the prompt.
const KEPT_BEGINNINGS: usize = 3;

/// How a caption's sentence was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The language model wrote it, within the facts.
    Model,
    /// The classifier was unsure: the rivals named as alternatives, or the noun they share
    /// with the likeliest hedged ("A container, probably a beaker."), by rule.
    Rule,
    /// The model's sentence could not be used (it did not name the subject, was too short,
    /// or kept reaching for words outside the facts): the template.
    Fallback,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caption {
    pub text: String,
    /// True when the template replaced what the model wrote.
    pub fallback: bool,
    pub source: Source,
    /// The objects the caption was allowed to name, with their evidence.
    pub objects: Vec<Subject>,
    pub certainty: Certainty,
    /// Tokens generated (after any taken back).
    pub tokens: usize,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Tokens at the prompt's beginning whose keys and values an earlier caption of the same
    /// case had computed (0 for the first of its case): only the rest was run.
    pub prompt_reused: usize,
    /// Words taken back because they named something outside the facts.
    pub backtracks: usize,
}

pub struct Captioner {
    model: Llama,
    tokenizer: Tokenizer,
    end_of_turn: u32,
    /// Prompt beginnings already run ([`prompt_parts`]) and the cache they left, the one used
    /// last at the end.
    beginnings: Mutex<Vec<(Vec<u32>, KvCache)>>,
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
            beginnings: Mutex::default(),
        })
    }

    /// The decoder (for its weight statistics).
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// Starts a caption of `facts`. Drive it with [`Captioner::predict`] and
    /// [`Captioner::accept`] until it is finished, or use [`Captioner::caption`]. When the
    /// classifier is unsure, the generation starts finished with the rule's sentence: take it
    /// with [`Generation::flush`].
    pub fn start(&self, facts: &Facts) -> Result<Generation> {
        let encode = |text: &str| {
            self.tokenizer
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|e| GlimpseError::ModelLoad(format!("cannot tokenize the prompt: {e}")))
        };
        let (beginning, rest) = prompt_parts(facts);
        let ids = encode(&(beginning.clone() + &rest))?;
        let shared = encode(&beginning)?;
        // Split only where the prompt's own tokens split (no token spans the two parts).
        let beginning_tokens = if shared.len() < ids.len() && ids.starts_with(&shared) {
            shared.len()
        } else {
            0
        };
        let mut generation = Generation {
            facts: facts.clone(),
            allowed: AllowedWords::for_facts(facts),
            cache: KvCache::default(),
            prompt_tokens: ids.len(),
            beginning_tokens,
            prompt_reused: 0,
            last_prompt_token: ids.last().copied().unwrap_or(0),
            input: ids,
            generated: Vec::new(),
            token_starts: Vec::new(),
            streams: Vec::new(),
            stream: TextStream::default(),
            text: String::new(),
            word_starts: Vec::new(),
            checked: 0,
            emitted: 0,
            bans: HashMap::new(),
            backtracks: 0,
            finished: false,
            source: Source::Model,
        };
        // Hedges are written by rule: a 135M model drops "probably" as often as it keeps it.
        let hedged = facts.certainty == Certainty::Unsure || facts.likely.is_some();
        if facts.objects.len() == 1 && hedged {
            generation.text = template(facts);
            generation.source = Source::Rule;
            generation.finished = true;
        }
        Ok(generation)
    }

    /// Runs the model over the generation's pending input (the whole prompt first, then the
    /// last token) and returns the most probable next token that is not banned at this
    /// position, and its logit, still on the device as `[id, logit]`: read it (`into_data`
    /// natively, `into_data_async` in the browser), turn it into a [`Choice`] and pass its
    /// token to `accept`. One read-back.
    ///
    /// The prompt runs in two passes: its beginning, which is the same for every caption of
    /// the same case, then the rest. The beginning's keys and values are kept, and a later
    /// caption of that case starts from a copy of them; since every caption splits its prompt
    /// the same way, a caption is the same whether its beginning was run now or before.
    pub fn predict(&self, generation: &mut Generation) -> Tensor<1> {
        let mut ids = std::mem::take(&mut generation.input);
        if generation.cache.is_empty() && generation.beginning_tokens > 0 {
            let (beginning, rest) = ids.split_at(generation.beginning_tokens);
            let (cache, reused) = self.cache_after(beginning);
            generation.cache = cache;
            generation.prompt_reused = if reused { beginning.len() } else { 0 };
            ids = rest.to_vec();
        }
        let mut logits = self.last_logits(&ids, &mut generation.cache);
        if let Some(banned) = generation.bans.get(&generation.generated.len()) {
            let vocab = logits.dims()[0];
            let mut mask = vec![0.0f32; vocab];
            for &id in banned {
                if let Some(m) = mask.get_mut(id as usize) {
                    *m = f32::NEG_INFINITY;
                }
            }
            logits = logits + Tensor::from_data(TensorData::new(mask, [vocab]), &self.model.device);
        }
        Tensor::cat(vec![logits.clone().argmax(0).float(), logits.max_dim(0)], 0)
    }

    /// The cache after the prompt beginning `ids`: a copy of the kept one (true), or made now
    /// and kept (false).
    fn cache_after(&self, ids: &[u32]) -> (KvCache, bool) {
        let lock = || {
            self.beginnings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        {
            let mut kept = lock();
            if let Some(at) = kept.iter().position(|(kept_ids, _)| kept_ids == ids) {
                let entry = kept.remove(at);
                let cache = entry.1.clone();
                kept.push(entry);
                return (cache, true);
            }
        }
        let mut cache = KvCache::default();
        self.model.feed(ids, &mut cache);
        let mut kept = lock();
        // Another thread may have read the same beginning meanwhile: keep one copy.
        if !kept.iter().any(|(kept_ids, _)| kept_ids == ids) {
            if kept.len() >= KEPT_BEGINNINGS {
                kept.remove(0);
            }
            kept.push((ids.to_vec(), cache.clone()));
        }
        (cache, false)
    }

    /// The logits `[vocab]` after feeding `ids` behind the positions in `cache`.
    pub fn last_logits(&self, ids: &[u32], cache: &mut KvCache) -> Tensor<1> {
        let logits = self.model.next_logits(ids, cache);
        let vocab = logits.dims()[1];
        logits.reshape([vocab])
    }

    /// Takes the predicted token. Returns the text that is now final (whole words, possibly
    /// empty, never half a character), all of the rest once the caption is finished, or
    /// `None` when nothing new is final (a word was taken back, or the caption is done).
    pub fn accept(&self, generation: &mut Generation, next: u32) -> Option<String> {
        let g = generation;
        if g.finished {
            return None;
        }
        if g.generated.len() >= MAX_TOKENS
            || next == self.end_of_turn
            || repeats(&g.generated, next)
        {
            return self.finish(g);
        }
        let token = self.tokenizer.id_to_token(next).unwrap_or_default();
        let before = g.stream.clone();
        let piece = g.stream.push(&token_bytes(&token));
        if piece.contains('\n') {
            g.stream = before;
            return self.finish(g);
        }
        let index = g.generated.len();
        let offset = g.text.len();
        let mut previous = g.text.chars().next_back();
        for (at, c) in piece.char_indices() {
            if is_word_char(c) && !previous.is_some_and(is_word_char) {
                g.word_starts.push((offset + at, index));
            }
            previous = Some(c);
        }
        g.token_starts.push(offset);
        g.streams.push(before);
        g.text.push_str(&piece);
        g.generated.push(next);
        g.input = vec![next];
        if !self.check_words(g, false) {
            return None;
        }
        if g.text.trim_end().ends_with(['.', '!', '?']) || g.generated.len() >= MAX_TOKENS {
            return self.finish(g);
        }
        g.emit(false)
    }

    /// Checks the words completed since the last check (all of them when `at_end`); takes
    /// back the first that may not be used and returns false.
    fn check_words(&self, g: &mut Generation, at_end: bool) -> bool {
        let starts: Vec<(usize, usize)> = g
            .word_starts
            .iter()
            .copied()
            .filter(|&(at, _)| at >= g.checked)
            .collect();
        for (at, token) in starts {
            let rest = &g.text[at..];
            let len = rest.find(|c: char| !is_word_char(c));
            let Some(len) = len.or(at_end.then_some(rest.len())) else {
                break; // the last word is not finished yet
            };
            let word = &rest[..len];
            if !g.allowed.permits(word) {
                g.take_back(token);
                return false;
            }
            g.checked = at + len;
        }
        true
    }

    /// Ends the caption (checking its last word first); returns the text not yet given out.
    fn finish(&self, g: &mut Generation) -> Option<String> {
        if g.backtracks <= MAX_BACKTRACKS {
            let clean = self.check_words(g, true);
            // A word was taken back: writing goes on, unless that was one too many.
            if !clean && g.backtracks <= MAX_BACKTRACKS {
                return None;
            }
        }
        g.finished = true;
        g.flush()
    }

    /// Writes a caption of `facts`, calling `on_text` with each piece of final text as it is
    /// generated (whole words, never half a character).
    pub fn caption(&self, facts: &Facts, mut on_text: impl FnMut(&str)) -> Result<Caption> {
        let mut generation = self.start(facts)?;
        while !generation.finished {
            let next = Choice::read(self.predict(&mut generation).into_data())?;
            if let Some(piece) = self.accept(&mut generation, next.token) {
                on_text(&piece);
            }
        }
        if let Some(piece) = generation.flush() {
            on_text(&piece);
        }
        Ok(generation.into_caption())
    }
}

/// A caption being written: the model's cache, what it has said so far, and what it may not
/// say where.
pub struct Generation {
    facts: Facts,
    allowed: AllowedWords,
    cache: KvCache,
    prompt_tokens: usize,
    /// The prompt's first tokens that are the same for every caption of its case.
    beginning_tokens: usize,
    prompt_reused: usize,
    last_prompt_token: u32,
    /// Token ids to feed on the next step.
    input: Vec<u32>,
    generated: Vec<u32>,
    /// Where each generated token's text starts in `text`, and the decoder state before it.
    token_starts: Vec<usize>,
    streams: Vec<TextStream>,
    stream: TextStream,
    text: String,
    /// (offset in `text`, generated token) of each word's first letter.
    word_starts: Vec<(usize, usize)>,
    /// `text` up to here holds only permitted words.
    checked: usize,
    /// `text` up to here has been given out.
    emitted: usize,
    /// Tokens banned at a position (index into `generated`).
    bans: HashMap<usize, Vec<u32>>,
    backtracks: usize,
    finished: bool,
    source: Source,
}

impl Generation {
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Takes back the generated tokens from `token` on and bans that token there: the next
    /// prediction is for the same position again.
    fn take_back(&mut self, token: usize) {
        self.backtracks += 1;
        let banned = self.generated[token];
        self.bans.entry(token).or_default().push(banned);
        let start = self.token_starts[token];
        self.text.truncate(start);
        self.stream = self.streams[token].clone();
        self.generated.truncate(token);
        self.token_starts.truncate(token);
        self.streams.truncate(token);
        self.word_starts.retain(|&(_, t)| t < token);
        self.checked = self.checked.min(start);
        // The KV cache holds the prompt and the generated tokens before `token`, except the
        // last one, which is fed again to predict position `token` anew.
        let keep = self.prompt_tokens + token - 1;
        self.cache.truncate(keep);
        self.input = vec![match token {
            0 => self.last_prompt_token,
            _ => self.generated[token - 1],
        }];
        if self.backtracks > MAX_BACKTRACKS {
            self.finished = true;
            self.source = Source::Fallback;
        }
    }

    /// Gives out the final text not given out yet: up to the token where the last,
    /// unfinished word starts, and holding back an article until the word after it is known
    /// (so "a" can become "an"). `all` gives out everything.
    fn emit(&mut self, all: bool) -> Option<String> {
        let mut boundary = self.text.len();
        if !all {
            let last_word = self.word_starts.last().copied();
            if let Some((at, token)) = last_word {
                let unfinished = !self.text[at..].contains(|c: char| !is_word_char(c));
                if unfinished {
                    boundary = self.token_starts[token];
                }
                let words: Vec<(usize, usize)> = self.word_starts.clone();
                let complete: Vec<&(usize, usize)> =
                    words.iter().filter(|(a, _)| *a < boundary).collect();
                if let Some(&&(at, token)) = complete.last() {
                    let word = self.text[at..].split(|c: char| !is_word_char(c)).next();
                    if matches!(word.map(str::to_lowercase).as_deref(), Some("a" | "an")) {
                        boundary = boundary.min(self.token_starts[token]);
                    }
                }
            }
        }
        if boundary <= self.emitted {
            return (!all).then(String::new);
        }
        let piece = fix_articles(&self.text[self.emitted..boundary]);
        self.emitted = boundary;
        Some(piece)
    }

    /// The text not given out yet, once finished.
    pub fn flush(&mut self) -> Option<String> {
        if self.source != Source::Model {
            let piece = (self.emitted == 0).then(|| self.final_text());
            self.emitted = self.text.len().max(1);
            return piece;
        }
        self.emit(true)
    }

    /// A sentence cut off by the token limit or a loop ends at its last whole clause ("A bull
    /// mastiff, a large powerful breed of large powerful" → "A bull mastiff."), or is left
    /// too short to use.
    fn end_sentence(&mut self) {
        let text = self.text.trim_end();
        if text.ends_with(['.', '!', '?']) {
            return;
        }
        let kept = text.rfind(',').map_or("", |at| &text[..at]).trim_end();
        self.text = if kept.is_empty() {
            String::new()
        } else {
            format!("{kept}.")
        };
    }

    fn final_text(&self) -> String {
        match self.source {
            Source::Model => fix_articles(self.text.trim()),
            Source::Rule => self.text.clone(),
            Source::Fallback => template(&self.facts),
        }
    }

    /// The caption: the sentence, or the template when the sentence does not name the main
    /// subject (and a second one, when there is one), is too short, or was given up on.
    pub fn into_caption(mut self) -> Caption {
        if self.source == Source::Model {
            self.end_sentence();
            let text = fix_articles(self.text.trim()).to_lowercase();
            let names = |s: &Subject| text.contains(&head_noun(&s.label));
            let placed = |s: &Subject| s.position.as_ref().is_none_or(|p| placed_at(&text, s, p));
            let words = split_words(&text).count();
            let objects = &self.facts.objects;
            if !objects.iter().all(names) || !objects.iter().all(placed) || words < MIN_WORDS {
                self.source = Source::Fallback;
            }
        }
        Caption {
            text: self.final_text(),
            fallback: self.source == Source::Fallback,
            source: self.source,
            objects: self.facts.objects.clone(),
            certainty: self.facts.certainty,
            tokens: self.generated.len(),
            prompt_tokens: self.prompt_tokens,
            prompt_reused: self.prompt_reused,
            backtracks: self.backtracks,
        }
    }
}

/// Whether the first position phrase after `subject`'s name in `text` (lowercase) is
/// `position` ("a yurt on the left and a dog on the right": the yurt is on the left).
fn placed_at(text: &str, subject: &Subject, position: &str) -> bool {
    let Some(at) = text.find(&head_noun(&subject.label)) else {
        return false;
    };
    let rest = &text[at..];
    ["on the left", "on the right", "at the top", "at the bottom"]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min()
        .is_some_and(|(_, p)| p == position)
}

/// "a" before a vowel becomes "an", and "an" before a consonant "a" (the model writes
/// "A espresso").
fn fix_articles(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    let mut rest = text;
    while !rest.is_empty() {
        let start = rest.find(|c: char| is_word_char(c)).unwrap_or(rest.len());
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(|c: char| !is_word_char(c)).unwrap_or(rest.len());
        let word = &rest[..end];
        let after = rest[end..].trim_start_matches(' ');
        let next_word = after.split(|c: char| !is_word_char(c)).next().unwrap_or("");
        let spaced = rest[end..].starts_with(' ') && !next_word.is_empty();
        let fixed = match (word, spaced) {
            ("a" | "A" | "an" | "An", true) => {
                let wanted = article(next_word);
                if word.starts_with('A') {
                    let mut w = wanted.to_string();
                    w.replace_range(0..1, "A");
                    w
                } else {
                    wanted.to_string()
                }
            }
            _ => word.to_string(),
        };
        out.push_str(&fixed);
        rest = &rest[end..];
    }
    out
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

    #[test]
    fn articles_agree_with_the_next_word() {
        assert_eq!(
            fix_articles("A espresso on an table."),
            "An espresso on a table."
        );
        assert_eq!(fix_articles("a"), "a");
        assert_eq!(fix_articles("Vitamin a."), "Vitamin a.");
    }

    #[test]
    fn a_repeated_trigram_stops_generation() {
        assert!(repeats(&[1, 2, 3, 1, 2], 3));
        assert!(!repeats(&[1, 2, 3, 1, 2], 4));
    }
}
