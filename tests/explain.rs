//! `glimpse explain` and `glimpse classify --where`, run as the real binary.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::models;
use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("glimpse-explain-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn photo(name: &str) -> PathBuf {
    models().photos_dir().join(format!("{name}.jpg"))
}

fn glimpse(args: &[&str], files: &[PathBuf]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_glimpse"))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "glimpse panicked: {stderr}");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        stderr,
    )
}

#[test]
fn explain_writes_one_overlay_per_image_the_size_of_the_photo() {
    let out = scratch("overlays");
    let files = [photo("imagenet_08_915"), photo("imagenet_00_243")];
    let (ok, stdout, stderr) = glimpse(&["explain", "--out", out.to_str().unwrap()], &files);
    assert!(ok, "{stdout}\n{stderr}");
    for (file, label) in files.iter().zip(["yurt", "bull mastiff"]) {
        let written = out.join(format!(
            "{}.where.png",
            file.file_stem().unwrap().to_string_lossy()
        ));
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&*file.to_string_lossy()))
            .unwrap_or_else(|| panic!("no line for {}: {stdout}", file.display()));
        assert!(line.contains(label), "{line}");
        assert!(line.contains(&*written.to_string_lossy()), "{line}");
        let overlay = image::open(&written).unwrap();
        let original = image::open(file).unwrap();
        assert_eq!(
            (overlay.width(), overlay.height()),
            (original.width(), original.height())
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn explain_shows_the_class_asked_for_and_refuses_an_unknown_one() {
    let out = scratch("class");
    let files = [photo("imagenet_08_915")];
    let dir = out.to_str().unwrap();
    let (ok, stdout, _) = glimpse(&["explain", "--out", dir, "--class", "Lakeside"], &files);
    assert!(ok);
    assert!(stdout.contains("lakeside"), "{stdout}");

    let (ok, _, stderr) = glimpse(&["explain", "--out", dir, "--class", "unicorn"], &files);
    assert!(!ok);
    assert!(
        stderr.contains("no ImageNet class is called 'unicorn'"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn classify_where_adds_box_cover_and_cell_to_each_top_class() {
    let file = photo("imagenet_08_915");
    let (width, height) = image::image_dimensions(&file).unwrap();
    let (ok, stdout, stderr) = glimpse(&["classify", "--json", "--where", "--top", "3"], &[file]);
    assert!(ok, "{stderr}");
    let results: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let top = results[0]["top"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for class in top {
        let place = &class["where"];
        let bbox: Vec<u64> = place["box"]
            .as_array()
            .unwrap_or_else(|| panic!("no box: {class}"))
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(bbox[0] < bbox[2] && bbox[2] <= width as u64, "{bbox:?}");
        assert!(bbox[1] < bbox[3] && bbox[3] <= height as u64, "{bbox:?}");
        let cover = place["cover"].as_f64().unwrap();
        assert!(cover > 0.0 && cover <= 1.0, "{cover}");
        assert!(place["cell"].is_string());
    }
}

#[test]
fn classify_without_where_stays_as_it_was() {
    let (ok, stdout, _) = glimpse(&["classify", "--json"], &[photo("imagenet_08_915")]);
    assert!(ok);
    let results: Vec<Value> = serde_json::from_str(&stdout).unwrap();
    let first = &results[0]["top"][0];
    assert!(first.get("where").is_none(), "{first}");
    assert_eq!(first["label"], "yurt");
}
