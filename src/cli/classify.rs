use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use glimpse::caption::evidence::gather;
use glimpse::caption::{Caption, Captioner, Facts};
use glimpse::provision::{
    CAPTION_MODEL_NAME, CLASS_EMBEDDINGS_NAME, ModelDir, TEXT_MODEL_NAME, TOKENIZER_NAME,
    WeightDType,
};
use glimpse::runtime::cpu;
use glimpse::text::{LabelRanker, LabelScore, ScoreKind, parse_labels};
use glimpse::vision::cam::locate;
use glimpse::vision::preprocess::{decode, prepare, read_image_file};
use glimpse::vision::rollup::{Group, roll_up};
use glimpse::vision::teach::{ClassSet, Head, MAX_SET_BYTES, TaughtPrediction};
use glimpse::{Classifier, GlimpseError, Prediction, Result, top_k};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{ensure_models, load_classifier, open_device};
use crate::ClassifyArgs;

/// Images per forward pass.
const BATCH: usize = 8;

#[derive(Serialize)]
#[serde(untagged)]
enum Outcome {
    Ok {
        file: String,
        top: Vec<Ranked>,
        /// Rivals among the top-5 that share a close noun ("cat": tiger cat, tabby, …).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        groups: Vec<Group>,
        #[serde(skip_serializing_if = "Option::is_none")]
        labels: Option<Vec<LabelScore>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        taught: Option<Vec<TaughtPrediction>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        caption: Option<String>,
        /// What the caption rests on: how it was made, the objects it may name, how sure.
        #[serde(skip_serializing_if = "Option::is_none")]
        caption_evidence: Option<Evidence>,
        ms: f64,
    },
    Failed {
        file: String,
        error: String,
    },
}

#[derive(Serialize)]
struct Evidence {
    source: glimpse::caption::Source,
    certainty: glimpse::caption::Certainty,
    objects: Vec<glimpse::caption::Subject>,
    backtracks: usize,
}

impl From<&Caption> for Evidence {
    fn from(c: &Caption) -> Self {
        Self {
            source: c.source,
            certainty: c.certainty,
            objects: c.objects.clone(),
            backtracks: c.backtracks,
        }
    }
}

/// A top class, and with `--where` the place its evidence lies.
#[derive(Serialize)]
struct Ranked {
    #[serde(flatten)]
    prediction: Prediction,
    #[serde(rename = "where", skip_serializing_if = "Option::is_none")]
    place: Option<Place>,
}

/// `--where`'s summary of a class's map (see `glimpse::vision::cam::Where`).
#[derive(Clone, Serialize)]
struct Place {
    #[serde(rename = "box")]
    bbox: [u32; 4],
    cover: f32,
    cell: &'static str,
}

struct Prepared {
    index: usize,
    input: Vec<f32>,
    /// Kept for `--where`, which looks at the whole picture.
    image: Option<RgbImage>,
    ms: f64,
}

pub fn run(args: &ClassifyArgs) -> Result<ExitCode> {
    let device = open_device(args.backend.kind())?;
    let dir = ensure_models()?;
    let classifier = load_classifier(&dir, device, args.precision)?;
    let mut zero_shot = args
        .labels
        .as_deref()
        .map(|list| ZeroShotLabels::load(&dir, list))
        .transpose()?;
    let head = args.head.as_deref().map(load_head).transpose()?;
    // A caption model that fails to load costs the captions, not the classification.
    let captioner = match args.caption.then(|| load_captioner(&dir, args.verbose)) {
        Some(Err(e)) => {
            eprintln!("glimpse: captions are unavailable: {e}");
            None
        }
        other => other.transpose()?,
    };
    // Captions are streamed to the terminal as they are written, unless JSON is asked for.
    let stream_captions = captioner.is_some() && !args.json;

    let progress = if args.files.len() > 3 {
        let bar = ProgressBar::new(args.files.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut outcomes: Vec<Option<Outcome>> = args.files.iter().map(|_| None).collect();
    for chunk in args
        .files
        .iter()
        .enumerate()
        .collect::<Vec<_>>()
        .chunks(BATCH)
    {
        let mut batch = Vec::new();
        for &(index, file) in chunk {
            progress.set_message(file.display().to_string());
            let start = Instant::now();
            match read_input(file, args.where_ || captioner.is_some()) {
                Ok((input, image)) => batch.push(Prepared {
                    index,
                    input,
                    image,
                    ms: ms_since(start),
                }),
                Err(e) => outcomes[index] = Some(failed(file, e)),
            }
        }
        if !batch.is_empty() {
            let start = Instant::now();
            let inputs: Vec<Vec<f32>> = batch
                .iter_mut()
                .map(|p| std::mem::take(&mut p.input))
                .collect();
            let (probs, features) = if head.is_some() {
                let (probs, features) = classifier.classify_with_features(&inputs)?;
                (probs, features.into_iter().map(Some).collect())
            } else {
                let probs = classifier.classify(&inputs)?;
                let none = vec![None; probs.len()];
                (probs, none)
            };
            let forward_ms = ms_since(start) / batch.len() as f64;
            for ((prepared, probs), features) in batch.iter().zip(probs).zip(features) {
                let file = args.files[prepared.index].display().to_string();
                let start = Instant::now();
                let shown = prepared.image.as_ref().filter(|_| args.where_);
                let top = ranked(&classifier, shown, &probs, args.top)?;
                let where_ms = ms_since(start);
                let caption = match &captioner {
                    Some(captioner) => {
                        if stream_captions {
                            progress.suspend(|| print!("{file}: "));
                        }
                        let facts = match &prepared.image {
                            Some(image) => gather(&classifier, image, &probs)?,
                            None => facts_of(&probs),
                        };
                        let written = captioner.caption(&facts, |piece| {
                            if stream_captions {
                                progress.suspend(|| {
                                    print!("{piece}");
                                    let _ = std::io::stdout().flush();
                                });
                            }
                        })?;
                        if stream_captions {
                            let note = if written.fallback {
                                format!("  → not about the photo; instead: {}", written.text)
                            } else {
                                String::new()
                            };
                            progress.suspend(|| println!("{note}"));
                        }
                        Some(written)
                    }
                    None => None,
                };
                outcomes[prepared.index] = Some(Outcome::Ok {
                    file,
                    top,
                    groups: roll_up(&probs),
                    labels: zero_shot.as_mut().map(|z| z.rank(&probs)).transpose()?,
                    taught: head
                        .as_ref()
                        .zip(features)
                        .map(|(head, features)| head.predict(&features)),
                    caption_evidence: caption.as_ref().map(Evidence::from),
                    caption: caption.map(|c| c.text),
                    ms: round2(prepared.ms + forward_ms + where_ms),
                });
            }
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();

    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.expect("every file has an outcome"))
        .collect();
    if stream_captions && args.captions_only {
        let any_failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. }));
        for outcome in &outcomes {
            if let Outcome::Failed { file, error } = outcome {
                println!("{file}: error: {error}");
            }
        }
        return Ok(if any_failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&outcomes).expect("results serialize")
        )
    } else {
        print_table(&mut out, &outcomes)
    };
    // A closed pipe (`glimpse classify … | head`) is the reader's choice, not an error.
    if let Err(e) = written.and_then(|()| out.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(GlimpseError::io("cannot write the results")(e));
    }
    let any_failed = outcomes.iter().any(|o| matches!(o, Outcome::Failed { .. }));
    Ok(if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `glimpse caption`: classify, then stream one caption per file.
pub fn caption(files: Vec<PathBuf>, verbose: bool) -> Result<ExitCode> {
    run(&ClassifyArgs {
        files,
        json: false,
        top: 3,
        backend: crate::Backend::Cpu,
        precision: None,
        labels: None,
        head: None,
        caption: true,
        verbose,
        where_: false,
        captions_only: true,
    })
}

/// What a caption of one picture may say, from its class probabilities.
fn facts_of(probs: &[f32]) -> Facts {
    Facts::from_classification(&top_k(probs, 2), &roll_up(probs))
        .expect("1000 classes give a top class")
}

fn load_captioner(dir: &ModelDir, verbose: bool) -> Result<Captioner> {
    let start = std::time::Instant::now();
    let bytes = dir.read_file(CAPTION_MODEL_NAME, None)?;
    let captioner = Captioner::from_gguf(&bytes, &cpu())?;
    if verbose {
        let stats = captioner.model().weight_stats();
        eprintln!(
            "glimpse: caption model loaded in {:.2} s: {} weights in {:.1} MB ({:.2} bits per weight)",
            start.elapsed().as_secs_f64(),
            stats.params,
            stats.bytes as f64 / 1e6,
            stats.bits_per_weight()
        );
    }
    Ok(captioner)
}

/// The head of an exported class set, trained here if the file holds examples but no head.
fn load_head(path: &Path) -> Result<Head> {
    let size = std::fs::metadata(path)
        .map_err(GlimpseError::io(format!("cannot read {}", path.display())))?
        .len();
    if size > MAX_SET_BYTES as u64 {
        return Err(GlimpseError::InvalidArgument(format!(
            "{}: this is not a usable teachable-classes file: it is {:.1} MB; the limit is {} MB",
            path.display(),
            size as f64 / 1e6,
            MAX_SET_BYTES / 1_000_000
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(GlimpseError::io(format!("cannot read {}", path.display())))?;
    let mut set = ClassSet::from_json(&text)
        .map_err(|e| GlimpseError::InvalidArgument(format!("{}: {e}", path.display())))?;
    if set.head.is_none() {
        set.train()
            .map_err(|e| GlimpseError::InvalidArgument(format!("{}: {e}", path.display())))?;
    }
    Ok(set.head.expect("trained"))
}

/// The user's labels, tidied once, and the label model that ranks them (it embeds them once).
struct ZeroShotLabels {
    ranker: LabelRanker,
    labels: Vec<String>,
}

impl ZeroShotLabels {
    fn load(dir: &ModelDir, list: &str) -> Result<Self> {
        let labels = parse_labels(list)?;
        let mut ranker = LabelRanker::load(
            dir.read_file(TEXT_MODEL_NAME, Some(WeightDType::F32))?,
            &dir.read_file(TOKENIZER_NAME, None)?,
            &dir.read_file(CLASS_EMBEDDINGS_NAME, Some(WeightDType::F16))?,
        )?;
        ranker.embed_labels(&labels)?;
        Ok(Self { ranker, labels })
    }

    fn rank(&mut self, probs: &[f32]) -> Result<Vec<LabelScore>> {
        self.ranker.rank(probs, &self.labels)
    }
}

/// The network's input, and the upright picture itself when `keep` (for `--where` and for
/// captions, which look at the whole picture).
fn read_input(file: &Path, keep: bool) -> Result<(Vec<f32>, Option<RgbImage>)> {
    let bytes = read_image_file(file)?;
    let image = decode(&bytes)?;
    Ok((prepare(&image), keep.then_some(image)))
}

/// The top classes, each with where it lies in `image` when there is one.
fn ranked(
    classifier: &Classifier,
    image: Option<&RgbImage>,
    probs: &[f32],
    top: u16,
) -> Result<Vec<Ranked>> {
    let top = top_k(probs, top as usize);
    let places = match image {
        Some(image) => {
            let classes: Vec<usize> = top.iter().map(|p| p.index).collect();
            let (_, found) = locate(classifier, image, &classes)?;
            found
                .into_iter()
                .map(|w| {
                    Some(Place {
                        bbox: w.bbox,
                        cover: (w.cover * 100.0).round() / 100.0,
                        cell: w.cell,
                    })
                })
                .collect()
        }
        None => vec![None; top.len()],
    };
    Ok(top
        .into_iter()
        .zip(places)
        .map(|(prediction, place)| Ranked { prediction, place })
        .collect())
}

fn failed(file: &Path, e: GlimpseError) -> Outcome {
    Outcome::Failed {
        file: file.display().to_string(),
        error: e.to_string(),
    }
}

fn print_table(out: &mut impl Write, outcomes: &[Outcome]) -> std::io::Result<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::Ok {
                file,
                top,
                groups,
                labels,
                taught,
                caption,
                ms,
                ..
            } => {
                writeln!(out, "{file}  ({ms:.1} ms)")?;
                for (rank, ranked) in top.iter().enumerate() {
                    let p = &ranked.prediction;
                    let bar = "█".repeat((p.prob * 20.0).round() as usize);
                    let bar = match &ranked.place {
                        Some(place) => format!("{bar:<20}  ({})", place.cell),
                        None => bar,
                    };
                    writeln!(
                        out,
                        "  {}. {:<32} {:>6.2}%  {bar}",
                        rank + 1,
                        p.label,
                        p.prob * 100.0
                    )?;
                }
                for group in groups {
                    let members: Vec<&str> =
                        group.members.iter().map(|m| m.label.as_str()).collect();
                    writeln!(
                        out,
                        "  together: {} {:.1}% ({})",
                        group.noun,
                        group.prob * 100.0,
                        members.join(", ")
                    )?;
                }
                if let Some(caption) = caption {
                    writeln!(out, "  caption: {caption}")?;
                }
                if let Some(labels) = labels {
                    let ranked: Vec<String> = labels
                        .iter()
                        .map(|l| match l.kind {
                            ScoreKind::Probability => {
                                format!("{} {:.1}%", l.label, l.score * 100.0)
                            }
                            // A similarity is no chance: no percent sign.
                            ScoreKind::Similarity => {
                                format!("{} (similarity {:.2})", l.label, l.score)
                            }
                        })
                        .collect();
                    writeln!(out, "  your labels: {}", ranked.join(", "))?;
                }
                if let Some(taught) = taught {
                    let ranked: Vec<String> = taught
                        .iter()
                        .map(|t| format!("{} {:.1}%", t.label, t.prob * 100.0))
                        .collect();
                    writeln!(out, "  your classes: {}", ranked.join(", "))?;
                }
            }
            Outcome::Failed { file, error } => writeln!(out, "{file}  error: {error}")?,
        }
    }
    Ok(())
}

fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

fn round2(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}
