//! From encoded files or raw camera frames to the network's input, identically on every
//! platform: decode, apply EXIF orientation, resize the shorter side to 256 with an
//! antialiased triangle filter, center-crop 224×224, normalize `(x − 127) / 128`.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::resample::{Pixels, resize_window};
use crate::error::GlimpseError;

/// Side of the square the network sees.
pub const CROP: u32 = 224;
/// The shorter side is resized to this before the center crop.
pub const RESIZE_SHORTER: u32 = 256;
/// Larger images are refused before any pixel memory is allocated.
pub const MAX_PIXELS: u64 = 100_000_000;
/// Larger image files are refused before they are read (from disk) or parsed.
pub const MAX_IMAGE_BYTES: u64 = 50_000_000;

const MEAN: f32 = 127.0;
const SCALE: f32 = 128.0;

/// Decodes JPEG, PNG, WebP, GIF (first frame) or BMP bytes into upright RGB.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, GlimpseError> {
    decode_limited(bytes, MAX_PIXELS)
}

/// [`decode`] with a lower pixel limit (the fuzz targets' own, so that a decode fits
/// libFuzzer's time limit). Limits above [`MAX_PIXELS`] are not honoured.
#[doc(hidden)]
pub fn decode_limited(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, GlimpseError> {
    let max_pixels = max_pixels.min(MAX_PIXELS);
    if bytes.is_empty() {
        return Err(GlimpseError::UnsupportedImage("the file is empty".into()));
    }
    check_file_size(bytes.len() as u64)?;
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| GlimpseError::UnsupportedImage(e.to_string()))
    };
    if reader()?.format().is_none() {
        return Err(GlimpseError::UnsupportedImage(
            "not a JPEG, PNG, WebP, GIF or BMP image".into(),
        ));
    }
    // The header alone says how big the image is: refuse before decoding a single pixel.
    let format = reader()?.format();
    let (width, height) = reader()?.into_dimensions().map_err(unsupported)?;
    check_size(width, height, max_pixels)?;
    // The JPEG decoder fills missing scan data with grey instead of failing.
    if format == Some(ImageFormat::Jpeg) && !jpeg_has_end_of_image(bytes) {
        return Err(GlimpseError::UnsupportedImage(
            "the image file is truncated".into(),
        ));
    }

    let mut reader = reader()?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels * 8);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(unsupported)?;
    let orientation = decoder.orientation().map_err(unsupported)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(unsupported)?;
    image.apply_orientation(orientation);
    Ok(image.into_rgb8())
}

/// Refuses an image file over [`MAX_IMAGE_BYTES`] by its size alone.
pub fn check_file_size(bytes: u64) -> Result<(), GlimpseError> {
    if bytes > MAX_IMAGE_BYTES {
        return Err(GlimpseError::UnsupportedImage(format!(
            "the image file is too large ({:.1} MB; the limit is {} MB)",
            bytes as f64 / 1e6,
            MAX_IMAGE_BYTES / 1_000_000
        )));
    }
    Ok(())
}

/// An image file's bytes, refused by its size before it is read.
pub fn read_image_file(path: &std::path::Path) -> Result<Vec<u8>, GlimpseError> {
    let size = std::fs::metadata(path)
        .map_err(GlimpseError::io("cannot read the file"))?
        .len();
    check_file_size(size)?;
    std::fs::read(path).map_err(GlimpseError::io("cannot read the file"))
}

/// Whether a JPEG's scan data is followed by an end-of-image marker. Walks the header
/// segments (an EXIF thumbnail inside them is a complete JPEG of its own) to the first
/// start-of-scan, then looks for `FF D9`; inside scan data `FF` is always escaped, so the
/// marker cannot appear by accident.
fn jpeg_has_end_of_image(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return false;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1; // fill byte
            continue;
        }
        let length = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if marker == 0xDA {
            let scan = &bytes[(at + 2 + length).min(bytes.len())..];
            return scan.windows(2).any(|w| w == [0xFF, 0xD9]);
        }
        at += 2 + length;
    }
    false
}

/// Wraps a raw RGBA frame (a canvas's `ImageData`, a video frame) without re-encoding it.
pub fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<RgbImage, GlimpseError> {
    check_rgba(width, height, rgba)?;
    let mut rgb = vec![0; width as usize * height as usize * 3];
    for (to, from) in rgb.chunks_exact_mut(3).zip(rgba.chunks_exact(4)) {
        to.copy_from_slice(&from[..3]);
    }
    Ok(RgbImage::from_raw(width, height, rgb).expect("length checked above"))
}

/// Refuses a raw RGBA frame whose size is out of bounds or whose bytes do not match it.
pub fn check_rgba(width: u32, height: u32, rgba: &[u8]) -> Result<(), GlimpseError> {
    check_size(width, height, MAX_PIXELS)?;
    let expected = width as u64 * height as u64 * 4;
    if rgba.len() as u64 != expected {
        return Err(GlimpseError::UnsupportedImage(format!(
            "an RGBA frame of {width}×{height} needs {expected} bytes, got {}",
            rgba.len()
        )));
    }
    Ok(())
}

fn check_size(width: u32, height: u32, max_pixels: u64) -> Result<(), GlimpseError> {
    if width == 0 || height == 0 {
        return Err(GlimpseError::UnsupportedImage(format!(
            "the image is empty ({width}×{height} pixels)"
        )));
    }
    if width < 2 || height < 2 {
        return Err(GlimpseError::UnsupportedImage(format!(
            "the image is too small to classify ({width}×{height} pixels)"
        )));
    }
    if width as u64 * height as u64 > max_pixels {
        return Err(GlimpseError::UnsupportedImage(format!(
            "the image is too large ({width}×{height} pixels; the limit is {} megapixels)",
            max_pixels as f64 / 1e6
        )));
    }
    Ok(())
}

fn unsupported(e: image::ImageError) -> GlimpseError {
    let message = match e {
        image::ImageError::Limits(_) => "the image needs more memory than allowed".to_string(),
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the image file is truncated".to_string()
        }
        other => format!("the image could not be decoded: {other}"),
    };
    GlimpseError::UnsupportedImage(message)
}

/// The size an image is resized to so that its shorter side becomes [`RESIZE_SHORTER`],
/// keeping the aspect ratio (rounded to the nearest pixel).
pub fn resized_dims(width: u32, height: u32) -> (u32, u32) {
    let scale = |long: u32, short: u32| {
        let (long, short) = (long as u64, short as u64);
        ((long * RESIZE_SHORTER as u64 + short / 2) / short) as u32
    };
    if width <= height {
        (RESIZE_SHORTER, scale(height, width))
    } else {
        (scale(width, height), RESIZE_SHORTER)
    }
}

/// Beyond this aspect ratio the source is trimmed around its center before resizing, so a
/// 2×50 000 strip does not become a 256×6 400 000 intermediate image. The trimmed part lies
/// far outside the center crop; ordinary photos never reach this path.
const MAX_ASPECT: u32 = 4;

/// Where [`resize_and_crop`] takes its pixels from, worked out from the size alone (so the
/// fuzz targets check it for every size without paying for the resize).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPlan {
    /// The part of the source kept, `[x, y, width, height]`: all of it unless the aspect
    /// ratio exceeds [`MAX_ASPECT`].
    pub trim: [u32; 4],
    /// That part resized so its shorter side is [`RESIZE_SHORTER`].
    pub resized: (u32, u32),
    /// The top-left corner of the [`CROP`]-square center crop in the resized picture.
    pub crop: (u32, u32),
}

impl CropPlan {
    pub fn new(width: u32, height: u32) -> Self {
        let short = width.min(height);
        let (tw, th) = (
            width.min(short * MAX_ASPECT),
            height.min(short * MAX_ASPECT),
        );
        let (w, h) = resized_dims(tw, th);
        CropPlan {
            trim: [(width - tw) / 2, (height - th) / 2, tw, th],
            resized: (w, h),
            crop: ((w - CROP) / 2, (h - CROP) / 2),
        }
    }
}

/// Resize (shorter side → 256) and center-crop to 224×224: the pixels `image`'s triangle
/// resize gives there, computed for the crop alone ([`resample`]).
pub fn resize_and_crop(image: &RgbImage) -> RgbImage {
    crop_of(Pixels::rgb(image))
}

/// [`resize_and_crop`] of a raw RGBA frame (a canvas's `ImageData`, `width × height × 4`
/// bytes), read in place: the same crop as of its [`from_rgba`] copy.
pub fn resize_and_crop_rgba(
    width: u32,
    height: u32,
    rgba: &[u8],
) -> Result<RgbImage, GlimpseError> {
    check_rgba(width, height, rgba)?;
    Ok(crop_of(Pixels::rgba(width, height, rgba)))
}

fn crop_of(source: Pixels) -> RgbImage {
    let (width, height) = source.dimensions();
    let plan = CropPlan::new(width, height);
    let (left, top) = plan.crop;
    resize_window(
        source.part(plan.trim),
        plan.resized,
        [left, top, CROP, CROP],
    )
}

/// A 224×224 RGB crop as the network's planar input, `[3, 224, 224]` flattened.
pub fn normalize(crop: &RgbImage) -> Vec<f32> {
    assert_eq!(
        crop.dimensions(),
        (CROP, CROP),
        "normalize expects a center crop"
    );
    let plane = (CROP * CROP) as usize;
    let mut chw = vec![0.0; 3 * plane];
    for (i, px) in crop.pixels().enumerate() {
        for c in 0..3 {
            chw[c * plane + i] = (px[c] as f32 - MEAN) / SCALE;
        }
    }
    chw
}

/// Everything from an upright RGB image to the network's input.
pub fn prepare(image: &RgbImage) -> Vec<f32> {
    normalize(&resize_and_crop(image))
}

/// The network's input for a picture seen whole: squeezed to 224×224 without the center crop,
/// as a view of [`super::cam::Tiling`] is. For a region cut out around an object (nearly square,
/// see [`region_around`]), where cropping again would cut into the object's margin.
pub fn prepare_whole(image: &RgbImage) -> Vec<f32> {
    normalize(&resize_window(
        Pixels::rgb(image),
        (CROP, CROP),
        [0, 0, CROP, CROP],
    ))
}

/// The part of `image` around `bbox` (`[x0, y0, x1, y1]`, pixels): the box grown by a quarter
/// of its size on each side, then its shorter side grown towards the longer one, as far as the
/// picture allows. The network was trained on objects framed with some context in a roughly
/// square picture, so a tight or thin crop would be read worse than this one.
pub fn region_around(image: &RgbImage, bbox: [u32; 4]) -> RgbImage {
    let (width, height) = image.dimensions();
    let [x0, y0, x1, y1] = bbox;
    let (x0, x1) = (x0.min(width - 1), x1.clamp(x0.min(width - 1) + 1, width));
    let (y0, y1) = (y0.min(height - 1), y1.clamp(y0.min(height - 1) + 1, height));
    let (bw, bh) = (x1 - x0, y1 - y0);
    let side = bw.max(bh) + bw.max(bh) / 2;
    let grow = |start: u32, len: u32, want: u32, limit: u32| {
        let want = want.max(len).min(limit);
        let center = start as i64 + len as i64 / 2;
        let begin = (center - want as i64 / 2).clamp(0, (limit - want) as i64) as u32;
        (begin, want)
    };
    let (left, w) = grow(x0, bw, side, width);
    let (top, h) = grow(y0, bh, side, height);
    image::imageops::crop_imm(image, left, top, w, h).to_image()
}

/// The views an example for a taught class contributes: the plain crop, its mirror image and
/// a closer crop (the middle 80%), so that a few shots cover small shifts in pose and framing.
pub fn augmented_views(image: &RgbImage) -> Vec<Vec<f32>> {
    let plain = resize_and_crop(image);
    let mirrored = image::imageops::flip_horizontal(&plain);
    let (w, h) = image.dimensions();
    let (zw, zh) = ((w * 4 / 5).max(1), (h * 4 / 5).max(1));
    let zoomed = image::imageops::crop_imm(image, (w - zw) / 2, (h - zh) / 2, zw, zh).to_image();
    vec![
        normalize(&plain),
        normalize(&mirrored),
        normalize(&resize_and_crop(&zoomed)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_becomes_256_and_aspect_is_kept() {
        assert_eq!(resized_dims(500, 375), (341, 256));
        assert_eq!(resized_dims(375, 500), (256, 341));
        assert_eq!(resized_dims(256, 256), (256, 256));
        assert_eq!(resized_dims(2, 1000), (256, 128_000));
    }

    #[test]
    fn normalization_maps_127_to_zero() {
        let crop = RgbImage::from_pixel(CROP, CROP, image::Rgb([127, 255, 0]));
        let x = normalize(&crop);
        let plane = (CROP * CROP) as usize;
        assert_eq!(x[0], 0.0);
        assert_eq!(x[plane], 1.0);
        assert_eq!(x[2 * plane], -127.0 / 128.0);
    }

    #[test]
    fn extreme_aspect_ratios_still_give_a_center_crop() {
        let strip = RgbImage::from_pixel(3, 5000, image::Rgb([9, 9, 9]));
        let crop = resize_and_crop(&strip);
        assert_eq!(crop.dimensions(), (CROP, CROP));
        assert_eq!(crop.get_pixel(100, 100).0, [9, 9, 9]);
    }

    #[test]
    fn the_crop_plan_is_what_resizing_and_cropping_does() {
        for (w, h) in [
            (2, 2),
            (3, 5000),
            (5000, 3),
            (7, 5),
            (224, 224),
            (223, 900),
            (257, 256),
            (2, 9),
            (9, 2),
        ] {
            let plan = CropPlan::new(w, h);
            let [x, y, tw, th] = plan.trim;
            assert!(x + tw <= w && y + th <= h && tw.max(th) <= tw.min(th) * MAX_ASPECT);
            let (rw, rh) = plan.resized;
            assert!(
                plan.crop.0 + CROP <= rw && plan.crop.1 + CROP <= rh,
                "{w}×{h}: {plan:?}"
            );
            let image = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
            assert_eq!(resize_and_crop(&image).dimensions(), (CROP, CROP));
        }
    }

    #[test]
    fn rgba_frames_of_the_wrong_length_are_refused() {
        let err = from_rgba(4, 4, &[0; 10]).unwrap_err();
        assert!(err.to_string().contains("needs 64 bytes"), "{err}");
    }

    #[test]
    fn a_region_is_padded_towards_a_square_inside_the_picture() {
        let image = RgbImage::new(400, 200);
        let region = region_around(&image, [10, 50, 110, 100]);
        assert_eq!(region.dimensions(), (150, 150));
        let edge = region_around(&image, [350, 0, 400, 200]);
        assert_eq!(
            edge.dimensions(),
            (300, 200),
            "grown wider, no taller than the picture"
        );
    }

    #[test]
    fn rgba_frames_drop_alpha() {
        let rgb = from_rgba(2, 2, &[1, 2, 3, 255].repeat(4)).unwrap();
        assert_eq!(rgb.get_pixel(1, 1).0, [1, 2, 3]);
    }
}
