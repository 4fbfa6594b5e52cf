//! The caption model's part of `glimpse bench`: load time, memory, time to first token,
//! prompt and decode tokens/s, with candle's quantized LLaMA (`bench/candle-llama`, a
//! bench-only binary) run on the same GGUF and the same token ids in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use glimpse::caption::llama::{KvCache, Llama, Storage};
pub use glimpse::caption::profile::PROMPT_TOKENS;
use glimpse::caption::profile::{DecodeProfile, profile_decode, synthetic_prompt};
use glimpse::provision::{CAPTION_MODEL_NAME, ModelDir};
use glimpse::{BackendKind, GlimpseError, Result};
use serde::Deserialize;

use super::open_device;

pub const DECODE_TOKENS: usize = 64;

pub struct LlmRow {
    pub engine: String,
    pub load_ms: f64,
    pub weights_mb: Option<f64>,
    pub bits_per_weight: Option<f64>,
    pub rss_mb: Option<f64>,
    pub ttft_ms: f64,
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
}

/// What `bench/candle-llama` prints.
#[derive(Deserialize)]
struct CandleLine {
    engine: String,
    load_ms: f64,
    ttft_ms: f64,
    prefill_tok_s: f64,
    decode_tok_s: f64,
    rss_mb: f64,
}

/// Ordinary word-range token ids, the same for both engines.
fn prompt_ids() -> Vec<u32> {
    synthetic_prompt(PROMPT_TOKENS)
}

fn next_token(model: &Llama, ids: &[u32], cache: &mut KvCache) -> u32 {
    model.next_logits(ids, cache).argmax(1).into_scalar::<i64>() as u32
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Our decoder on `kind`, quantized weights; `runs` repetitions, medians.
pub fn measure_glimpse(
    dir: &ModelDir,
    kind: BackendKind,
    threads: usize,
    runs: usize,
) -> Result<LlmRow> {
    let device = open_device(kind)?;
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None)?;
    let start = Instant::now();
    let model = Llama::from_gguf(&bytes, Storage::Quantized, &device)?;
    let _ = device.sync();
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let stats = model.weight_stats();
    drop(bytes);

    let prompt = prompt_ids();
    // One short pass first: kernels are prepared once per shape.
    next_token(&model, &prompt[..4], &mut KvCache::default());
    let (mut ttft, mut decode) = (Vec::new(), Vec::new());
    let decode_tokens = if kind == BackendKind::Wgpu {
        16
    } else {
        DECODE_TOKENS
    };
    for _ in 0..runs.max(1) {
        let mut cache = KvCache::default();
        let start = Instant::now();
        let mut next = next_token(&model, &prompt, &mut cache);
        ttft.push(start.elapsed().as_secs_f64() * 1e3);
        let start = Instant::now();
        for _ in 0..decode_tokens {
            next = next_token(&model, &[next], &mut cache);
        }
        decode.push(decode_tokens as f64 / start.elapsed().as_secs_f64());
    }
    let ttft_ms = median(ttft);
    let backend = match kind {
        BackendKind::Cpu => format!(
            "CPU, {threads} thread{}",
            if threads == 1 { "" } else { "s" }
        ),
        BackendKind::Wgpu => "wgpu".to_string(),
    };
    Ok(LlmRow {
        engine: format!("glimpse {backend}"),
        load_ms,
        weights_mb: Some((stats.bytes + stats.host_bytes) as f64 / 1e6),
        bits_per_weight: Some(stats.bits_per_weight()),
        rss_mb: None,
        ttft_ms,
        prefill_tok_s: PROMPT_TOKENS as f64 / (ttft_ms / 1e3),
        decode_tok_s: median(decode),
    })
}

fn candle_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GLIMPSE_CANDLE_BENCH") {
        return Some(path.into());
    }
    let target = std::env::var_os("GLIMPSE_CANDLE_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/seed-target-candle"))
        })?;
    let path = target.join("release/candle-llama-bench");
    path.exists().then_some(path)
}

/// candle's quantized LLaMA on the same file and ids, in its own process.
pub fn measure_candle(dir: &ModelDir, threads: usize, runs: usize) -> Result<LlmRow> {
    let binary = candle_binary().ok_or_else(|| {
        GlimpseError::Backend(
            "bench/candle-llama is not built (see bench/candle-llama/README.md, or `npm run bench`)".into(),
        )
    })?;
    let model = dir.root.join(
        dir.read_manifest()?
            .find(CAPTION_MODEL_NAME, None)
            .ok_or_else(|| GlimpseError::ModelLoad("the manifest lists no caption model".into()))?
            .file
            .clone(),
    );
    let ids: Vec<String> = prompt_ids().iter().map(u32::to_string).collect();
    let output = Command::new(&binary)
        .arg("--model")
        .arg(&model)
        .args(["--threads", &threads.to_string()])
        .args(["--prompt-ids", &ids.join(",")])
        .args(["--decode", &DECODE_TOKENS.to_string()])
        .args(["--runs", &runs.max(1).to_string()])
        .output()
        .map_err(|e| GlimpseError::Backend(format!("cannot run {}: {e}", binary.display())))?;
    if !output.status.success() {
        return Err(GlimpseError::Backend(format!(
            "{} failed: {}",
            binary.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: CandleLine = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| GlimpseError::Backend(format!("unexpected output from candle: {stdout}")))?;
    Ok(LlmRow {
        engine: format!(
            "{} CPU, {threads} thread{}",
            line.engine,
            if threads == 1 { "" } else { "s" }
        ),
        load_ms: line.load_ms,
        weights_mb: None,
        bits_per_weight: None,
        rss_mb: Some(line.rss_mb),
        ttft_ms: line.ttft_ms,
        prefill_tok_s: line.prefill_tok_s,
        decode_tok_s: line.decode_tok_s,
    })
}

/// Where a decoded token's time goes on the CPU, [`DECODE_TOKENS`] tokens after the prompt.
pub fn profile_glimpse(dir: &ModelDir) -> Result<DecodeProfile> {
    let device = open_device(BackendKind::Cpu)?;
    let model = Llama::from_gguf(
        &dir.read_file(CAPTION_MODEL_NAME, None)?,
        Storage::Quantized,
        &device,
    )?;
    Ok(profile_decode(
        &model,
        &prompt_ids(),
        DECODE_TOKENS,
        super::bench_profile::now,
    ))
}

pub fn print_profile(profile: &DecodeProfile, threads: usize) {
    println!(
        "\nA decoded token on the CPU ({threads} thread{}), after a {}-token prompt, {} tokens: ms per token (median | min), each role summed over the layers\n",
        if threads == 1 { "" } else { "s" },
        profile.prompt,
        profile.tokens
    );
    println!("| part | median | min |");
    println!("|---|---:|---:|");
    let mut products: Vec<_> = profile.products.iter().collect();
    products.sort_by(|a, b| b.1.median.total_cmp(&a.1.median));
    for (role, s) in products {
        println!("| {role} | {:.2} | {:.2} |", s.median, s.min);
    }
    let r = &profile.rest;
    println!(
        "| the rest (RoPE, norms, SiLU, adds, embedding, argmax) | {:.2} | {:.2} |",
        r.median, r.min
    );
    let s = &profile.step;
    println!("| the whole step | {:.2} | {:.2} |", s.median, s.min);
    println!(
        "| the step without clocks (mean; the model's own loop) | {:.2} | – |",
        profile.unclocked_step
    );
}

pub fn print_table(rows: &[LlmRow], notes: &[String]) {
    println!(
        "\nCaption model: SmolLM2-135M-Instruct Q4_1 GGUF, {PROMPT_TOKENS}-token prompt, {DECODE_TOKENS} greedy tokens (16 on wgpu), medians\n"
    );
    println!(
        "| engine | load | weights in memory | time to first token | prompt tokens/s | decode tokens/s | decode vs candle |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let peer = |row: &LlmRow| {
        rows.iter().find(|r| {
            r.engine.starts_with("candle")
                && r.engine
                    .ends_with(row.engine.rsplit(", ").next().unwrap_or(""))
        })
    };
    for row in rows {
        let memory = match (row.weights_mb, row.bits_per_weight, row.rss_mb) {
            (Some(mb), Some(bits), _) => format!("{mb:.1} MB ({bits:.2} bits/weight)"),
            (_, _, Some(rss)) => format!("{rss:.0} MB RSS (process)"),
            _ => "–".into(),
        };
        let ratio = match (row.engine.starts_with("glimpse CPU"), peer(row)) {
            (true, Some(p)) => format!("{:.2}×", row.decode_tok_s / p.decode_tok_s),
            _ => "–".into(),
        };
        println!(
            "| {} | {:.0} ms | {memory} | {:.0} ms | {:.0} | {:.1} | {ratio} |",
            row.engine, row.load_ms, row.ttft_ms, row.prefill_tok_s, row.decode_tok_s
        );
    }
    for note in notes {
        println!("{note}");
    }
}

/// A caption's time to first token through the captioner (its real prompt), natively on the
/// CPU: the first caption of its case, which reads the whole prompt, and a later one, which
/// reuses the prompt's beginning.
pub struct FirstToken {
    pub prompt_tokens: usize,
    pub reused: usize,
    pub first_ms: f64,
    pub later_ms: f64,
}

/// [`FirstToken`] for the bull mastiff's facts (a sure class), medians of `runs`, each with a
/// captioner that has run no prompt before.
pub fn measure_first_token(dir: &ModelDir, runs: usize) -> Result<FirstToken> {
    use glimpse::Prediction;
    use glimpse::caption::{Captioner, Choice, Facts};
    use glimpse::vision::labels::imagenet;

    let device = open_device(BackendKind::Cpu)?;
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None)?;
    let prediction = |index: usize, prob: f32| Prediction {
        index,
        label: imagenet()[index].name().to_string(),
        prob,
    };
    let facts = Facts::from_top(&[prediction(243, 0.92), prediction(242, 0.03)])
        .ok_or_else(|| GlimpseError::InvalidArgument("no facts".into()))?;
    let (mut first, mut later, mut counts) = (Vec::new(), Vec::new(), (0, 0));
    for _ in 0..runs.max(1) {
        let captioner = Captioner::from_gguf(&bytes, &device)?;
        for times in [&mut first, &mut later] {
            let start = Instant::now();
            let mut generation = captioner.start(&facts)?;
            Choice::read(captioner.predict(&mut generation).into_data())?;
            times.push(start.elapsed().as_secs_f64() * 1e3);
            let caption = generation.into_caption();
            counts = (caption.prompt_tokens, caption.prompt_reused);
        }
    }
    Ok(FirstToken {
        prompt_tokens: counts.0,
        reused: counts.1,
        first_ms: median(first),
        later_ms: median(later),
    })
}

pub fn print_first_token(row: &FirstToken, threads: usize, runs: usize) {
    println!(
        "\nA caption's time to first token (glimpse CPU, {threads} thread{}; the bull mastiff's facts, a {}-token prompt; medians of {runs}): first caption of its case {:.0} ms; later captions, the prompt's first {} tokens reused, {:.0} ms ({:.2}×)",
        if threads == 1 { "" } else { "s" },
        row.prompt_tokens,
        row.first_ms,
        row.reused,
        row.later_ms,
        row.later_ms / row.first_ms
    );
}

/// Captions of the sample photos end to end on the CPU, two ways in the same run: from the
/// center crop's classification alone (one pass, as captions were before the evidence), and
/// with the whole picture's evidence (views, maps, second looks). Milliseconds per photo.
pub struct CaptionRun {
    pub facts: &'static str,
    pub per_photo: Vec<f64>,
    pub evidence: Vec<f64>,
}

pub fn measure_captions(dir: &ModelDir) -> Result<Vec<CaptionRun>> {
    use glimpse::caption::Captioner;
    use glimpse::caption::evidence::gather;
    use glimpse::caption::facts::Facts;
    use glimpse::provision::WeightDType;
    use glimpse::vision::preprocess::{decode, prepare};
    use glimpse::vision::rollup::roll_up;
    use glimpse::vision::top_k;
    use glimpse::{Classifier, runtime};

    let device = runtime::cpu();
    let classifier =
        Classifier::from_burnpack(dir.read_weights(WeightDType::F32)?, device.clone())?;
    let captioner = Captioner::from_gguf(&dir.read_file(CAPTION_MODEL_NAME, None)?, &device)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.photos_dir())
        .map_err(GlimpseError::io("cannot list the sample photos"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let images = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).map_err(GlimpseError::io("cannot read a sample photo"))?;
            decode(&bytes)
        })
        .collect::<Result<Vec<_>>>()?;
    // Warm-up: the first pass of each shape prepares buffers.
    let probs = classifier.classify(&[prepare(&images[0])])?.remove(0);
    captioner.caption(&gather(&classifier, &images[0], &probs)?, |_| {})?;

    let mut runs = Vec::new();
    for (facts, with_evidence) in [
        ("center crop only", false),
        ("whole picture, second looks", true),
    ] {
        let (mut per_photo, mut evidence) = (Vec::new(), Vec::new());
        for image in &images {
            let start = Instant::now();
            let probs = classifier.classify(&[prepare(image)])?.remove(0);
            let gathered = Instant::now();
            let facts = if with_evidence {
                gather(&classifier, image, &probs)?
            } else {
                Facts::from_classification(&top_k(&probs, 2), &roll_up(&probs))
                    .ok_or_else(|| GlimpseError::InvalidArgument("no classes".into()))?
            };
            evidence.push(gathered.elapsed().as_secs_f64() * 1e3);
            captioner.caption(&facts, |_| {})?;
            per_photo.push(start.elapsed().as_secs_f64() * 1e3);
        }
        runs.push(CaptionRun {
            facts,
            per_photo,
            evidence,
        });
    }
    Ok(runs)
}

pub fn print_captions(runs: &[CaptionRun]) {
    println!(
        "\nCaptions of the {} sample photos end to end (classify, facts, caption), glimpse CPU, per photo\n",
        runs.first().map_or(0, |r| r.per_photo.len())
    );
    println!(
        "| facts from | total | median | min | gathering the facts (median) | vs center crop only |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let total = |r: &CaptionRun| r.per_photo.iter().sum::<f64>();
    let base = runs.first().map(total);
    for run in runs {
        let min = run.per_photo.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "| {} | {:.1} s | {:.0} ms | {:.0} ms | {:.0} ms | {} |",
            run.facts,
            total(run) / 1e3,
            median(run.per_photo.clone()),
            min,
            median(run.evidence.clone()),
            base.map_or("–".into(), |b| format!("{:.2}×", total(run) / b)),
        );
    }
}
