//! The `image` crate's triangle-filter resize, computed only where a crop will look.
//!
//! Preprocessing resizes a whole picture and keeps a 224×224 crop of it: for a 640×480
//! camera frame that is 341×256 pixels resized to keep 224×224, from an RGB copy of the
//! RGBA frame, through per-pixel generic code. Here the two passes (columns, then rows, as
//! `image::imageops::resize` does them) run only over the output window that is kept, read
//! RGB or RGBA rows in place, and the column pass runs along whole rows so that it
//! vectorizes. Every output byte is the one `image` 0.25.10 computes: the same taps and
//! weights, the same f32 sums in the same order, the same rounding. The tests compare the two
//! on many sizes, because the parity goldens pin our crops' bytes.

use image::RgbImage;

/// A picture's pixels as the resampler reads them: `height` rows of `stride` bytes, a pixel
/// every `channels` bytes (3 or 4) with red, green and blue first.
#[derive(Debug, Clone, Copy)]
pub struct Pixels<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    channels: usize,
    stride: usize,
}

impl<'a> Pixels<'a> {
    pub fn rgb(image: &'a RgbImage) -> Self {
        let (width, height) = image.dimensions();
        Pixels {
            data: image.as_raw(),
            width,
            height,
            channels: 3,
            stride: width as usize * 3,
        }
    }

    /// A raw RGBA frame (a canvas's `ImageData`); `data` holds exactly `width × height` pixels.
    pub fn rgba(width: u32, height: u32, data: &'a [u8]) -> Self {
        assert_eq!(data.len(), width as usize * height as usize * 4);
        Pixels {
            data,
            width,
            height,
            channels: 4,
            stride: width as usize * 4,
        }
    }

    /// The rectangle `[x, y, width, height]` of these pixels, without a copy.
    pub fn part(self, [x, y, width, height]: [u32; 4]) -> Self {
        assert!(x + width <= self.width && y + height <= self.height && width > 0 && height > 0);
        let start = y as usize * self.stride + x as usize * self.channels;
        Pixels {
            data: &self.data[start..],
            width,
            height,
            ..self
        }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn row(&self, y: u32, x0: u32, x1: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.data[start + x0 as usize * self.channels..start + x1 as usize * self.channels]
    }
}

/// The input pixels one output pixel blends, along one axis: `first..first + weights.len()`.
struct Taps {
    first: u32,
    weights: Vec<f32>,
}

/// The taps of outputs `range` when `len` pixels are resized to `new_len`, as `image`'s
/// `vertical_sample` and `horizontal_sample` work them out (the triangle kernel, support 1,
/// widened by the ratio when shrinking, each output's weights normalized to sum to 1).
fn taps(len: u32, new_len: u32, range: std::ops::Range<u32>) -> Vec<Taps> {
    let ratio = len as f32 / new_len as f32;
    let sratio = if ratio < 1.0 { 1.0 } else { ratio };
    let support = sratio;
    range
        .map(|out| {
            let center = (out as f32 + 0.5) * ratio;
            let left = ((center - support).floor() as i64).clamp(0, len as i64 - 1);
            let right = ((center + support).ceil() as i64).clamp(left + 1, len as i64);
            let center = center - 0.5;
            let mut weights: Vec<f32> = (left..right)
                .map(|i| {
                    let x = ((i as f32 - center) / sratio).abs();
                    if x < 1.0 { 1.0 - x } else { 0.0 }
                })
                .collect();
            let sum = weights.iter().fold(0.0, |sum, w| sum + w);
            for w in &mut weights {
                *w /= sum;
            }
            Taps {
                first: left as u32,
                weights,
            }
        })
        .collect()
}

/// What `crop_imm(&resize(source, width, height, Triangle), x, y, w, h)` gives, for the
/// window `[x, y, w, h]` of the `(width, height)` resize, without resizing the rest.
pub fn resize_window(source: Pixels, (width, height): (u32, u32), window: [u32; 4]) -> RgbImage {
    let [wx, wy, ww, wh] = window;
    assert!(wx + ww <= width && wy + wh <= height && ww > 0 && wh > 0);
    let (sw, sh) = source.dimensions();
    if (sw, sh) == (width, height) {
        // `resize` copies a picture that already has the size.
        let ch = source.channels;
        let mut out = Vec::with_capacity(ww as usize * wh as usize * 3);
        for y in wy..wy + wh {
            for px in source.row(y, wx, wx + ww).chunks_exact(ch) {
                out.extend_from_slice(&px[..3]);
            }
        }
        return RgbImage::from_raw(ww, wh, out).expect("sized above");
    }
    let cols = taps(sw, width, wx..wx + ww);
    let rows = taps(sh, height, wy..wy + wh);
    // The source columns the window's output columns read.
    let x0 = cols.first().map_or(0, |t| t.first);
    let x1 = cols
        .iter()
        .map(|t| t.first + t.weights.len() as u32)
        .max()
        .unwrap_or(x0 + 1);
    let ch = source.channels;
    let span = (x1 - x0) as usize * ch;
    let mut column_pass = vec![0.0f32; span];
    let mut out = Vec::with_capacity(ww as usize * wh as usize * 3);
    for row in &rows {
        // Columns: each value of this output row blends its source rows in order, from 0.0.
        column_pass.fill(0.0);
        for (i, &w) in row.weights.iter().enumerate() {
            let src = source.row(row.first + i as u32, x0, x1);
            for (acc, &v) in column_pass.iter_mut().zip(src) {
                *acc += v as f32 * w;
            }
        }
        // Rows: each output pixel blends its columns in order, then is clamped and rounded.
        for col in &cols {
            let from = (col.first - x0) as usize * ch;
            let pixels = column_pass[from..from + col.weights.len() * ch].chunks_exact(ch);
            let mut t = [0.0f32; 3];
            for (px, &w) in pixels.zip(&col.weights) {
                for c in 0..3 {
                    t[c] += px[c] * w;
                }
            }
            out.extend(t.map(|v| v.clamp(0.0, 255.0).round() as u8));
        }
    }
    RgbImage::from_raw(ww, wh, out).expect("sized above")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::imageops::{FilterType, crop_imm, resize};

    /// A picture whose every pixel differs from its neighbours, so that a wrong tap shows.
    fn busy(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let v = x.wrapping_mul(7919) ^ y.wrapping_mul(104_729);
            image::Rgb([v as u8, (v >> 8) as u8 ^ x as u8, (x + 3 * y) as u8])
        })
    }

    fn reference(image: &RgbImage, size: (u32, u32), [x, y, w, h]: [u32; 4]) -> RgbImage {
        crop_imm(
            &resize(image, size.0, size.1, FilterType::Triangle),
            x,
            y,
            w,
            h,
        )
        .to_image()
    }

    #[test]
    fn every_byte_is_the_image_crates_on_shrinks_stretches_and_copies() {
        type Case = ((u32, u32), (u32, u32), [u32; 4]);
        let cases: &[Case] = &[
            ((640, 480), (341, 256), [58, 16, 224, 224]),
            ((480, 640), (256, 341), [16, 58, 224, 224]),
            ((500, 375), (341, 256), [58, 16, 224, 224]),
            ((224, 224), (256, 256), [16, 16, 224, 224]),
            ((256, 256), (256, 256), [16, 16, 224, 224]),
            ((256, 700), (256, 700), [16, 238, 224, 224]),
            ((300, 256), (300, 256), [38, 16, 224, 224]),
            ((2, 2), (256, 256), [16, 16, 224, 224]),
            ((3, 12), (256, 1024), [16, 400, 224, 224]),
            ((1999, 1001), (511, 256), [143, 16, 224, 224]),
            ((333, 777), (224, 224), [0, 0, 224, 224]),
            ((97, 61), (96, 64), [0, 0, 96, 64]),
            ((640, 480), (341, 256), [0, 0, 341, 256]),
            ((640, 480), (341, 256), [340, 255, 1, 1]),
        ];
        for &(source, size, window) in cases {
            let image = busy(source.0, source.1);
            let want = reference(&image, size, window);
            let got = resize_window(Pixels::rgb(&image), size, window);
            assert!(got == want, "{source:?} → {size:?}, window {window:?}");
        }
    }

    #[test]
    fn rgba_frames_and_sub_rectangles_read_as_their_rgb_copies() {
        let image = busy(403, 299);
        let rgba: Vec<u8> = image
            .pixels()
            .flat_map(|p| [p[0], p[1], p[2], 77])
            .collect();
        let frame = Pixels::rgba(403, 299, &rgba);
        let window = [10, 3, 150, 100];
        assert!(resize_window(frame, (230, 170), window) == reference(&image, (230, 170), window));
        let part = [100, 20, 250, 201];
        let cut = crop_imm(&image, part[0], part[1], part[2], part[3]).to_image();
        for source in [frame.part(part), Pixels::rgb(&image).part(part)] {
            assert!(
                resize_window(source, (160, 128), window) == reference(&cut, (160, 128), window)
            );
        }
    }
}
