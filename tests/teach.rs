//! Teachable classes on real photos: classes taught from crops of foolbox photos recognize
//! crops they never saw, survive the JSON round trip, and the CLI reads the exported file.

mod common;

use std::time::Instant;

use burn::tensor::Device;
use common::models;
use glimpse::Classifier;
use glimpse::provision::{MODEL_NAME, WeightDType};
use glimpse::vision::preprocess::{augmented_views, decode, prepare};
use glimpse::vision::teach::ClassSet;
use image::RgbImage;

fn classifier() -> Classifier {
    let dir = models();
    Classifier::from_burnpack(
        dir.read_file(MODEL_NAME, Some(WeightDType::F32)).unwrap(),
        Device::flex(),
    )
    .unwrap()
}

fn photo(index: usize) -> RgbImage {
    let dir = models().photos_dir();
    let name = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(&format!("imagenet_{index:02}_")))
        .unwrap();
    decode(&std::fs::read(dir.join(name)).unwrap()).unwrap()
}

/// The `i`-th of a fixed series of crops covering 55–85% of each side at varying places.
fn crop(image: &RgbImage, i: usize) -> RgbImage {
    let (w, h) = image.dimensions();
    let scale = 0.55 + 0.3 * ((i * 7) % 10) as f32 / 10.0;
    let (cw, ch) = ((w as f32 * scale) as u32, (h as f32 * scale) as u32);
    let x = ((w - cw) as f32 * ((i * 3) % 5) as f32 / 4.0) as u32;
    let y = ((h - ch) as f32 * ((i * 2) % 5) as f32 / 4.0) as u32;
    image::imageops::crop_imm(image, x, y, cw, ch).to_image()
}

fn features(classifier: &Classifier, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    classifier.classify_with_features(inputs).unwrap().1
}

fn teach(classifier: &Classifier, classes: &[(&str, usize)], examples: usize) -> ClassSet {
    let mut set = ClassSet::default();
    for &(name, index) in classes {
        let image = photo(index);
        for i in 0..examples {
            let views = augmented_views(&crop(&image, i));
            set.add(name, features(classifier, &views)).unwrap();
        }
    }
    set
}

#[test]
fn classes_taught_from_crops_of_two_photos_recognize_crops_they_never_saw() {
    let classifier = classifier();
    // The dalmatian and the yurt: two photos, eight crops each to learn from.
    let classes = [("spotty dog", 16), ("tent", 8)];
    let mut set = teach(&classifier, &classes, 8);
    set.train().unwrap();
    let head = set.head.clone().unwrap();
    for acc in &set.accuracy {
        assert_eq!(acc.correct, acc.total, "leave-one-out: {acc:?}");
    }
    for &(name, index) in &classes {
        let image = photo(index);
        // Crops 20.. are not among the training crops' places and sizes combined.
        for i in 20..24 {
            let input = prepare(&crop(&image, i));
            let top = head.predict(&features(&classifier, &[input])[0]);
            assert_eq!(
                top[0].label, name,
                "held-out crop {i} of photo {index}: {top:?}"
            );
            assert!(top[0].prob > 0.5);
        }
    }

    // The exported document gives the same predictions once imported.
    let back = ClassSet::from_json(&set.to_json()).unwrap();
    let input = prepare(&crop(&photo(16), 25));
    let features = &features(&classifier, &[input])[0];
    let (a, b) = (head.predict(features), back.head.unwrap().predict(features));
    assert_eq!(a[0].label, b[0].label);
    assert!((a[0].prob - b[0].prob).abs() < 1e-5, "{a:?} vs {b:?}");
}

/// Five classes, each taught from crops of one foolbox photo (by its index).
const FIVE_CLASSES: [(&str, usize); 5] = [
    ("mastiff", 0),
    ("chair", 1),
    ("strawberry", 4),
    ("goose", 15),
    ("beetle", 19),
];

#[test]
fn five_classes_of_twenty_examples_train_and_report_leave_one_out_accuracy() {
    let classifier = classifier();
    let classes = FIVE_CLASSES;
    let started = Instant::now();
    let mut set = teach(&classifier, &classes, 20);
    let adding = started.elapsed();
    let started = Instant::now();
    set.train().unwrap();
    let training = started.elapsed();
    eprintln!(
        "5 × 20 examples: features {:.2} s (3 views each), training {:.1} ms",
        adding.as_secs_f64(),
        training.as_secs_f64() * 1e3
    );
    assert_eq!(set.example_count(), 100);
    let correct: usize = set.accuracy.iter().map(|a| a.correct).sum();
    let total: usize = set.accuracy.iter().map(|a| a.total).sum();
    eprintln!("leave-one-out: {correct}/{total} {:?}", set.accuracy);
    assert_eq!(total, 100);
    assert!(correct >= 95, "leave-one-out {correct}/{total}");
}

#[test]
fn the_cli_ranks_taught_classes_from_an_exported_file() {
    let classifier = classifier();
    let mut set = teach(&classifier, &[("spotty dog", 16), ("tent", 8)], 4);
    set.train().unwrap();
    let dir = std::env::temp_dir().join(format!("glimpse-head-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let head = dir.join("classes.json");
    std::fs::write(&head, set.to_json()).unwrap();
    let foreign = dir.join("foreign.json");
    std::fs::write(&foreign, r#"{"weights": [1, 2, 3]}"#).unwrap();

    let photos = models().photos_dir();
    let yurt = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("imagenet_08_")
        })
        .unwrap();
    let run = |head: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_glimpse"))
            .args(["classify", "--json", "--head"])
            .arg(head)
            .arg(&yurt)
            .env("GLIMPSE_MODELS", &models().root)
            .output()
            .unwrap()
    };
    let output = run(&head);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json[0]["taught"][0]["label"], "tent", "{json}");

    let output = run(&foreign);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not a usable teachable-classes file"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The percentages shown for taught classes are chances among those classes: taught from a few
/// shots, a class's stated probability is about how often it is right (expected calibration
/// error, 10 bins, over held-out crops). A picture of none of the classes still spreads 100%
/// over them, so each prediction also says whether the picture resembles the class at all.
#[test]
fn taught_class_percentages_match_how_often_they_are_right() {
    let classifier = classifier();
    let classes = FIVE_CLASSES;
    let crops: Vec<Vec<Vec<Vec<f32>>>> = classes
        .iter()
        .map(|&(_, index)| {
            let image = photo(index);
            (0..12)
                .map(|i| features(&classifier, &augmented_views(&crop(&image, i))))
                .collect()
        })
        .collect();
    let strangers: Vec<Vec<f32>> = [2, 8, 10, 13, 17]
        .iter()
        .flat_map(|&index| {
            let image = photo(index);
            (0..4)
                .map(|i| features(&classifier, &[prepare(&crop(&image, i))]).remove(0))
                .collect::<Vec<_>>()
        })
        .collect();

    // Two shots per class, six different draws; every other crop is held out.
    let (mut stated, mut right, mut stranger_top) = (Vec::new(), Vec::new(), Vec::new());
    let (mut resembling, mut strangers_resembling) = (0, 0);
    for draw in 0..6 {
        let shots = [2 * draw, 2 * draw + 1];
        let mut set = ClassSet::default();
        for (c, &(name, _)) in classes.iter().enumerate() {
            for &shot in &shots {
                set.add(name, crops[c][shot].clone()).unwrap();
            }
        }
        let head = set.train().unwrap().clone();
        for (c, &(name, _)) in classes.iter().enumerate() {
            for (i, views) in crops[c].iter().enumerate() {
                if shots.contains(&i) {
                    continue;
                }
                let top = head.predict(&views[0]).remove(0);
                resembling += usize::from(top.resembles);
                stated.push(top.prob);
                right.push(top.label == name);
            }
        }
        stranger_top.extend(strangers.iter().map(|f| head.predict(f)[0].prob));
        strangers_resembling += strangers
            .iter()
            .filter(|f| head.predict(f).iter().any(|p| p.resembles))
            .count();
    }
    let bins = 10;
    let mut ece = 0.0;
    let mut table = Vec::new();
    for b in 0..bins {
        let (lo, hi) = (b as f32 / bins as f32, (b + 1) as f32 / bins as f32);
        let members: Vec<usize> = (0..stated.len())
            .filter(|&i| stated[i] >= lo && (stated[i] < hi || b == bins - 1))
            .collect();
        if members.is_empty() {
            continue;
        }
        let confidence = members.iter().map(|&i| stated[i]).sum::<f32>() / members.len() as f32;
        let accuracy = members.iter().filter(|&&i| right[i]).count() as f32 / members.len() as f32;
        ece += (confidence - accuracy).abs() * members.len() as f32 / stated.len() as f32;
        table.push(format!(
            "{lo:.1}–{hi:.1}: {} crops, stated {confidence:.3}, right {accuracy:.3}",
            members.len()
        ));
    }
    let accuracy = right.iter().filter(|&&r| r).count() as f32 / right.len() as f32;
    let stranger_mean = stranger_top.iter().sum::<f32>() / stranger_top.len() as f32;
    eprintln!(
        "2 shots × 5 classes, 6 draws, {} held-out crops: right {accuracy:.3}, ECE {ece:.3}\n  {}\n\
         pictures of none of the classes: best taught class {stranger_mean:.3} on average",
        stated.len(),
        table.join("\n  ")
    );
    eprintln!(
        "  like a taught class: {resembling}/{} held-out crops, {strangers_resembling}/{} pictures of none",
        stated.len(),
        stranger_top.len()
    );
    assert!(ece <= 0.1, "expected calibration error {ece:.3}");
    assert_eq!(
        resembling,
        stated.len(),
        "held-out crops of a taught class look like it"
    );
    assert_eq!(
        strangers_resembling, 0,
        "pictures of none of the classes are said to be so"
    );
}
