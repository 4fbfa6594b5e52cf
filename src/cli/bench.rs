//! `glimpse bench`: latency table for each backend, with onnxruntime measured in the same run
//! on an ONNX export of the reference model, so the ratio is visible.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::time::Instant;

use glimpse::provision::{ModelDir, WeightDType};
use glimpse::vision::preprocess::{decode, prepare};
use glimpse::{BackendKind, Classifier, GlimpseError, Result};
use serde::Deserialize;

use super::{ensure_models, open_device};
use crate::{Backend, BenchArgs};

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

/// The first line `tests/reference/bench_onnxruntime.py --serve` prints.
#[derive(Deserialize)]
struct PeerReady {
    version: String,
}

/// Each later line: one batch's `session.run`.
#[derive(Deserialize)]
struct PeerRun {
    ms: f64,
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
    let mut peer = match Peer::start(args, &dir) {
        Ok(peer) => Some(peer),
        Err(e) => {
            notes.push(format!("onnxruntime: not measured: {e}"));
            None
        }
    };
    let mut peer_row = None;
    for kind in backend_kinds(args) {
        let device = match open_device(kind) {
            Ok(device) => device,
            Err(e) => {
                notes.push(format!("glimpse {}: not measured: {e}", kind.name()));
                continue;
            }
        };
        // onnxruntime is measured beside the first backend (the CPU unless left out).
        let turns = if peer_row.is_none() {
            peer.as_mut()
        } else {
            None
        };
        let (row, peers) = measure_backend(&dir, kind, device, &photos, runs, turns, args.threads)?;
        rows.push(row);
        if let (Some(peers), Some(peer)) = (peers, &peer) {
            peer_row = Some(Row {
                engine: format!("onnxruntime {} (CPU EP)", peer.version),
                load_ms: None,
                first_ms: None,
                batch1: peers.0,
                batch8: peers.1,
            });
        }
    }
    if peer.is_some() && peer_row.is_none() {
        notes.push("onnxruntime: not measured: no glimpse backend was measured".into());
    }
    rows.extend(peer_row);

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
        // The same backends as the image rows; candle beside the CPU.
        for kind in backend_kinds(args) {
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
        let threads = args.threads.max(1);
        match super::bench_caption::measure_first_token(&dir, llm_runs) {
            Ok(row) => super::bench_caption::print_first_token(&row, threads, llm_runs),
            Err(e) => println!("a caption's time to first token: not measured: {e}"),
        }
        if args.profile {
            let profile = super::bench_caption::profile_glimpse(&dir)?;
            super::bench_caption::print_profile(&profile, threads);
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
    match super::bench_caption::measure_first_token(dir, runs) {
        Ok(row) => super::bench_caption::print_first_token(&row, threads, runs),
        Err(e) => println!("a caption's time to first token: not measured: {e}"),
    }
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

/// One backend's row. With `peer`, onnxruntime runs the same batches, and its times come back
/// as (batch 1, batch 8 per image): on one thread right after each of our runs (warm-ups
/// included), so that a busy spell on the machine falls on both; on more, after all of ours,
/// because its pool threads spin between runs and would take the cores from ours (with two
/// threads in turns our forward took 14 ms against 10–11 ms alone, 2026-12-06).
fn measure_backend(
    dir: &ModelDir,
    kind: BackendKind,
    device: burn::tensor::Device,
    photos: &[Vec<u8>],
    runs: usize,
    mut peer: Option<&mut Peer>,
    threads: usize,
) -> Result<(Row, Option<(Stats, Stats)>)> {
    let in_turns = threads == 1;
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
    let mut timed = |batch: &[Vec<f32>], runs: usize| -> Result<(Stats, Option<Stats>)> {
        let per_image = batch.len() as f64;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        // The first two runs of each engine are warm-up.
        for run in 0..runs + 2 {
            let ms = forward(batch)?;
            let peer_ms = match peer.as_deref_mut().filter(|_| in_turns) {
                Some(peer) => Some(peer.run(batch.len())?),
                None => None,
            };
            if run >= 2 {
                ours.push(ms / per_image);
                theirs.extend(peer_ms.map(|ms| ms / per_image));
            }
        }
        if let Some(peer) = peer.as_deref_mut().filter(|_| !in_turns) {
            for run in 0..runs + 2 {
                let ms = peer.run(batch.len())?;
                if run >= 2 {
                    theirs.push(ms / per_image);
                }
            }
        }
        let theirs = (!theirs.is_empty()).then(|| Stats::of(theirs));
        Ok((Stats::of(ours), theirs))
    };
    let (batch1, peer1) = timed(&inputs[..1], runs)?;
    let (batch8, peer8) = timed(&inputs, runs.div_ceil(4).max(3))?;
    let row = Row {
        engine: match kind {
            BackendKind::Cpu => "glimpse cpu (burn flex)".into(),
            BackendKind::Wgpu => "glimpse wgpu".into(),
        },
        load_ms: Some(load_ms),
        first_ms: Some(first_ms),
        batch1,
        batch8,
    };
    Ok((row, peer1.zip(peer8)))
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

/// onnxruntime on the ONNX export, in its own process (`bench_onnxruntime.py --serve`), one
/// `session.run` per request.
struct Peer {
    version: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(args: &BenchArgs, dir: &ModelDir) -> Result<Peer> {
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
        let script = repository_file("tests/reference/bench_onnxruntime.py");
        let python = python(args);
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--model".as_ref(), model.as_os_str()])
            .args(["--serve", "--warmup", "3"])
            .args(["--threads", &args.threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| GlimpseError::Backend(format!("cannot run {}: {e}", python.display())))?;
        let stdin = child.stdin.take().expect("stdin was piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout was piped"));
        let mut peer = Peer {
            version: String::new(),
            child,
            stdin,
            stdout,
        };
        let ready: PeerReady = peer.read_line()?;
        peer.version = ready.version;
        Ok(peer)
    }

    /// One `session.run` of a batch of `batch` random inputs; its milliseconds.
    fn run(&mut self, batch: usize) -> Result<f64> {
        writeln!(self.stdin, "{batch}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| self.failed(&e.to_string()))?;
        Ok(self.read_line::<PeerRun>()?.ms)
    }

    fn read_line<T: for<'de> Deserialize<'de>>(&mut self) -> Result<T> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err(self.failed("it stopped")),
            Ok(_) => serde_json::from_str(&line).map_err(|e| {
                GlimpseError::Backend(format!(
                    "unexpected output from the onnxruntime script: {e}: {}",
                    line.trim()
                ))
            }),
            Err(e) => Err(self.failed(&e.to_string())),
        }
    }

    /// The error for a script that no longer answers, with the last line it wrote to stderr.
    fn failed(&mut self, what: &str) -> GlimpseError {
        let _ = self.child.kill();
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut err, &mut stderr);
        }
        let reason = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(what);
        GlimpseError::Backend(format!("bench_onnxruntime.py failed: {reason}"))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn print_table(args: &BenchArgs, runs: usize, preprocess: &Stats, rows: &[Row], notes: &[String]) {
    let peer = rows.iter().find(|r| r.engine.starts_with("onnxruntime"));
    // The peer was measured beside the first row.
    let beside = match (peer, rows.first()) {
        (Some(_), Some(first)) if args.threads == 1 => {
            format!(
                "; onnxruntime ran one batch after each of {}'s",
                first.engine
            )
        }
        (Some(_), Some(first)) => format!("; onnxruntime ran after all of {}'s", first.engine),
        _ => String::new(),
    };
    println!(
        "EfficientNet-Lite0, 224×224 f32, {runs} timed runs after warm-up, {} CPU thread(s){beside}\n",
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

/// The backends `--backends` names, in its order.
fn backend_kinds(args: &BenchArgs) -> impl Iterator<Item = BackendKind> + '_ {
    args.backends.iter().map(|backend| match backend {
        Backend::Cpu => BackendKind::Cpu,
        Backend::Wgpu => BackendKind::Wgpu,
    })
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// `relative` in the checkout the bench is run from (the working directory or a folder above
/// it), else in the one the binary was built from. The build's own path alone is not enough:
/// the target directory is a cache shared by clones, so a binary built in one clone runs in
/// another, where the first may be gone.
fn repository_file(relative: &str) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|dir| {
            dir.ancestors()
                .map(|d| d.join(relative))
                .find(|path| path.exists())
        })
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative))
}
