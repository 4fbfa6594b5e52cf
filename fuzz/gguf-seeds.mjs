#!/usr/bin/env node
// The GGUF seeds of the `gguf` and `gguf_tokenizer` fuzz targets: the tiny LLaMA of
// tests/fixtures/tiny-llama.mjs, given a tokenizer of its own small enough that libFuzzer
// mutates a 70 KB file rather than the 1 MB of the real tokenizer, and cuts of it.
//
//   node fuzz/gguf-seeds.mjs

import { mkdirSync, openSync, readSync, writeFileSync, closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyLlama } from '../tests/fixtures/tiny-llama.mjs';

const FUZZ = fileURLToPath(new URL('.', import.meta.url));
const enc = new TextEncoder();

/** GPT-2's byte-level alphabet: each byte as the printable character BPE stores it as. */
function byteAlphabet() {
  const printable = (b) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

const MERGES = ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a', '1 2'];
const CONTROL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/** A GGUF holding only `tokenizer.*` metadata: what tinyLlama copies into the model. */
function tokenizerSource() {
  const tokens = [...CONTROL, ...byteAlphabet(), ...MERGES.map((m) => m.replace(' ', ''))];
  const types = tokens.map((t) => (CONTROL.includes(t) ? 3 : 1));
  const parts = [];
  const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const i32 = (v) => { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); };
  const u64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const string = (s) => { const b = enc.encode(s); u64(b.length); parts.push(Buffer.from(b)); };
  const strings = (key, values) => { string(key); u32(9); u32(8); u64(values.length); values.forEach(string); };
  u32(0x46554747);
  u32(3);
  u64(0); // tensors
  u64(6);
  string('tokenizer.ggml.model'); u32(8); string('gpt2');
  string('tokenizer.ggml.pre'); u32(8); string('smollm');
  strings('tokenizer.ggml.tokens', tokens);
  string('tokenizer.ggml.token_type'); u32(9); u32(5); u64(types.length); types.forEach(i32);
  strings('tokenizer.ggml.merges', MERGES);
  string('tokenizer.ggml.eos_token_id'); u32(4); u32(2);
  return new Uint8Array(Buffer.concat(parts));
}

function write(target, name, bytes) {
  const dir = join(FUZZ, 'corpus', target);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), bytes);
}

const source = tokenizerSource();
const model = tinyLlama(source, { seed: 7 });
write('gguf', 'tiny-llama.gguf', model);
write('gguf', 'tiny-llama-truncated.gguf', model.subarray(0, model.length - 100));
write('gguf', 'tokenizer-only.gguf', source);
write('gguf_tokenizer', 'tokenizer-only.gguf', source);
write('gguf_tokenizer', 'header-cut.gguf', source.subarray(0, 600));

// The real caption model's first 4 KB: its true header, cut inside the vocabulary.
const real = fileURLToPath(new URL('../models/SmolLM2-135M-Instruct.Q4_1.gguf', import.meta.url));
if (existsSync(real)) {
  const head = Buffer.alloc(4096);
  const fd = openSync(real, 'r');
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  write('gguf', 'smollm2-head.gguf', head);
  write('gguf_tokenizer', 'smollm2-head.gguf', head);
}
console.log(`tiny LLaMA seed: ${model.length} bytes`);
