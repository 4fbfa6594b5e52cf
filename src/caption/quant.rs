//! Weight matrices kept in their GGUF block encoding, dequantized inside the matrix product.
//!
//! [`BlockMatrix`] holds a `[rows, cols]` matrix exactly as the file stores it (rows of whole
//! blocks: Q4_0 at 4.5 bits per weight, Q4_1 at 5, Q8_0 at 8.5, F16/BF16 at 16, F32 at 32) in
//! host memory, which on the CPU backend is the device memory. Products with it decode one row
//! (at most a few kB) at a time:
//!
//! - few activation rows (decoding): Q4_0, Q4_1 and Q8_0 rows, regrouped at load four rows
//!   to a group with f32 scales, are dotted block by block with the activation rows quantized
//!   to 16 bits, in integer arithmetic ([`super::intdot`]); other types decode each weight row
//!   into a small buffer dotted with every activation row;
//! - many activation rows (a prompt, natively): a tile of rows is decoded and multiplied with
//!   the backend's own matrix product, so the prompt still runs on its tuned GEMM while never
//!   more than one tile of f32 weights exists. In wasm the integer dots serve a whole prompt
//!   better ([`GEMM_FROM_ROWS`]).
//!
//! [`QuantizedMatrix`] is the GPU form: a burn quantized tensor (symmetric 4- or 8-bit values
//! packed eight or four to a u32, one f32 scale per block of 32 along each row), which burn's
//! cubecl matrix product reads and dequantizes inside its kernel. Q4_1's `d·q + m` is rewritten
//! as `d·(q − 8) + (m + 8d)`: the symmetric product plus `blocksums(x) · Oᵀ`, with `O` the
//! `[rows, cols / 32]` f32 offsets. Only a single activation row (a decoded token) goes
//! through that fused product: with more rows, burn-cubecl 0.22.1 (cubek-matmul 0.3.1) picks a
//! kernel for block-quantized inputs that needs more shared memory than a real GPU allows
//! (72 KiB against the 48 KiB of an H200 under Vulkan, at every prompt shape of SmolLM2, even
//! 37 × 64) and burn unwraps the launch error into a panic. A prompt's product therefore
//! expands the matrix to f32 first, on the GPU, one matrix at a time (`tests/gpu_products.rs`
//! checks both forms on a real adapter).

use burn::tensor::quantization::{QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::blocks::{dequantize_into, half_to_f32};
use super::gguf::{GgmlType, GgufError};
use super::intdot::{BLOCK, GROUP, RowGroups, SharedRows};
use crate::runtime::{awake, for_each_chunk};

/// Activation rows from which a product switches from row dots to tiles on the backend's GEMM:
/// decoding every tile costs about as much as a hundred milliseconds of row dots, so the few
/// dozen tokens of a caption's facts after its reused prompt beginning stay on the row dots
/// (natively 19 tokens took 125–128 ms there against 230–272 ms on tiles, 2026-12-07). A
/// whole prompt is faster on the tiles natively, where the GEMM multiplies with fused f32
/// multiply-adds twice as wide as wasm's.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const GEMM_FROM_ROWS: usize = 32;
/// In wasm a whole prompt is faster on the row dots than on the tiles: each weight group's
/// blocks stay in cache while every row is dotted with them, and an `i32x4.dot_i16x8` does
/// eight multiply-adds where SIMD128's f32 GEMM does four per multiply and add (the bull
/// mastiff's first caption, 175 prompt tokens: first token after 1.29–1.36 s against 1.63–1.69
/// s on one thread, 1.07–1.15 s against 1.39–1.41 s on two, 2026-12-07; same captions).
#[cfg(target_arch = "wasm32")]
pub(crate) const GEMM_FROM_ROWS: usize = usize::MAX;
/// f32 values decoded per tile on the GEMM path (4 MiB).
const TILE_VALUES: usize = 1 << 20;
/// Weight rows per parallel task when decoding rows for the GEMM path.
const ROWS_PER_TASK: usize = 16;
/// Weight rows per parallel piece on the dot path (whole groups): about 28 kB of regrouped
/// Q4_1 at the model's width, 9 pieces for a 576-row product.
const DOT_ROWS_PER_TASK: usize = 64;
const _: () = assert!(DOT_ROWS_PER_TASK.is_multiple_of(GROUP));

/// Weight rows per parallel piece of a decoded token's product (one activation row): as few
/// pieces as there are threads, since its kernels read groups from across their piece at once
/// (`intdot`'s `each_group_in_streams`), and the farther apart those streams, the better the
/// hardware prefetcher keeps up: a 1536×576 product in Chromium 122 µs in pieces of 64 rows, 69
/// µs in one; natively 4 streams in pieces of 64 rows gained nothing.
fn decoded_rows_per_task(rows: usize) -> usize {
    rows.div_ceil(crate::runtime::cpu_threads())
        .next_multiple_of(GROUP)
}

/// The least multiply-adds a dot-path product is split over threads for: below it (a few
/// microseconds of work) handing out pieces costs more than it saves.
const PARALLEL_MIN_PRODUCTS: usize = 1 << 16;

/// A `[rows, cols]` matrix stored as GGUF blocks: regrouped for the integer products where
/// there are some for the type, else row after row as the file has them.
#[derive(Clone)]
pub struct BlockMatrix {
    ggml_type: GgmlType,
    rows: usize,
    cols: usize,
    blocks: Blocks,
}

#[derive(Clone)]
enum Blocks {
    Groups(RowGroups),
    Rows { row_bytes: usize, data: Vec<u8> },
}

impl std::fmt::Debug for BlockMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "BlockMatrix({:?}, [{}, {}])",
            self.ggml_type, self.rows, self.cols
        )
    }
}

impl BlockMatrix {
    /// Takes a copy of the tensor's raw data. Refuses a type whose blocks cannot be decoded, so
    /// the products below never fail.
    pub fn new(
        ggml_type: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
    ) -> Result<Self, GgufError> {
        let (per_block, block_bytes) = ggml_type.block();
        let (per_block, block_bytes) = (per_block as usize, block_bytes as usize);
        if !cols.is_multiple_of(per_block) || data.len() != rows * cols / per_block * block_bytes {
            return Err(GgufError(format!(
                "{} bytes of {ggml_type:?} do not hold a [{rows}, {cols}] matrix",
                data.len()
            )));
        }
        let row_bytes = cols / per_block * block_bytes;
        if rows > 0 {
            dequantize_into(ggml_type, &data[..row_bytes], &mut vec![0.0; cols])?;
        }
        let blocks = match RowGroups::new(ggml_type, rows, cols, data) {
            Some(groups) => Blocks::Groups(groups),
            None => Blocks::Rows {
                row_bytes,
                data: data.to_vec(),
            },
        };
        Ok(Self {
            ggml_type,
            rows,
            cols,
            blocks,
        })
    }

    pub fn dims(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    pub fn ggml_type(&self) -> GgmlType {
        self.ggml_type
    }

    /// Bytes held, scales included.
    pub fn bytes(&self) -> usize {
        match &self.blocks {
            Blocks::Groups(groups) => groups.bytes(),
            Blocks::Rows { data, .. } => data.len(),
        }
    }

    fn row_into(&self, row: usize, out: &mut [f32]) {
        match &self.blocks {
            Blocks::Groups(groups) => groups.row_into(row, out),
            Blocks::Rows { row_bytes, data } => {
                let bytes = &data[row * row_bytes..(row + 1) * row_bytes];
                dequantize_into(self.ggml_type, bytes, out).expect("the type was checked in `new`");
            }
        }
    }

    /// The given rows, decoded: `[ids.len(), cols]` row-major.
    pub fn rows_f32(&self, ids: &[usize]) -> Vec<f32> {
        let mut out = vec![0.0; ids.len() * self.cols];
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(self.cols)) {
            self.row_into(id, row);
        }
        out
    }

    /// Decodes rows `start..start + out.len() / cols` into `out`, in parallel.
    fn rows_range_into(&self, start: usize, out: &mut [f32]) {
        let cols = self.cols;
        let task = |(i, chunk): (usize, &mut [f32])| {
            for (k, row) in chunk.chunks_exact_mut(cols).enumerate() {
                self.row_into(start + i * ROWS_PER_TASK + k, row);
            }
        };
        for_each_chunk(out, ROWS_PER_TASK * cols, task);
    }

    /// `x · Wᵀ` for host values `x` `[m, cols]`: `[m, rows]`. For fewer than
    /// [`GEMM_FROM_ROWS`] rows (decoding); more belong on the backend's matrix product.
    pub fn dot_values(&self, x: &SharedRows, m: usize) -> Vec<f32> {
        debug_assert!(m < GEMM_FROM_ROWS);
        self.dot_rows(x, m)
    }

    /// `x · Wᵀ` for `x` of shape `[m, cols]` (row-major): `[m, rows]`, row-major.
    fn dot_rows(&self, shared: &SharedRows, m: usize) -> Vec<f32> {
        let (cols, x) = (self.cols, shared.values());
        // Computed transposed, `[rows, m]`, so that each task owns a run of weight rows.
        let mut yt = vec![0.0f32; self.rows * m];
        let quantized = match &self.blocks {
            Blocks::Groups(groups) => Some((groups, groups.quantized(shared))),
            Blocks::Rows { .. } => None,
        };
        let rows_per_task = if m == 1 {
            decoded_rows_per_task(self.rows)
        } else {
            DOT_ROWS_PER_TASK
        };
        let task = |(i, chunk): (usize, &mut [f32])| {
            let first = i * rows_per_task;
            match &quantized {
                Some((groups, xq)) => groups.dots(xq, first, chunk),
                None => {
                    let mut row = vec![0.0f32; cols];
                    for (k, out) in chunk.chunks_exact_mut(m).enumerate() {
                        self.row_into(first + k, &mut row);
                        for (o, xi) in out.iter_mut().zip(x.chunks_exact(cols)) {
                            *o = dot(&row, xi);
                        }
                    }
                }
            }
        };
        // A decoded token's products come back to back: on threads that stay awake between them.
        if m * self.rows * cols >= PARALLEL_MIN_PRODUCTS {
            awake::for_each_chunk(&mut yt, rows_per_task * m, task);
        } else {
            yt.chunks_mut(rows_per_task * m).enumerate().for_each(task);
        }
        if m == 1 {
            return yt;
        }
        let mut y = vec![0.0f32; m * self.rows];
        for (r, values) in yt.chunks_exact(m).enumerate() {
            for (i, &v) in values.iter().enumerate() {
                y[i * self.rows + r] = v;
            }
        }
        y
    }

    /// `x · Wᵀ` for `x` of shape `[batch, positions, cols]` on a CPU device.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, cols] = x.dims();
        assert_eq!(cols, self.cols, "input width");
        let m = batch * len;
        let device = x.device();
        if m >= GEMM_FROM_ROWS {
            return self
                .forward_tiles(x.reshape([m, cols]), &device)
                .reshape([batch, len, self.rows]);
        }
        let data = x.into_data();
        let values = data.as_slice::<f32>().expect("f32 activations");
        let y = self.dot_rows(&SharedRows::new(values), m);
        Tensor::from_data(TensorData::new(y, [batch, len, self.rows]), &device)
    }

    /// `x · Wᵀ` one decoded tile of weight rows at a time, on the backend's matrix product.
    fn forward_tiles(&self, x: Tensor<2>, device: &Device) -> Tensor<2> {
        let tile_rows = (TILE_VALUES / self.cols).clamp(1, self.rows.max(1));
        let mut buffer = vec![0.0f32; tile_rows * self.cols];
        let mut parts = Vec::with_capacity(self.rows.div_ceil(tile_rows));
        for start in (0..self.rows).step_by(tile_rows) {
            let n = tile_rows.min(self.rows - start);
            let tile = &mut buffer[..n * self.cols];
            self.rows_range_into(start, tile);
            let weight =
                Tensor::<2>::from_data(TensorData::new(tile.to_vec(), [n, self.cols]), device);
            parts.push(x.clone().matmul(weight.transpose()));
        }
        Tensor::cat(parts, 1)
    }
}

/// A `[rows, cols]` matrix as a burn quantized tensor on a GPU device (see the module notes).
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    /// `[rows, cols]`, symmetric block-32 values with f32 scales.
    weight: Tensor<2>,
    /// `[rows, cols / 32]`: what each block adds to every one of its weights (Q4_1).
    offset: Option<Tensor<2>>,
    rows: usize,
    cols: usize,
    bytes: usize,
    host_rows: Option<BlockMatrix>,
}

impl QuantizedMatrix {
    /// Q4_0, Q4_1 and Q8_0 data; `None` for another type.
    pub fn new(
        ggml_type: GgmlType,
        rows: usize,
        cols: usize,
        data: &[u8],
        device: &Device,
    ) -> Result<Option<Self>, GgufError> {
        let (value, block_bytes) = match ggml_type {
            GgmlType::Q4_0 => (QuantValue::Q4F, 18),
            GgmlType::Q4_1 => (QuantValue::Q4F, 20),
            GgmlType::Q8_0 => (QuantValue::Q8F, 34),
            _ => return Ok(None),
        };
        let blocks = rows * cols / BLOCK;
        if !cols.is_multiple_of(BLOCK) || data.len() != blocks * block_bytes {
            return Err(GgufError(format!(
                "{} bytes of {ggml_type:?} do not hold a [{rows}, {cols}] matrix",
                data.len()
            )));
        }
        let f16 = |b: &[u8]| half_to_f32(u16::from_le_bytes([b[0], b[1]]));
        let mut words: Vec<u32> = Vec::with_capacity(blocks * BLOCK * value.size_bits() / 32);
        let mut scales = Vec::with_capacity(blocks);
        let mut offsets = Vec::new();
        for block in data.chunks_exact(block_bytes) {
            let d = f16(&block[0..2]);
            scales.push(d);
            match ggml_type {
                GgmlType::Q8_0 => words.extend(
                    block[2..]
                        .chunks_exact(4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                ),
                _ => {
                    let q = &block[block_bytes - 16..];
                    if ggml_type == GgmlType::Q4_1 {
                        offsets.push(f16(&block[2..4]) + 8.0 * d);
                    }
                    // Element j of the block is the low nibble of byte j (j < 16), else the
                    // high nibble of byte j − 16; a u32 holds 8 elements, the first lowest.
                    // `nibble ^ 8` is `nibble − 8` as a two's complement nibble.
                    let nibble = |j: usize| {
                        let n = if j < 16 { q[j] & 0x0F } else { q[j - 16] >> 4 };
                        (n ^ 8) as u32
                    };
                    for word in 0..4 {
                        words.push((0..8).fold(0, |acc, i| acc | nibble(word * 8 + i) << (4 * i)));
                    }
                }
            }
        }
        let scheme = QuantScheme::default()
            .with_value(value)
            .with_store(QuantStore::PackedU32(0))
            .per_block([BLOCK as u8], ScaleDtype::F32);
        let mut bytes: Vec<u8> = Vec::with_capacity(words.len() * 4 + scales.len() * 4);
        bytes.extend(words.iter().flat_map(|w| w.to_le_bytes()));
        bytes.extend(scales.iter().flat_map(|s| s.to_le_bytes()));
        let held = bytes.len() + offsets.len() * 4;
        let weight = Tensor::<2>::from_data(
            TensorData::from_bytes_vec(bytes, [rows, cols], DType::QFloat(scheme)),
            device,
        );
        let offset = (!offsets.is_empty())
            .then(|| Tensor::from_data(TensorData::new(offsets, [rows, cols / BLOCK]), device));
        Ok(Some(Self {
            weight,
            offset,
            rows,
            cols,
            bytes: held,
            host_rows: None,
        }))
    }

    pub fn dims(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// Bytes held on the device: packed values, scales and offsets.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// `x · Wᵀ` for `x` of shape `[batch, positions, cols]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, cols] = x.dims();
        let x = x.reshape([batch * len, cols]);
        let weight = if batch * len == 1 {
            self.weight.clone()
        } else {
            self.weight.clone().dequantize()
        };
        let mut y = x.clone().matmul(weight.transpose());
        if let Some(offset) = &self.offset {
            let sums = x
                .reshape([batch * len, cols / BLOCK, BLOCK])
                .sum_dim(2)
                .reshape([batch * len, cols / BLOCK]);
            y = y + sums.matmul(offset.clone().transpose());
        }
        y.reshape([batch, len, self.rows])
    }

    /// Keeps a host copy of the blocks to look rows up in ([`Self::rows`]): `select` and
    /// `slice` on a block-quantized tensor keep the wrong scales on burn's cubecl backend
    /// (0.22.1), so rows are decoded on the host and uploaded.
    pub fn with_host_rows(mut self, ggml_type: GgmlType, data: &[u8]) -> Result<Self, GgufError> {
        self.host_rows = Some(BlockMatrix::new(ggml_type, self.rows, self.cols, data)?);
        Ok(self)
    }

    /// Host bytes kept for row lookups.
    pub fn host_bytes(&self) -> usize {
        self.host_rows.as_ref().map_or(0, BlockMatrix::bytes)
    }

    /// Rows `ids` (`[n]`) as f32 `[n, cols]`.
    ///
    /// # Panics
    ///
    /// Without [`Self::with_host_rows`].
    pub fn rows(&self, ids: &[usize], device: &Device) -> Tensor<2> {
        let host = self
            .host_rows
            .as_ref()
            .expect("row lookups need `with_host_rows`");
        Tensor::from_data(
            TensorData::new(host.rows_f32(ids), [ids.len(), self.cols]),
            device,
        )
    }
}

/// A dot product with eight independent lanes, which the compiler turns into SIMD.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::blocks::dequantize;
    use crate::caption::intdot::quantized_activations;

    /// A Q4_1 matrix of `rows` rows of 64 values with varied scales, offsets and nibbles.
    fn q4_1(rows: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for block in 0..rows * 2 {
            let d = 0x3000u16 + block as u16 * 7; // small positive halves
            let m = 0xB000u16 + block as u16 * 3; // small negative halves
            data.extend(d.to_le_bytes());
            data.extend(m.to_le_bytes());
            data.extend((0..16).map(|i| ((block * 5 + i * 11) % 256) as u8));
        }
        data
    }

    /// `forward(x)` against the f32 product with `weight` for an `m`-row input; with
    /// `int8_activations`, against the product with the input as its 16-bit blocks hold it.
    #[allow(clippy::too_many_arguments)]
    fn assert_products(
        forward: impl Fn(Tensor<3>) -> Tensor<3>,
        weight: &[f32],
        [m, rows, cols]: [usize; 3],
        int8_activations: bool,
        tolerance: f32,
        device: &Device,
        label: &str,
    ) {
        let x: Vec<f32> = (0..m * cols)
            .map(|i| ((i * 37) % 19) as f32 / 9.0 - 1.0)
            .collect();
        let expected = if int8_activations {
            reference(weight, &quantized_activations(&x, cols), rows, cols)
        } else {
            reference(weight, &x, rows, cols)
        };
        let input = Tensor::<3>::from_data(TensorData::new(x, [1, m, cols]), device);
        let got = forward(input).into_data().try_to_vec::<f32>().unwrap();
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g - e).abs() <= tolerance * e.abs().max(1.0),
                "{label}: {g} vs {e}"
            );
        }
    }

    fn reference(weight: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let m = x.len() / cols;
        let mut y = vec![0.0; m * rows];
        for i in 0..m {
            for r in 0..rows {
                y[i * rows + r] = (0..cols)
                    .map(|c| x[i * cols + c] * weight[r * cols + c])
                    .sum();
            }
        }
        y
    }

    #[test]
    fn products_on_both_paths_match_the_dequantized_matrix() {
        let (rows, cols) = (37, 64);
        let device = Device::flex();
        let f16_data: Vec<u8> = (0..rows * cols)
            .flat_map(|i| (0x3000u16 + (i as u16 * 7) % 0x900).to_le_bytes())
            .collect();
        for (ggml_type, data) in [
            (GgmlType::Q4_1, q4_1(rows)),
            (GgmlType::Q4_0, blocks(GgmlType::Q4_0, rows, cols)),
            (GgmlType::Q8_0, blocks(GgmlType::Q8_0, rows, cols)),
            (GgmlType::F16, f16_data),
        ] {
            let weight = dequantize(ggml_type, &data).unwrap();
            let matrix = BlockMatrix::new(ggml_type, rows, cols, &data).unwrap();
            // Regrouped: four rows to a group with f32 scales (and offsets), padded to a whole
            // group.
            let group_block = match ggml_type {
                GgmlType::Q8_0 => 16 + 4 * 32,
                GgmlType::F16 => 0,
                _ => 32 + 4 * 16,
            };
            let expected_bytes = match group_block {
                0 => data.len(),
                n => rows.div_ceil(GROUP) * cols / BLOCK * n,
            };
            assert_eq!(matrix.bytes(), expected_bytes, "{ggml_type:?}");
            for m in [1, 3, 20, GEMM_FROM_ROWS + 1] {
                let label = format!("{ggml_type:?} m={m}");
                let got = |x| matrix.forward(x);
                let int8 = m < GEMM_FROM_ROWS && ggml_type != GgmlType::F16;
                let shape = [m, rows, cols];
                assert_products(got, &weight, shape, int8, 1e-4, &device, &label);
            }
            assert_eq!(matrix.rows_f32(&[5]), weight[5 * cols..6 * cols]);
        }
    }

    /// Q4_0 and Q8_0 blocks with varied scales and values.
    fn blocks(ggml_type: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for block in 0..rows * cols / 32 {
            data.extend((0x2C00u16 + block as u16 * 5).to_le_bytes());
            let n = if ggml_type == GgmlType::Q8_0 { 32 } else { 16 };
            data.extend((0..n).map(|i| ((block * 13 + i * 29) % 256) as u8));
        }
        data
    }

    fn check_quantized(device: &Device) {
        let (rows, cols) = (40, 96);
        for ggml_type in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let data = match ggml_type {
                GgmlType::Q4_1 => q4_1(rows * cols / 64),
                _ => blocks(ggml_type, rows, cols),
            };
            let weight = dequantize(ggml_type, &data).unwrap();
            let matrix = QuantizedMatrix::new(ggml_type, rows, cols, &data, device)
                .unwrap()
                .unwrap()
                .with_host_rows(ggml_type, &data)
                .unwrap();
            for m in [1, 9] {
                let label = format!("{ggml_type:?} m={m}");
                let got = |x| matrix.forward(x);
                assert_products(got, &weight, [m, rows, cols], false, 1e-3, device, &label);
            }
            let rows_got = matrix
                .rows(&[3, 17], device)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let mut rows_expected = weight[3 * cols..4 * cols].to_vec();
            rows_expected.extend_from_slice(&weight[17 * cols..18 * cols]);
            for (g, e) in rows_got.iter().zip(&rows_expected) {
                assert!(
                    (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                    "{ggml_type:?} rows: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    #[ignore = "needs a wgpu adapter"]
    fn burn_quantized_tensors_on_wgpu_match_the_dequantized_matrix() {
        check_quantized(&Device::wgpu_options().init().expect("a wgpu adapter"));
    }

    #[test]
    fn a_matrix_of_the_wrong_size_is_refused() {
        let err = BlockMatrix::new(GgmlType::Q4_1, 3, 64, &q4_1(2)).unwrap_err();
        assert!(err.0.contains("do not hold a [3, 64] matrix"), "{err}");
    }
}
