//! A class activation map drawn over its picture: the map upsampled smoothly (bilinear between
//! cell centers) to the picture's size, coloured from cool to hot, and blended in with an
//! opacity that grows with the evidence, so the photo stays visible where the class is not.

use image::RgbImage;

use super::cam::Where;

/// Opacity of the colour where the map reaches its peak.
const MAX_ALPHA: f32 = 0.65;

/// Colour stops from no evidence (0) to the peak (1): indigo, blue, green, yellow, red.
const STOPS: [[f32; 3]; 5] = [
    [40.0, 20.0, 90.0],
    [30.0, 110.0, 230.0],
    [40.0, 190.0, 120.0],
    [250.0, 210.0, 40.0],
    [220.0, 35.0, 25.0],
];

/// `image` with `found`'s map over it. Values are taken relative to the map's peak; cells with
/// no positive evidence leave the photo as it is.
pub fn overlay(image: &RgbImage, found: &Where) -> RgbImage {
    let (width, height) = image.dimensions();
    let (cols, rows) = (found.width as usize, found.height as usize);
    let peak = found.map.iter().copied().fold(f32::MIN, f32::max);
    let scale = if peak > 0.0 { 1.0 / peak } else { 0.0 };
    // Positions in cell units, with cell centers at whole numbers.
    let axis = |size: u32, cells: usize| -> Vec<(usize, usize, f32)> {
        (0..size)
            .map(|p| {
                let t = ((p as f32 + 0.5) * cells as f32 / size as f32 - 0.5)
                    .clamp(0.0, (cells - 1) as f32);
                let low = t.floor() as usize;
                (low, (low + 1).min(cells - 1), t - low as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(width, cols), axis(height, rows));
    let mut out = image.clone();
    for (y, &(y0, y1, fy)) in ys.iter().enumerate() {
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            let at = |row: usize, col: usize| found.map[row * cols + col];
            let top = at(y0, x0) * (1.0 - fx) + at(y0, x1) * fx;
            let bottom = at(y1, x0) * (1.0 - fx) + at(y1, x1) * fx;
            let t = ((top * (1.0 - fy) + bottom * fy) * scale).clamp(0.0, 1.0);
            let colour = colour(t);
            let alpha = MAX_ALPHA * t.sqrt();
            let pixel = out.get_pixel_mut(x as u32, y as u32);
            for c in 0..3 {
                let blended = pixel[c] as f32 * (1.0 - alpha) + colour[c] * alpha;
                pixel[c] = blended.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

fn colour(t: f32) -> [f32; 3] {
    let at = t * (STOPS.len() - 1) as f32;
    let low = (at.floor() as usize).min(STOPS.len() - 2);
    let f = at - low as f32;
    let (a, b) = (STOPS[low], STOPS[low + 1]);
    [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::cam::Tiling;

    #[test]
    fn the_overlay_is_hot_at_the_peak_and_leaves_cold_cells_alone() {
        let mut map = vec![-1.0; 49];
        map[3 * 7 + 3] = 8.0;
        let found = Tiling::new(70, 70).locate(&map, &[0]).remove(0);
        let photo = RgbImage::from_pixel(70, 70, image::Rgb([128, 128, 128]));
        let drawn = overlay(&photo, &found);
        assert_eq!(drawn.dimensions(), (70, 70));
        let center = drawn.get_pixel(35, 35).0;
        assert!(
            center[0] > 170 && center[2] < 100,
            "red at the peak: {center:?}"
        );
        assert_eq!(drawn.get_pixel(0, 0).0, [128, 128, 128]);
    }
}
