//! Every supported container and pixel layout decodes to the same upright picture. The
//! fixtures are 48×32 crops of one photo written by `tests/reference/make_fixtures.py`.

use std::path::Path;

use glimpse::vision::preprocess::decode;
use image::RgbImage;

fn fixture(name: &str) -> RgbImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    decode(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Mean absolute difference per channel value, 0–255.
fn mean_difference(a: &RgbImage, b: &RgbImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y) as u64)
        .sum();
    total as f64 / a.as_raw().len() as f64
}

fn assert_looks_like_reference(name: &str, tolerance: f64) {
    let reference = fixture("reference.png");
    let image = fixture(name);
    assert_eq!(
        image.dimensions(),
        (48, 32),
        "{name} decodes upright at its size"
    );
    let diff = mean_difference(&image, &reference);
    assert!(
        diff <= tolerance,
        "{name}: mean difference {diff:.1} > {tolerance}"
    );
}

#[test]
fn baseline_and_progressive_jpeg() {
    assert_looks_like_reference("baseline.jpg", 6.0);
    assert_looks_like_reference("progressive.jpg", 6.0);
}

#[test]
fn cmyk_jpeg_is_converted_to_rgb() {
    assert_looks_like_reference("cmyk.jpg", 8.0);
}

#[test]
fn exif_orientation_is_applied() {
    assert_looks_like_reference("exif-orientation-8.jpg", 6.0);
}

#[test]
fn sixteen_bit_and_palette_png() {
    assert_looks_like_reference("rgb16.png", 0.0);
    assert_looks_like_reference("palette.png", 6.0);
}

#[test]
fn webp_and_bmp() {
    assert_looks_like_reference("lossy.webp", 6.0);
    assert_looks_like_reference("image.bmp", 0.0);
}

#[test]
fn the_first_frame_of_an_animated_gif() {
    assert_looks_like_reference("animated.gif", 8.0);
}
