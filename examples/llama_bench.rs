//! Load time, memory and speed of the caption decoder:
//!
//! ```text
//! cargo run --release --example llama_bench -- [quantized|f32] [cpu|wgpu] [prompt tokens] [decoded tokens]
//! RAYON_NUM_THREADS=1 cargo run --release --example llama_bench -- quantized cpu
//! ```
//!
//! Prints the weights' bytes and bits per weight, the process's resident memory before and after
//! loading (Linux), the prompt's tokens per second and greedy decoding's tokens per second.

use std::time::Instant;

use burn::tensor::Device;
use glimpse::caption::llama::{KvCache, Llama, Storage};
use glimpse::provision::{CAPTION_MODEL_NAME, ModelDir};

/// Resident memory of this process in MB (Linux), or 0.
fn rss_mb() -> f64 {
    status_mb("VmRSS:")
}

/// A memory figure of `/proc/self/status` in MB (Linux), or 0.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn next_token(model: &Llama, ids: &[i64], cache: &mut KvCache) -> i64 {
    let tokens: Vec<u32> = ids.iter().map(|&i| i as u32).collect();
    model
        .next_logits(&tokens, cache)
        .argmax(1)
        .into_scalar::<i64>()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or(default.to_string());
    let storage = match arg(0, "quantized").as_str() {
        "f32" => Storage::F32,
        _ => Storage::Quantized,
    };
    let device = match arg(1, "cpu").as_str() {
        "wgpu" => Device::wgpu_options().init().expect("a wgpu adapter"),
        _ => Device::flex(),
    };
    let prompt_len: usize = arg(2, "150").parse().unwrap();
    let decode_len: usize = arg(3, "32").parse().unwrap();

    let bytes = ModelDir::from_env()
        .read_file(CAPTION_MODEL_NAME, None)
        .expect("the caption model (run `glimpse models fetch`)");
    let before = rss_mb();
    let start = Instant::now();
    let model = Llama::from_gguf(&bytes, storage, &device).unwrap();
    device.sync().unwrap();
    let load_s = start.elapsed().as_secs_f64();
    drop(bytes);
    let stats = model.weight_stats();
    println!(
        "{storage:?} on {:?}: {} weights in {:.1} MB ({:.2} bits per weight), {:.1} MB more in host memory",
        device,
        stats.params,
        stats.bytes as f64 / 1e6,
        stats.bits_per_weight(),
        stats.host_bytes as f64 / 1e6
    );
    println!(
        "load {:.2} s; RSS {before:.0} MB with the file read, {:.0} MB after loading and dropping the file",
        load_s,
        rss_mb()
    );
    if let Some(usage) = device.memory_pool_usage() {
        println!("device memory pool: {usage:?}");
    }

    // A prompt of ordinary tokens (ids in the word range of the vocabulary).
    let prompt: Vec<i64> = (0..prompt_len as i64)
        .map(|i| 1000 + (i * 37) % 5000)
        .collect();
    // Warm-up: one short pass so the timings leave out one-time kernel preparation.
    next_token(&model, &prompt[..4], &mut KvCache::default());

    let mut cache = KvCache::default();
    let start = Instant::now();
    let mut next = next_token(&model, &prompt, &mut cache);
    let prefill_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for _ in 0..decode_len {
        next = next_token(&model, &[next], &mut cache);
    }
    let decode_s = start.elapsed().as_secs_f64();
    println!(
        "prompt of {prompt_len} tokens: {:.2} s ({:.1} tokens/s); {decode_len} greedy tokens: {:.2} s ({:.1} tokens/s); peak RSS {:.0} MB",
        prefill_s,
        prompt_len as f64 / prefill_s,
        decode_s,
        decode_len as f64 / decode_s,
        status_mb("VmHWM:")
    );
}
