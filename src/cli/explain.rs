//! `glimpse explain`: one PNG per image showing where the model found its top class (or the
//! class asked for), drawn over the whole picture.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use glimpse::vision::cam::locate;
use glimpse::vision::labels::{self, imagenet};
use glimpse::vision::overlay::overlay;
use glimpse::vision::preprocess::{decode, prepare, read_image_file};
use glimpse::{Classifier, GlimpseError, Result};

use super::{ensure_models, load_classifier, open_device};
use crate::ExplainArgs;

pub fn run(args: &ExplainArgs) -> Result<ExitCode> {
    let class = args
        .class
        .as_deref()
        .map(|name| {
            labels::find(name).ok_or_else(|| {
                GlimpseError::InvalidArgument(format!(
                    "no ImageNet class is called '{name}' (use a name such as 'yurt' or \
                     'golden retriever', or an index from 0 to 999)"
                ))
            })
        })
        .transpose()?;
    let device = open_device(args.backend.kind())?;
    let dir = ensure_models()?;
    let classifier = load_classifier(&dir, device, None)?;
    std::fs::create_dir_all(&args.out).map_err(GlimpseError::io(format!(
        "cannot create {}",
        args.out.display()
    )))?;

    let mut written = HashSet::new();
    let mut any_failed = false;
    for file in &args.files {
        match explain(&classifier, file, class, &args.out, &mut written) {
            Ok(line) => println!("{}: {line}", file.display()),
            Err(e) => {
                any_failed = true;
                println!("{}: error: {e}", file.display());
            }
        }
    }
    Ok(if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Writes one overlay and says what it shows and where it went.
fn explain(
    classifier: &Classifier,
    file: &Path,
    class: Option<usize>,
    out: &Path,
    written: &mut HashSet<PathBuf>,
) -> Result<String> {
    let bytes = read_image_file(file)?;
    let image = decode(&bytes)?;
    let probs = classifier.classify(&[prepare(&image)])?.remove(0);
    let class = class.unwrap_or_else(|| glimpse::top_k(&probs, 1)[0].index);
    let (tiling, mut found) = locate(classifier, &image, &[class])?;
    let found = found.remove(0);
    let path = output_path(file, out, written);
    overlay(&image, &found)
        .save(&path)
        .map_err(|e| GlimpseError::io(format!("cannot write {}", path.display()))(io(e)))?;
    Ok(format!(
        "{} {:.1}%, {} (box {:?}, {} view{}) → {}",
        imagenet()[class].name(),
        probs[class] * 100.0,
        found.cell,
        found.bbox,
        tiling.views.len(),
        if tiling.views.len() == 1 { "" } else { "s" },
        path.display()
    ))
}

/// `<out>/<stem>.where.png`, numbered when two inputs share a name.
fn output_path(file: &Path, out: &Path, written: &mut HashSet<PathBuf>) -> PathBuf {
    let stem = file
        .file_stem()
        .map_or("image".into(), |s| s.to_string_lossy().into_owned());
    let mut path = out.join(format!("{stem}.where.png"));
    let mut n = 2;
    while !written.insert(path.clone()) {
        path = out.join(format!("{stem}-{n}.where.png"));
        n += 1;
    }
    path
}

fn io(e: image::ImageError) -> std::io::Error {
    match e {
        image::ImageError::IoError(e) => e,
        other => std::io::Error::other(other),
    }
}
