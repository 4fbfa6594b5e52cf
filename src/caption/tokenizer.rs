//! The byte-level BPE tokenizer stored in a GGUF file's metadata (`tokenizer.ggml.*`), built
//! as a `tokenizers` tokenizer: vocabulary and merges from the file, control tokens (type 3)
//! matched whole before any splitting, and the pre-tokenization llama.cpp applies for the
//! model (SmolLM's `smollm`: every digit on its own, then GPT-2's byte-level split), which is
//! how the model was trained.

use std::collections::HashMap;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::gguf::{Gguf, GgufError, Value};

/// `tokenizer.ggml.token_type` of tokens that are never split (`<|im_start|>` and friends).
const CONTROL: u64 = 3;

fn strings<'a>(gguf: &'a Gguf, key: &str) -> Result<Vec<&'a str>, GgufError> {
    gguf.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| GgufError(format!("the file has no {key} array")))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| GgufError(format!("{key} holds a non-string")))
        })
        .collect()
}

/// The tokenizer of a GGUF model whose `tokenizer.ggml.model` is `gpt2` (byte-level BPE).
pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer, GgufError> {
    let model = gguf
        .get("tokenizer.ggml.model")
        .and_then(Value::as_str)
        .unwrap_or("?");
    if model != "gpt2" {
        return Err(GgufError(format!(
            "tokenizer model '{model}' is not supported (only byte-level BPE, 'gpt2')"
        )));
    }
    let tokens = strings(gguf, "tokenizer.ggml.tokens")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, t)| (t.to_string(), id as u32))
        .collect();
    if vocab.len() != tokens.len() {
        return Err(GgufError(
            "the vocabulary holds the same token twice".into(),
        ));
    }
    let merges = strings(gguf, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| GgufError(format!("merge '{m}' is not two tokens")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| {
            GgufError(format!(
                "the vocabulary and merges do not form a BPE model: {e}"
            ))
        })?;

    let mut tokenizer = Tokenizer::new(bpe);
    let split: Vec<PreTokenizerWrapper> = vec![
        Digits::new(true).into(),
        ByteLevel::new(false, true, true).into(),
    ];
    tokenizer.with_pre_tokenizer(Some(Sequence::new(split)));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let types = gguf
        .get("tokenizer.ggml.token_type")
        .and_then(Value::as_array)
        .unwrap_or(&[]);
    let control: Vec<AddedToken> = types
        .iter()
        .zip(&tokens)
        .filter(|(kind, _)| kind.as_u64() == Some(CONTROL))
        .map(|(_, token)| AddedToken::from(token.to_string(), true))
        .collect();
    tokenizer.add_special_tokens(&control);
    Ok(tokenizer)
}

/// Turns token ids into text as they are generated, holding back bytes until they form whole
/// UTF-8 characters (byte-level BPE splits characters across tokens).
#[derive(Default, Clone)]
pub struct TextStream {
    pending: Vec<u8>,
}

impl TextStream {
    /// The text that `bytes` (one token's bytes) completes, possibly empty.
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let complete = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            // Bytes that can never become UTF-8: emit a replacement character for them.
            Err(e) => e.valid_up_to() + e.error_len().unwrap_or(0),
        };
        let text = String::from_utf8_lossy(&self.pending[..complete]).into_owned();
        self.pending.drain(..complete);
        text
    }
}

/// A token's raw bytes: byte-level BPE maps each byte to a printable character, undone here.
pub fn token_bytes(token: &str) -> Vec<u8> {
    // GPT-2's table: printable Latin-1 bytes map to themselves; the other 68 bytes map, in
    // order, to code points from 256 up.
    let mut byte_of = HashMap::new();
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let c = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        byte_of.insert(char::from_u32(c).expect("valid code point"), b);
    }
    token
        .chars()
        .filter_map(|c| byte_of.get(&c).copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_never_splits_a_character() {
        let mut stream = TextStream::default();
        let dog = "🐶".as_bytes();
        assert_eq!(stream.push(&dog[..2]), "");
        assert_eq!(stream.push(&dog[2..]), "🐶");
        assert_eq!(stream.push(b"ok"), "ok");
    }

    #[test]
    fn byte_level_characters_map_back_to_bytes() {
        assert_eq!(token_bytes("Ġdog"), b" dog");
        assert_eq!(token_bytes("Ċ"), b"\n");
        assert_eq!(token_bytes("ðŁ"), [0xF0, 0x9F]);
    }
}
