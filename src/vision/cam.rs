//! Where the model looked: class activation maps (Zhou et al., 2016) over the whole picture.
//!
//! EfficientNet-Lite0 ends in global average pooling and one linear layer, so a class's logit
//! is the mean over the 7×7 cells of `Σ_k W[c, k] · F_k(y, x)` plus its bias: that sum, cell by
//! cell, is an exact map of where the evidence for the class lies (no gradients involved).
//!
//! Classification sees only the center crop (224 of the shorter side's 256), so a wide photo
//! loses its sides. Here the picture is covered instead: it is resized so that its shorter
//! side is 224 and its longer side a whole number of 32-pixel cells (the network's stride), and
//! square 224×224 views are taken along the longer side at whole-cell offsets, overlapping by at
//! least two cells. Every view's 7×7 cells then fall exactly on one grid over the picture; where
//! views overlap, their maps are averaged. A square picture is one view; 4:3 two; 2:1 three. The
//! views (`Tiling::views`) say which parts of the picture a result came from.

use burn::tensor::Tensor;
use image::RgbImage;
use serde::Serialize;

use super::classifier::Classifier;
use super::preprocess::{CROP, normalize, resized_dims};
use super::resample::{Pixels, resize_window};

/// Pixels of the network's input per cell of its feature map.
pub const CELL: u32 = 32;
/// Cells along each side of one view.
pub const VIEW_CELLS: u32 = CROP / CELL;
/// Beyond 4:1 the picture is squeezed along its longer side rather than given more views, so a
/// long strip costs at most six passes.
const MAX_LONG_CELLS: u32 = 4 * VIEW_CELLS;
/// Neighbouring views share at least this many cells, so no edge of a view falls between two
/// views without context on both sides.
const MIN_OVERLAP: u32 = 2;

/// One square view, by the grid cell at its top left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct View {
    pub col: u32,
    pub row: u32,
}

/// How a picture is covered: its size, the grid of cells over it and the views that tile it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tiling {
    /// The input picture, in pixels.
    pub image_width: u32,
    pub image_height: u32,
    /// The part of the picture the grid covers, `[x0, y0, x1, y1]` in its pixels: all of it,
    /// or for [`Tiling::center_crop`] the crop classification sees.
    pub area: [u32; 4],
    /// The grid, in cells (each `CELL` pixels of the resized picture).
    pub cols: u32,
    pub rows: u32,
    pub views: Vec<View>,
}

/// Where one class's evidence lies in a picture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Where {
    /// The ImageNet class.
    pub index: usize,
    /// The merged map, row-major, `width × height` cells (logit units, bias left out).
    pub map: Vec<f32>,
    pub width: u32,
    pub height: u32,
    /// The strongest cell, `[col, row]`.
    pub peak: [u32; 2],
    /// Around the cells connected to the peak (8-neighbourhood) whose value is at least half
    /// the peak's, in the input picture's pixels, `[x0, y0, x1, y1]` (x1, y1 exclusive).
    #[serde(rename = "box")]
    pub bbox: [u32; 4],
    /// The share of the picture's cells in that region, 0–1 (of the crop's, for a
    /// [`Tiling::center_crop`]).
    pub cover: f32,
    /// The part of the picture the map covers, `[x0, y0, x1, y1]` in its pixels (see
    /// [`Tiling::area`]).
    pub area: [u32; 4],
    /// Where the peak lies, by thirds of the picture: `"center"`, `"left"`, `"right"`,
    /// `"top"`, `"bottom"`, `"top left"`, `"top right"`, `"bottom left"` or `"bottom right"`.
    pub cell: &'static str,
}

impl Tiling {
    /// The grid and views for a `width × height` picture.
    pub fn new(width: u32, height: u32) -> Self {
        let (short, long) = (width.min(height).max(1) as u64, width.max(height) as u64);
        let long_cells = ((long * VIEW_CELLS as u64 * 2 + short) / (2 * short)) as u32;
        let long_cells = long_cells.clamp(VIEW_CELLS, MAX_LONG_CELLS);
        let slack = long_cells - VIEW_CELLS;
        let stride = VIEW_CELLS - MIN_OVERLAP;
        let count = if slack == 0 {
            1
        } else {
            slack.div_ceil(stride) + 1
        };
        let offsets = (0..count).map(|i| {
            let gaps = (count - 1).max(1);
            (i * slack + gaps / 2) / gaps
        });
        let wide = width >= height;
        let views = offsets
            .map(|offset| {
                if wide {
                    View {
                        col: offset,
                        row: 0,
                    }
                } else {
                    View {
                        col: 0,
                        row: offset,
                    }
                }
            })
            .collect();
        let (cols, rows) = if wide {
            (long_cells, VIEW_CELLS)
        } else {
            (VIEW_CELLS, long_cells)
        };
        Tiling {
            image_width: width,
            image_height: height,
            area: [0, 0, width, height],
            cols,
            rows,
            views,
        }
    }

    /// One view, the center crop that classification sees ([`super::preprocess::prepare`]):
    /// its maps come from the classification's own pass at no cost beyond one small product,
    /// which is what live video can afford. Its inputs are `prepare`'s, not [`Tiling::inputs`].
    pub fn center_crop(width: u32, height: u32) -> Self {
        let (resized_width, resized_height) = resized_dims(width.max(1), height.max(1));
        let edge = |resized: u32, size: u32| {
            let start = (resized - CROP) / 2;
            let at =
                |r: u32| ((r as u64 * size as u64 + resized as u64 / 2) / resized as u64) as u32;
            (at(start), at(start + CROP))
        };
        let (x0, x1) = edge(resized_width, width);
        let (y0, y1) = edge(resized_height, height);
        Tiling {
            image_width: width,
            image_height: height,
            area: [x0, y0, x1, y1],
            cols: VIEW_CELLS,
            rows: VIEW_CELLS,
            views: vec![View { col: 0, row: 0 }],
        }
    }

    /// The network's inputs, one `[3, 224, 224]` per view, in the order of `views`.
    pub fn inputs(&self, image: &RgbImage) -> Vec<Vec<f32>> {
        // The resized frame is computed only where the views lie.
        let (Some(col0), Some(row0)) = (
            self.views.iter().map(|v| v.col).min(),
            self.views.iter().map(|v| v.row).min(),
        ) else {
            return Vec::new();
        };
        let col1 = self.views.iter().map(|v| v.col).max().unwrap_or(col0);
        let row1 = self.views.iter().map(|v| v.row).max().unwrap_or(row0);
        let (x, y) = (col0 * CELL, row0 * CELL);
        let frame = resize_window(
            Pixels::rgb(image),
            (self.cols * CELL, self.rows * CELL),
            [
                x,
                y,
                (col1 - col0) * CELL + CROP,
                (row1 - row0) * CELL + CROP,
            ],
        );
        self.views
            .iter()
            .map(|v| {
                let crop = image::imageops::crop_imm(
                    &frame,
                    v.col * CELL - x,
                    v.row * CELL - y,
                    CROP,
                    CROP,
                );
                normalize(&crop.to_image())
            })
            .collect()
    }

    /// A view's part of the input picture, `[x0, y0, x1, y1]` in pixels.
    pub fn view_box(&self, view: View) -> [u32; 4] {
        self.cell_box(
            view.col,
            view.row,
            view.col + VIEW_CELLS - 1,
            view.row + VIEW_CELLS - 1,
        )
    }

    /// Cells `first..=last` (inclusive, by column and row) in the input picture's pixels.
    fn cell_box(&self, col0: u32, row0: u32, col1: u32, row1: u32) -> [u32; 4] {
        let [ax0, ay0, ax1, ay1] = self.area;
        let scale = |cell: u32, cells: u32, start: u32, end: u32| {
            let size = (end - start) as u64;
            start + ((cell as u64 * size + cells as u64 / 2) / cells as u64) as u32
        };
        [
            scale(col0, self.cols, ax0, ax1),
            scale(row0, self.rows, ay0, ay1),
            scale(col1 + 1, self.cols, ax0, ax1),
            scale(row1 + 1, self.rows, ay0, ay1),
        ]
    }

    /// One map per class over the whole grid, from the views' maps (`[views, classes, 49]`,
    /// row-major, as [`Classifier::class_maps`] gives them): overlapping cells are averaged.
    pub fn merge(&self, view_maps: &[f32], classes: usize) -> Vec<Vec<f32>> {
        let per_view = (VIEW_CELLS * VIEW_CELLS) as usize;
        assert_eq!(
            view_maps.len(),
            self.views.len() * classes * per_view,
            "one 7×7 map per view and class"
        );
        let (cols, rows) = (self.cols as usize, self.rows as usize);
        let mut counts = vec![0u32; cols * rows];
        for view in &self.views {
            for y in 0..VIEW_CELLS {
                for x in 0..VIEW_CELLS {
                    counts[((view.row + y) as usize) * cols + (view.col + x) as usize] += 1;
                }
            }
        }
        (0..classes)
            .map(|k| {
                let mut sum = vec![0.0f32; cols * rows];
                for (v, view) in self.views.iter().enumerate() {
                    let map = &view_maps[(v * classes + k) * per_view..][..per_view];
                    for y in 0..VIEW_CELLS {
                        for x in 0..VIEW_CELLS {
                            let cell = ((view.row + y) as usize) * cols + (view.col + x) as usize;
                            sum[cell] += map[(y * VIEW_CELLS + x) as usize];
                        }
                    }
                }
                sum.iter()
                    .zip(&counts)
                    .map(|(s, &n)| s / n as f32)
                    .collect()
            })
            .collect()
    }

    /// The summaries of `classes` from the views' maps read back from the device.
    pub fn locate(&self, view_maps: &[f32], classes: &[usize]) -> Vec<Where> {
        self.merge(view_maps, classes.len())
            .into_iter()
            .zip(classes)
            .map(|(map, &index)| self.summarize(index, map))
            .collect()
    }

    fn summarize(&self, index: usize, map: Vec<f32>) -> Where {
        let cols = self.cols as usize;
        let peak = (0..map.len())
            .max_by(|&a, &b| map[a].total_cmp(&map[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        let region = region_above_half(&map, cols, peak);
        let (mut col0, mut row0, mut col1, mut row1) = (u32::MAX, u32::MAX, 0, 0);
        for &cell in &region {
            let (col, row) = ((cell % cols) as u32, (cell / cols) as u32);
            (col0, row0) = (col0.min(col), row0.min(row));
            (col1, row1) = (col1.max(col), row1.max(row));
        }
        let (col, row) = ((peak % cols) as u32, (peak / cols) as u32);
        Where {
            index,
            width: self.cols,
            height: self.rows,
            peak: [col, row],
            bbox: self.cell_box(col0, row0, col1, row1),
            cover: region.len() as f32 / map.len() as f32,
            cell: {
                let [x0, y0, x1, y1] = self.cell_box(col, row, col, row);
                position_word(
                    (x0 + x1) as f32 / 2.0 / self.image_width.max(1) as f32,
                    (y0 + y1) as f32 / 2.0 / self.image_height.max(1) as f32,
                )
            },
            area: self.area,
            map,
        }
    }
}

/// The cells reachable from `peak` through neighbours (diagonals included) whose value is at
/// least half the peak's. A peak at or below zero (no positive evidence anywhere) is a region
/// of its own cell: half of it would take in everything.
fn region_above_half(map: &[f32], cols: usize, peak: usize) -> Vec<usize> {
    let threshold = map[peak] / 2.0;
    if map[peak] <= 0.0 {
        return vec![peak];
    }
    let rows = map.len() / cols;
    let mut seen = vec![false; map.len()];
    let (mut region, mut todo) = (Vec::new(), vec![peak]);
    seen[peak] = true;
    while let Some(cell) = todo.pop() {
        region.push(cell);
        let (col, row) = ((cell % cols) as isize, (cell / cols) as isize);
        for (dx, dy) in (-1..=1).flat_map(|dx| (-1..=1).map(move |dy| (dx, dy))) {
            let (x, y) = (col + dx, row + dy);
            if x < 0 || y < 0 || x >= cols as isize || y >= rows as isize {
                continue;
            }
            let next = y as usize * cols + x as usize;
            if !seen[next] && map[next] >= threshold {
                seen[next] = true;
                todo.push(next);
            }
        }
    }
    region
}

/// A point's place in the picture (`x`, `y` in 0–1), by thirds.
fn position_word(x: f32, y: f32) -> &'static str {
    let third = |t: f32| (t * 3.0).floor().clamp(0.0, 2.0) as usize;
    const WORDS: [[&str; 3]; 3] = [
        ["top left", "top", "top right"],
        ["left", "center", "right"],
        ["bottom left", "bottom", "bottom right"],
    ];
    WORDS[third(y)][third(x)]
}

/// Everything `where` needs from the device, in one tensor: the views' maps for `classes`,
/// `[views, classes, 49]`. Read it once (`into_data`, or `into_data_async` in the browser) and
/// pass the values to [`Tiling::locate`].
pub fn view_maps(
    classifier: &Classifier,
    image: &RgbImage,
    classes: &[usize],
) -> (Tiling, Tensor<3>) {
    let (width, height) = image.dimensions();
    let tiling = Tiling::new(width, height);
    let maps = classifier.class_maps(classifier.batch(&tiling.inputs(image)), classes);
    (tiling, maps)
}

/// Where each of `classes` lies in `image`, and the tiling it was found with. Blocks until the
/// device is done; in the browser use [`view_maps`] with `into_data_async`.
#[cfg(not(target_arch = "wasm32"))]
pub fn locate(
    classifier: &Classifier,
    image: &RgbImage,
    classes: &[usize],
) -> crate::Result<(Tiling, Vec<Where>)> {
    if classes.is_empty() {
        let (width, height) = image.dimensions();
        return Ok((Tiling::new(width, height), Vec::new()));
    }
    let (tiling, maps) = view_maps(classifier, image, classes);
    let values = crate::runtime::rows(maps.into_data())?.concat();
    let found = tiling.locate(&values, classes);
    Ok((tiling, found))
}

/// A second look at one region (`bbox` in the picture's pixels, padded towards a square by
/// [`super::preprocess::region_around`], seen whole): its most probable class. What confirms that a class
/// found apart from the main subject is a second object and not a rival name for the first.
#[cfg(not(target_arch = "wasm32"))]
pub fn classify_region(
    classifier: &Classifier,
    image: &RgbImage,
    bbox: [u32; 4],
) -> crate::Result<super::Prediction> {
    let input = super::preprocess::prepare_whole(&super::preprocess::region_around(image, bbox));
    let probs = classifier.classify(&[input])?.remove(0);
    Ok(super::top_k(&probs, 1).remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_square_picture_is_one_view() {
        let tiling = Tiling::new(500, 500);
        assert_eq!((tiling.cols, tiling.rows), (7, 7));
        assert_eq!(tiling.views, [View { col: 0, row: 0 }]);
        assert_eq!(tiling.view_box(tiling.views[0]), [0, 0, 500, 500]);
    }

    #[test]
    fn views_cover_the_long_side_at_whole_cells_with_overlap() {
        let wide = Tiling::new(640, 480);
        assert_eq!((wide.cols, wide.rows), (9, 7));
        let cols: Vec<u32> = wide.views.iter().map(|v| v.col).collect();
        assert_eq!(cols, [0, 2]);

        let twice = Tiling::new(1000, 500);
        assert_eq!(twice.cols, 14);
        let cols: Vec<u32> = twice.views.iter().map(|v| v.col).collect();
        assert_eq!(cols, [0, 4, 7]);

        let tall = Tiling::new(300, 1200);
        assert_eq!((tall.cols, tall.rows), (7, 28));
        let last = *tall.views.last().unwrap();
        assert_eq!(
            last.row + VIEW_CELLS,
            28,
            "the last view reaches the bottom"
        );
        for pair in tall.views.windows(2) {
            assert!(pair[1].row - pair[0].row <= VIEW_CELLS - MIN_OVERLAP);
        }
    }

    #[test]
    fn overlapping_cells_are_averaged() {
        let tiling = Tiling::new(640, 480);
        let mut maps = vec![1.0; 49];
        maps.extend(vec![3.0; 49]);
        let merged = tiling.merge(&maps, 1).remove(0);
        assert_eq!(merged[0], 1.0, "left edge: the first view only");
        assert_eq!(merged[4], 2.0, "middle: both views");
        assert_eq!(merged[8], 3.0, "right edge: the second view only");
    }

    #[test]
    fn the_box_surrounds_the_region_above_half_the_peak_in_picture_pixels() {
        let tiling = Tiling::new(700, 700);
        let mut map = vec![0.0; 49];
        map[7 + 5] = 10.0; // row 1, col 5
        map[7 + 6] = 6.0;
        map[2 * 7 + 5] = 5.0;
        map[6 * 7] = 4.0; // far away and below half: not in the region
        let found = tiling.locate(&map, &[7]).remove(0);
        assert_eq!(found.peak, [5, 1]);
        assert_eq!(found.bbox, [500, 100, 700, 300]);
        assert!((found.cover - 3.0 / 49.0).abs() < 1e-6);
        assert_eq!(found.cell, "top right");
    }

    #[test]
    fn the_center_crop_covers_what_classification_sees() {
        // 640×480 → 341×256, whose middle 224×224 starts at (58, 16).
        let crop = Tiling::center_crop(640, 480);
        assert_eq!((crop.cols, crop.rows, crop.views.len()), (7, 7, 1));
        assert_eq!(crop.area, [109, 30, 529, 450]);
        let mut map = vec![0.0; 49];
        map[0] = 1.0;
        let found = crop.locate(&map, &[3]).remove(0);
        assert_eq!(found.bbox, [109, 30, 169, 90]);
        assert_eq!(found.cell, "top left");
        assert_eq!(Tiling::new(640, 480).area, [0, 0, 640, 480]);
    }

    #[test]
    fn position_words_split_the_picture_in_thirds() {
        assert_eq!(position_word(0.5, 0.5), "center");
        assert_eq!(position_word(0.1, 0.5), "left");
        assert_eq!(position_word(0.9, 0.95), "bottom right");
        assert_eq!(position_word(0.5, 0.0), "top");
    }
}
