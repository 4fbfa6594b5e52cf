//! Bad input gets a clear one-line error, the rest of the batch still classifies, and nothing
//! crashes. Runs the real `glimpse` binary.

mod common;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use common::models;
use glimpse::Classifier;
use glimpse::provision::{ModelDir, WeightDType};
use glimpse::vision::preprocess::decode;
use image::{ImageFormat, RgbImage};
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-bad-input-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]))
        .write_to(&mut out, ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// A PNG that claims `width`×`height` in its header but carries almost no pixel data, as a
/// decompression bomb would.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[..]),
        (b"IDAT", &[0x78, 0x9c, 0x03, 0x00][..]),
        (b"IEND", &[][..]),
    ] {
        out.extend((data.len() as u32).to_be_bytes());
        let chunk = [kind, data].concat();
        out.extend(&chunk);
        out.extend(crc32(&chunk).to_be_bytes());
    }
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn first_photo(dir: &ModelDir) -> PathBuf {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(dir.photos_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    photos.sort();
    photos.remove(0)
}

fn classify_json(files: &[&Path]) -> (bool, Vec<Value>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .arg("classify")
        .arg("--json")
        .args(files)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "glimpse panicked: {stderr}");
    let results: Vec<Value> =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    (output.status.success(), results, stderr)
}

#[test]
fn each_bad_file_gets_its_own_error_and_the_good_one_still_classifies() {
    let dir = models();
    let work = scratch("batch");
    let good = first_photo(&dir);
    let photo = std::fs::read(&good).unwrap();
    let files = [
        (
            "notes.jpg",
            b"these are notes, not an image".to_vec(),
            "not a JPEG, PNG",
        ),
        ("half.jpg", photo[..photo.len() / 2].to_vec(), "truncated"),
        ("empty.png", Vec::new(), "empty"),
        ("zero.png", png_header(0, 0), ""),
        ("dot.png", png(1, 1), "too small"),
        ("huge.png", png_header(30_000, 30_000), "too large"),
    ];
    let mut paths = vec![good.clone()];
    for (name, bytes, _) in &files {
        let path = work.join(name);
        std::fs::write(&path, bytes).unwrap();
        paths.push(path);
    }
    let (ok, results, _) = classify_json(&paths.iter().map(PathBuf::as_path).collect::<Vec<_>>());

    assert!(!ok, "the exit code reports the failures");
    assert_eq!(results.len(), paths.len());
    assert_eq!(
        results[0]["top"].as_array().unwrap().len(),
        5,
        "the good photo still classifies"
    );
    for ((name, _, expected), result) in files.iter().zip(&results[1..]) {
        let error = result["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} should fail: {result}"));
        assert!(
            !error.contains('\n'),
            "{name}: the error is one line: {error}"
        );
        assert!(error.contains(expected), "{name}: {error}");
        assert!(result["file"].as_str().unwrap().ends_with(name));
    }
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn an_image_over_100_megapixels_is_refused_before_decoding() {
    let err = decode(&png_header(30_000, 30_000)).unwrap_err();
    assert!(
        err.to_string().contains("too large (30000×30000 pixels"),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_reported_and_named() {
    models();
    let (ok, results, _) = classify_json(&[Path::new("/nonexistent/photo.jpg")]);
    assert!(!ok);
    assert!(
        results[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot read the file")
    );
}

#[test]
fn truncated_weights_are_refused_without_a_crash() {
    let dir = models();
    for dtype in [WeightDType::F32, WeightDType::Int8] {
        let weights = dir.read_weights(dtype).unwrap();
        for cut in [20, weights.len() / 2, weights.len() - 1] {
            let err = Classifier::from_burnpack(weights[..cut].to_vec(), Device::flex()).err();
            assert!(
                err.is_some(),
                "{dtype:?} weights cut at {cut} bytes were accepted"
            );
        }
    }
}

#[test]
fn a_pytorch_checkpoint_passed_as_weights_is_refused_by_name() {
    let dir = models();
    let pth = dir.root.join("packages/efficientnet-lite0.pth");
    let err = Classifier::from_burnpack(std::fs::read(pth).unwrap(), Device::flex())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not in burnpack format"), "{err}");
}

#[test]
fn wgpu_without_an_adapter_is_a_clear_error_or_works() {
    let dir = models();
    let output = Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(["classify", "--backend", "wgpu", "--json"])
        .arg(first_photo(&dir))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() {
        return; // a machine with a GPU or a software Vulkan driver
    }
    assert!(
        stderr.contains("the wgpu backend is not available"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_image_file_over_50_mb_is_refused_by_its_size_before_it_is_read() {
    let err = decode(&vec![0xFF; 50_000_001]).unwrap_err();
    assert!(
        err.to_string()
            .contains("the image file is too large (50.0 MB; the limit is 50 MB)"),
        "{err}"
    );
    // A sparse file: 60 MB by its size, nothing on disk, so only a read would cost anything.
    models();
    let work = scratch("huge-file");
    let path = work.join("huge.jpg");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(60_000_000)
        .unwrap();
    let (ok, results, _) = classify_json(&[&path]);
    assert!(!ok);
    let error = results[0]["error"].as_str().unwrap();
    assert!(
        error.contains("the image file is too large (60.0 MB; the limit is 50 MB)"),
        "{error}"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

#[test]
fn a_class_set_file_over_50_mb_is_refused_by_its_size_before_it_is_read() {
    let dir = models();
    let work = scratch("huge-set");
    let path = work.join("classes.json");
    std::fs::File::create(&path)
        .unwrap()
        .set_len(60_000_000)
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .arg("classify")
        .arg("--head")
        .arg(&path)
        .arg(first_photo(&dir))
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert!(
        stderr.contains("not a usable teachable-classes file: it is 60.0 MB; the limit is 50 MB"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    std::fs::remove_dir_all(&work).unwrap();
}
