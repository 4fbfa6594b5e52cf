//! Where the model looked: class activation maps against the PyTorch reference
//! (`tests/golden/cam.json`, written by `tests/reference/make_cam_goldens.py`), their exact
//! relation to the logits, and the whole-picture views on a two-subject composite.

mod common;

use burn::tensor::Device;
use common::golden::{self, golden_dir};
use common::models;
use glimpse::provision::WeightDType;
use glimpse::runtime::rows;
use glimpse::vision::cam::{classify_region, locate};
use glimpse::vision::preprocess::{decode, prepare};
use glimpse::{Classifier, top_k};
use image::RgbImage;
use serde::Deserialize;

/// Max |ours − reference| over a map, relative to the reference map's range.
const MAP_TOLERANCE: f32 = 1e-3;

#[derive(Deserialize)]
struct Goldens {
    inputs: Vec<GoldenInput>,
}

#[derive(Deserialize)]
struct GoldenInput {
    name: String,
    classes: Vec<GoldenMap>,
}

#[derive(Deserialize)]
struct GoldenMap {
    index: usize,
    map: Vec<f32>,
}

fn goldens() -> Goldens {
    serde_json::from_str(&std::fs::read_to_string(golden_dir().join("cam.json")).unwrap()).unwrap()
}

fn classifier() -> Classifier {
    let dir = models();
    Classifier::from_burnpack(dir.read_weights(WeightDType::F32).unwrap(), Device::flex()).unwrap()
}

/// The maps of `classes` for one prepared input, `[K][49]`.
fn maps(classifier: &Classifier, input: Vec<f32>, classes: &[usize]) -> Vec<Vec<f32>> {
    let maps = classifier.class_maps(classifier.batch(&[input]), classes);
    let [_, k, cells] = maps.dims();
    rows(maps.reshape([k, cells]).into_data()).unwrap()
}

#[test]
fn class_maps_match_the_reference_within_a_thousandth_of_their_range() {
    let classifier = classifier();
    let goldens = goldens();
    assert_eq!(goldens.inputs.len(), 22, "20 photos and 2 synthetic inputs");
    let mut worst = 0.0f32;
    for input in &goldens.inputs {
        let classes: Vec<usize> = input.classes.iter().map(|c| c.index).collect();
        let ours = maps(&classifier, golden::input(&input.name), &classes);
        for (ours, golden) in ours.iter().zip(&input.classes) {
            let (low, high) = golden
                .map
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let diff = ours
                .iter()
                .zip(&golden.map)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let relative = diff / (high - low);
            worst = worst.max(relative);
            assert!(
                relative <= MAP_TOLERANCE,
                "{} class {}: max |map − reference| = {diff} over a range of {}",
                input.name,
                golden.index,
                high - low
            );
        }
    }
    eprintln!("max |map − reference| / range over 22 inputs × top-5: {worst:.2e}");
}

#[test]
fn each_maps_mean_is_its_logit_minus_the_bias() {
    let classifier = classifier();
    let bias = rows(
        classifier
            .model()
            .fc
            .bias
            .as_ref()
            .unwrap()
            .val()
            .unsqueeze::<2>()
            .into_data(),
    )
    .unwrap()
    .remove(0);
    for name in ["imagenet_08_915", "imagenet_13_471", "synthetic_saddle"] {
        let input = golden::input(name);
        let logits = rows(
            classifier
                .logits(classifier.batch(std::slice::from_ref(&input)))
                .into_data(),
        )
        .unwrap()
        .remove(0);
        let classes: Vec<usize> = top_k(&logits, 5).iter().map(|p| p.index).collect();
        for (map, &c) in maps(&classifier, input, &classes).iter().zip(&classes) {
            let mean = map.iter().sum::<f32>() / map.len() as f32;
            assert!(
                (mean + bias[c] - logits[c]).abs() <= 1e-4 * logits[c].abs().max(1.0),
                "{name} class {c}: mean {mean} + bias {} ≠ logit {}",
                bias[c],
                logits[c]
            );
        }
    }
}

/// Two photos side by side, each scaled to the same height.
fn side_by_side(left: &RgbImage, right: &RgbImage) -> RgbImage {
    let height = 320;
    let scaled = |image: &RgbImage| {
        let width = image.width() * height / image.height();
        image::imageops::resize(image, width, height, image::imageops::FilterType::Triangle)
    };
    let (left, right) = (scaled(left), scaled(right));
    let mut out = RgbImage::new(left.width() + right.width(), height);
    image::imageops::replace(&mut out, &left, 0, 0);
    image::imageops::replace(&mut out, &right, left.width() as i64, 0);
    out
}

fn photo(name: &str) -> RgbImage {
    decode(&std::fs::read(models().photos_dir().join(format!("{name}.jpg"))).unwrap()).unwrap()
}

fn top1(classifier: &Classifier, image: &RgbImage) -> usize {
    let probs = classifier.classify(&[prepare(image)]).unwrap().remove(0);
    top_k(&probs, 1)[0].index
}

#[test]
fn in_a_composite_each_subjects_map_peaks_on_its_own_side() {
    let classifier = classifier();
    for (left, right) in [
        ("imagenet_08_915", "imagenet_00_243"),
        ("imagenet_00_243", "imagenet_08_915"),
    ] {
        let (left, right) = (photo(left), photo(right));
        let classes = [top1(&classifier, &left), top1(&classifier, &right)];
        let composite = side_by_side(&left, &right);
        let (tiling, found) = locate(&classifier, &composite, &classes).unwrap();
        assert!(tiling.views.len() >= 2, "a wide picture gets several views");
        let half = composite.width() / 2;
        let centre = |b: [u32; 4]| (b[0] + b[2]) / 2;
        let [l, r] = [&found[0], &found[1]];
        assert!(
            l.peak[0] < tiling.cols / 2 && centre(l.bbox) < half,
            "class {} should be on the left: {l:?}",
            classes[0]
        );
        assert!(
            r.peak[0] >= tiling.cols.div_ceil(2) && centre(r.bbox) > half,
            "class {} should be on the right: {r:?}",
            classes[1]
        );
    }
}

#[test]
fn a_crop_around_a_found_subject_confirms_its_class() {
    let classifier = classifier();
    let (yurt, dog) = (photo("imagenet_08_915"), photo("imagenet_00_243"));
    let classes = [top1(&classifier, &yurt), top1(&classifier, &dog)];
    let composite = side_by_side(&yurt, &dog);
    let (_, found) = locate(&classifier, &composite, &classes).unwrap();
    for (place, &class) in found.iter().zip(&classes) {
        let seen = classify_region(&classifier, &composite, place.bbox).unwrap();
        assert_eq!(
            seen.index, class,
            "the crop around {:?} reads as {} ({:.2})",
            place.bbox, seen.label, seen.prob
        );
    }
}

/// Needs a wgpu adapter (a GPU, or lavapipe, slowly):
/// `cargo test --release --test cam -- --ignored wgpu`.
#[test]
#[ignore = "needs a wgpu adapter"]
fn on_wgpu_the_maps_and_places_match_the_cpu() {
    let cpu = classifier();
    let gpu = Classifier::from_burnpack(
        models().read_weights(WeightDType::F32).unwrap(),
        Device::wgpu_options().init().expect("a wgpu adapter"),
    )
    .unwrap();
    let composite = side_by_side(&photo("imagenet_08_915"), &photo("imagenet_00_243"));
    let classes = [915, 243, 970];
    let (_, on_cpu) = locate(&cpu, &composite, &classes).unwrap();
    let (_, on_gpu) = locate(&gpu, &composite, &classes).unwrap();
    for (a, b) in on_cpu.iter().zip(&on_gpu) {
        let range = a.map.iter().fold(f32::MIN, |m, &v| m.max(v))
            - a.map.iter().fold(f32::MAX, |m, &v| m.min(v));
        let diff = a
            .map
            .iter()
            .zip(&b.map)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(diff <= 1e-3 * range, "class {}: {diff} of {range}", a.index);
        assert_eq!((a.peak, a.bbox, a.cell), (b.peak, b.bbox, b.cell));
    }
}
