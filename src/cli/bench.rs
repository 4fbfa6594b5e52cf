//! `glimpse bench`: latency table for each backend, with onnxruntime measured in the same run
//! on an ONNX export of the reference model, so the ratio is visible.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use glimpse::provision::{ModelDir, WeightDType};
use glimpse::vision::preprocess::{decode, prepare};
use glimpse::{BackendKind, Classifier, GlimpseError, Result};
use serde::Deserialize;

use super::{ensure_models, open_device};
use crate::BenchArgs;

#[derive(Default)]
struct Stats {
    median: f64,
    min: f64,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Self {
            median: samples[samples.len() / 2],
            min: samples[0],
        }
    }
}

struct Row {
    engine: String,
    load_ms: Option<f64>,
    first_ms: Option<f64>,
    batch1: Stats,
    batch8: Stats,
}

/// What `tests/reference/bench_onnxruntime.py` prints.
#[derive(Deserialize)]
struct PeerLine {
    version: String,
    median_ms: f64,
    min_ms: f64,
}

pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build_global()
        .map_err(|e| {
            GlimpseError::Backend(format!("cannot set up {} threads: {e}", args.threads))
        })?;
    let runs = args.runs.max(3);
    let dir = ensure_models()?;
    if args.caption_cpu {
        return caption_cpu(&dir, args.threads.max(1), runs, args.profile);
    }
    let photos = photo_inputs(&dir)?;

    let preprocess = measure_preprocess(&photos, runs)?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for kind in [BackendKind::Cpu, BackendKind::Wgpu] {
        match open_device(kind) {
            Ok(device) => rows.push(measure_backend(&dir, kind, device, &photos, runs)?),
            Err(e) => notes.push(format!("glimpse {}: not measured: {e}", kind.name())),
        }
    }
    match measure_onnxruntime(args, &dir, runs) {
        Ok(row) => rows.push(row),
        Err(e) => notes.push(format!("onnxruntime: not measured: {e}")),
    }

    print_table(args, runs, &preprocess, &rows, &notes);
    if args.profile {
        let classifier = Classifier::from_burnpack(
            dir.read_weights(WeightDType::F32)?,
            open_device(BackendKind::Cpu)?,
        )?;
        let input = prepare(&decode(&photos[0])?);
        super::bench_profile::print_profile(&classifier, &input, runs)?;
    }

    if !args.no_caption {
        use super::bench_caption::{measure_candle, measure_glimpse, print_table as print_llm};
        let llm_runs = 3;
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for kind in [BackendKind::Cpu, BackendKind::Wgpu] {
            match measure_glimpse(&dir, kind, args.threads.max(1), llm_runs) {
                Ok(row) => rows.push(row),
                Err(e) => notes.push(format!("glimpse {}: not measured: {e}", kind.name())),
            }
            if kind == BackendKind::Cpu {
                match measure_candle(&dir, args.threads.max(1), llm_runs) {
                    Ok(row) => rows.push(row),
                    Err(e) => notes.push(format!("candle: not measured: {e}")),
                }
            }
        }
        print_llm(&rows, &notes);
        if args.profile {
            let profile = super::bench_caption::profile_glimpse(&dir)?;
            super::bench_caption::print_profile(&profile, args.threads.max(1));
        }
        match super::bench_caption::measure_captions(&dir) {
            Ok(runs) => super::bench_caption::print_captions(&runs),
            Err(e) => println!("captions end to end: not measured: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The caption model's CPU rows alone (`--caption-cpu`).
fn caption_cpu(dir: &ModelDir, threads: usize, runs: usize, profile: bool) -> Result<ExitCode> {
    use super::bench_caption::{measure_candle, measure_glimpse, print_table};
    let mut rows = vec![measure_glimpse(dir, BackendKind::Cpu, threads, runs)?];
    let mut notes = Vec::new();
    match measure_candle(dir, threads, runs) {
        Ok(row) => rows.push(row),
        Err(e) => notes.push(format!("candle: not measured: {e}")),
    }
    print_table(&rows, &notes);
    if profile {
        let profile = super::bench_caption::profile_glimpse(dir)?;
        super::bench_caption::print_profile(&profile, threads);
    }
    Ok(ExitCode::SUCCESS)
}

fn photo_inputs(dir: &ModelDir) -> Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.photos_dir())
        .map_err(GlimpseError::io("cannot list the sample photos"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).map_err(GlimpseError::io(format!("cannot read {}", f.display()))))
        .collect()
}

/// Decode + resize + crop + normalize, per photo.
fn measure_preprocess(photos: &[Vec<u8>], runs: usize) -> Result<Stats> {
    let mut samples = Vec::new();
    for _ in 0..runs.div_ceil(photos.len()).max(1) {
        for bytes in photos {
            let start = Instant::now();
            std::hint::black_box(prepare(&decode(bytes)?));
            samples.push(ms_since(start));
        }
    }
    Ok(Stats::of(samples))
}

fn measure_backend(
    dir: &ModelDir,
    kind: BackendKind,
    device: burn::tensor::Device,
    photos: &[Vec<u8>],
    runs: usize,
) -> Result<Row> {
    let start = Instant::now();
    let classifier = Classifier::from_burnpack(dir.read_weights(WeightDType::F32)?, device)?;
    let load_ms = ms_since(start);

    let inputs: Vec<Vec<f32>> = photos
        .iter()
        .take(8)
        .map(|b| Ok(prepare(&decode(b)?)))
        .collect::<Result<_>>()?;
    let forward = |batch: &[Vec<f32>]| -> Result<f64> {
        let start = Instant::now();
        std::hint::black_box(classifier.classify(batch)?);
        Ok(ms_since(start))
    };

    let first_ms = forward(&inputs[..1])?;
    let timed = |batch: &[Vec<f32>], runs: usize| -> Result<Stats> {
        for _ in 0..2 {
            forward(batch)?;
        }
        let per_image = batch.len() as f64;
        Ok(Stats::of(
            (0..runs)
                .map(|_| forward(batch).map(|ms| ms / per_image))
                .collect::<Result<_>>()?,
        ))
    };
    Ok(Row {
        engine: match kind {
            BackendKind::Cpu => "glimpse cpu (burn flex)".into(),
            BackendKind::Wgpu => "glimpse wgpu".into(),
        },
        load_ms: Some(load_ms),
        first_ms: Some(first_ms),
        batch1: timed(&inputs[..1], runs)?,
        batch8: timed(&inputs, runs.div_ceil(4).max(3))?,
    })
}

fn python(args: &BenchArgs) -> PathBuf {
    if let Some(p) = &args.python {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("GLIMPSE_PYTHON") {
        return p.into();
    }
    let venv = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/seed-py/bin/python"));
    venv.filter(|p| p.exists())
        .unwrap_or_else(|| "python3".into())
}

fn measure_onnxruntime(args: &BenchArgs, dir: &ModelDir, runs: usize) -> Result<Row> {
    let model = args
        .onnx
        .clone()
        .unwrap_or_else(|| dir.root.join("efficientnet-lite0.onnx"));
    if !model.exists() {
        return Err(GlimpseError::Backend(format!(
            "{} is missing; create it with tests/reference/export_onnx.py (see tests/reference/README.md)",
            model.display()
        )));
    }
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/bench_onnxruntime.py");
    let python = python(args);
    let peer = |batch: usize, runs: usize| -> Result<PeerLine> {
        let output = Command::new(&python)
            .arg(&script)
            .args(["--model".as_ref(), model.as_os_str()])
            .args([
                "--runs",
                &runs.to_string(),
                "--warmup",
                "3",
                "--batch",
                &batch.to_string(),
            ])
            .args(["--threads", &args.threads.to_string()])
            .output()
            .map_err(|e| GlimpseError::Backend(format!("cannot run {}: {e}", python.display())))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'));
        match (output.status.success(), line) {
            (true, Some(line)) => serde_json::from_str(line).map_err(|e| {
                GlimpseError::Backend(format!(
                    "unexpected output from the onnxruntime script: {e}"
                ))
            }),
            _ => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let reason = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no output");
                Err(GlimpseError::Backend(format!(
                    "{} failed: {reason}",
                    script.display()
                )))
            }
        }
    };
    let b1 = peer(1, runs)?;
    let b8 = peer(8, runs.div_ceil(4).max(3))?;
    Ok(Row {
        engine: format!("onnxruntime {} (CPU EP)", b1.version),
        load_ms: None,
        first_ms: None,
        batch1: Stats {
            median: b1.median_ms,
            min: b1.min_ms,
        },
        batch8: Stats {
            median: b8.median_ms / 8.0,
            min: b8.min_ms / 8.0,
        },
    })
}

fn print_table(args: &BenchArgs, runs: usize, preprocess: &Stats, rows: &[Row], notes: &[String]) {
    let peer = rows.iter().find(|r| r.engine.starts_with("onnxruntime"));
    println!(
        "EfficientNet-Lite0, 224×224 f32, {runs} timed runs after warm-up, {} CPU thread(s)\n",
        args.threads
    );
    println!(
        "| engine | load ms | first inference ms | batch 1 median ms | batch 1 min ms | batch 8 median ms/img | batch 8 min ms/img | batch 1 vs onnxruntime |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
    for row in rows {
        let ratio = peer.map_or("–".to_string(), |p| {
            format!("{:.2}×", row.batch1.median / p.batch1.median)
        });
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {ratio} |",
            row.engine,
            opt(row.load_ms),
            opt(row.first_ms),
            row.batch1.median,
            row.batch1.min,
            row.batch8.median,
            row.batch8.min
        );
    }
    println!(
        "\npreprocess (decode + resize + crop + normalize, foolbox photos): median {:.1} ms, min {:.1} ms per image",
        preprocess.median, preprocess.min
    );
    for note in notes {
        println!("{note}");
    }
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
