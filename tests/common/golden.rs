//! The golden inputs of `tests/reference/make_goldens.py`: its committed 224×224 photo crops
//! and its two synthetic tensors, defined by formula and reproduced bit for bit.

use std::path::{Path, PathBuf};

use glimpse::vision::preprocess::{CROP, normalize};

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A golden input by name, `[3, 224, 224]` as the network reads it.
pub fn input(name: &str) -> Vec<f32> {
    if name.starts_with("synthetic_") {
        return synthetic(name);
    }
    let crop = image::open(golden_dir().join("inputs").join(format!("{name}.png")))
        .unwrap()
        .into_rgb8();
    normalize(&crop)
}

fn synthetic(name: &str) -> Vec<f32> {
    let side = CROP as usize;
    let mut x = Vec::with_capacity(3 * side * side);
    for c in 0..3 {
        for h in 0..side {
            for w in 0..side {
                x.push(match name {
                    "synthetic_stripes" => {
                        (((h * 7 + w * 13 + c * 29) % 256) as f32 - 127.0) / 128.0
                    }
                    "synthetic_saddle" => {
                        ((h as f32 - 112.0) / 112.0)
                            * ((w as f32 - 112.0) / 112.0)
                            * (c as f32 - 1.0)
                    }
                    other => panic!("unknown synthetic input {other}"),
                });
            }
        }
    }
    x
}
