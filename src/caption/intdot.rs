//! Integer block dot products for decoding: a weight row of Q4_0, Q4_1 or Q8_0 blocks against
//! an activation row quantized once per product to 16-bit blocks of 32 (one f32 scale per
//! block, and the block's sum for the 4-bit types' offsets).
//!
//! llama.cpp and candle quantize the activations to 8 bits; on SmolLM2 that flipped a greedy
//! token of the reference cases in `tests/llama.rs` (two candidates 0.28 apart in the f32
//! logits came out 0.02 the other way), while 16 bits keep the products within f32 rounding of
//! the dequantized ones: the 16-bit multiply-adds (`vpmaddwd`, or `vpdpwssd` with AVX-512
//! VNNI, picked at run time; `i32x4.dot_i16x8` in wasm SIMD128) take the weights widened from
//! their bytes, one instruction per 16 (x86) or 8 (wasm) values.
//!
//! Per block the product is `dw·dx·Σ qw·qx` plus the weight block's offset times the
//! activation block's sum (`−8·dw` for Q4_0, `m` for Q4_1, none for Q8_0). Everything other
//! than x86-64 with AVX2 and wasm with SIMD128 runs the portable scalar code.

use super::blocks::half_to_f32;
use super::gguf::GgmlType;

/// Values per block, in the weights and in the quantized activations.
pub const BLOCK: usize = 32;

/// Activation rows in 16-bit blocks: `values[i]·scales[i / 32]` approximates the input.
pub struct QRows {
    values: Vec<i16>,
    scales: Vec<f32>,
    /// Per block, `scale · Σ values`: the sum of the block as quantized.
    sums: Vec<f32>,
    cols: usize,
}

impl QRows {
    /// Quantizes `x` (rows of `cols`, a whole number of blocks) with one scale per block, its
    /// largest magnitude mapped to 32767.
    pub fn quantize(x: &[f32], cols: usize) -> Self {
        debug_assert!(cols.is_multiple_of(BLOCK) && x.len().is_multiple_of(cols));
        let blocks = x.len() / BLOCK;
        let mut values = vec![0i16; x.len()];
        let (mut scales, mut sums) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        for (block, q) in x.chunks_exact(BLOCK).zip(values.chunks_exact_mut(BLOCK)) {
            let amax = block.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let scale = amax / 32767.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (q, &v) in q.iter_mut().zip(block) {
                *q = (v * inverse).round() as i16;
                sum += *q as i32;
            }
            scales.push(scale);
            sums.push(scale * sum as f32);
        }
        Self {
            values,
            scales,
            sums,
            cols,
        }
    }

    /// The values as quantized, back in f32 (for reference checks).
    #[cfg(test)]
    pub fn dequantized(&self) -> Vec<f32> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scales[i / BLOCK])
            .collect()
    }

    fn row(&self, i: usize) -> Row<'_> {
        let blocks = self.cols / BLOCK;
        Row {
            values: &self.values[i * self.cols..(i + 1) * self.cols],
            scales: &self.scales[i * blocks..(i + 1) * blocks],
            sums: &self.sums[i * blocks..(i + 1) * blocks],
        }
    }

    fn len(&self) -> usize {
        self.values.len() / self.cols
    }
}

#[derive(Clone, Copy)]
struct Row<'a> {
    values: &'a [i16],
    scales: &'a [f32],
    sums: &'a [f32],
}

/// The weight encodings these products take, as const parameters of the kernels.
const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q8_0: u8 = 2;

/// Bytes per block of encoding `t`, and where its packed values start in it (after the f16
/// scale, and Q4_1's f16 minimum).
const fn layout(t: u8) -> (usize, usize) {
    match t {
        Q4_0 => (18, 2),
        Q4_1 => (20, 4),
        _ => (34, 2),
    }
}

/// `out[k·m + i] = W[k] · x[i]` for the weight rows in `rows` (as many as `out` holds, each
/// `row_bytes` long) and the `m` rows of `x`.
///
/// # Panics
///
/// For a type other than Q4_0, Q4_1 or Q8_0, or sizes that disagree.
pub fn block_dots(ggml_type: GgmlType, rows: &[u8], row_bytes: usize, x: &QRows, out: &mut [f32]) {
    let ty = match ggml_type {
        GgmlType::Q4_0 => Q4_0,
        GgmlType::Q4_1 => Q4_1,
        GgmlType::Q8_0 => Q8_0,
        other => panic!("no integer block product for {other:?}"),
    };
    let m = x.len();
    let block_bytes = ggml_type.block().1 as usize;
    assert_eq!(row_bytes / block_bytes * BLOCK, x.cols, "row width");
    assert!(rows.len() >= out.len() / m * row_bytes, "weight rows");
    let table = F16_TABLE.get();
    let args = Args {
        rows,
        row_bytes,
        block_bytes,
        x,
        table,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            let vnni = std::is_x86_feature_detected!("avx512vnni")
                && std::is_x86_feature_detected!("avx512vl");
            // SAFETY: the CPU was just checked for every feature each kernel is compiled for.
            unsafe {
                match (vnni, ty) {
                    (true, Q4_0) => x86::dots_vnni::<Q4_0>(&args, out),
                    (true, Q4_1) => x86::dots_vnni::<Q4_1>(&args, out),
                    (true, _) => x86::dots_vnni::<Q8_0>(&args, out),
                    (false, Q4_0) => x86::dots_avx2::<Q4_0>(&args, out),
                    (false, Q4_1) => x86::dots_avx2::<Q4_1>(&args, out),
                    (false, _) => x86::dots_avx2::<Q8_0>(&args, out),
                }
            }
            return;
        }
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        match ty {
            Q4_0 => dots_with::<Q4_0>(&args, out, wasm::row_dot::<Q4_0>),
            Q4_1 => dots_with::<Q4_1>(&args, out, wasm::row_dot::<Q4_1>),
            _ => dots_with::<Q8_0>(&args, out, wasm::row_dot::<Q8_0>),
        }
        return;
    }
    #[allow(unreachable_code)]
    match ty {
        Q4_0 => dots_with::<Q4_0>(&args, out, row_dot_scalar::<Q4_0>),
        Q4_1 => dots_with::<Q4_1>(&args, out, row_dot_scalar::<Q4_1>),
        _ => dots_with::<Q8_0>(&args, out, row_dot_scalar::<Q8_0>),
    }
}

struct Args<'a> {
    rows: &'a [u8],
    row_bytes: usize,
    block_bytes: usize,
    x: &'a QRows,
    table: &'a [f32],
}

/// Every weight row against every activation row, with `row_dot` for one pair.
#[inline(always)]
fn dots_with<const T: u8>(
    args: &Args,
    out: &mut [f32],
    row_dot: impl Fn(&[u8], usize, Row, &[f32]) -> f32,
) {
    let m = args.x.len();
    for (row, out) in args
        .rows
        .chunks_exact(args.row_bytes)
        .zip(out.chunks_exact_mut(m))
    {
        for (i, o) in out.iter_mut().enumerate() {
            *o = row_dot(row, args.block_bytes, args.x.row(i), args.table);
        }
    }
}

/// The scale, offset and packed values of weight block `b` of `row`: the offset is what each
/// unit of the activation block's sum adds.
#[inline(always)]
fn block_parts<'a, const T: u8>(
    row: &'a [u8],
    block_bytes: usize,
    b: usize,
    table: &[f32],
) -> (f32, f32, &'a [u8]) {
    let block = &row[b * block_bytes..(b + 1) * block_bytes];
    let f16 = |i: usize| table[u16::from_le_bytes([block[i], block[i + 1]]) as usize];
    let d = f16(0);
    let values = &block[layout(T).1..];
    match T {
        Q4_0 => (d, -8.0 * d, values),
        Q4_1 => (d, f16(2), values),
        _ => (d, 0.0, values),
    }
}

fn row_dot_scalar<const T: u8>(row: &[u8], block_bytes: usize, x: Row, table: &[f32]) -> f32 {
    let mut total = 0.0f32;
    for (b, &dx) in x.scales.iter().enumerate() {
        let (d, offset, q) = block_parts::<T>(row, block_bytes, b, table);
        let xq = &x.values[b * BLOCK..(b + 1) * BLOCK];
        // At most 32 products of 128 by 32767: within i32.
        let sum: i32 = if T == Q8_0 {
            q.iter()
                .zip(xq)
                .map(|(&w, &v)| w as i8 as i32 * v as i32)
                .sum()
        } else {
            q.iter()
                .zip(&xq[..16])
                .zip(&xq[16..])
                .map(|((&w, &lo), &hi)| (w & 0x0F) as i32 * lo as i32 + (w >> 4) as i32 * hi as i32)
                .sum()
        };
        total += d * dx * sum as f32 + offset * x.sums[b];
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Args, BLOCK, Q4_0, Q4_1, Q8_0, layout};

    /// 8 lanes of 32-bit sums of two 16-bit products each.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dot16_avx2(w: __m256i, x: __m256i) -> __m256i {
        _mm256_madd_epi16(w, x)
    }

    #[inline]
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    fn dot16_vnni(w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(_mm256_setzero_si256(), w, x)
    }

    macro_rules! kernel {
        ($name:ident, $features:literal, $dot:ident) => {
            #[target_feature(enable = $features)]
            pub fn $name<const T: u8>(args: &Args, out: &mut [f32]) {
                let (block_bytes, values_at) = layout(T);
                debug_assert_eq!(block_bytes, args.block_bytes);
                let m = args.x.len();
                let low = _mm_set1_epi8(0x0F);
                for (row, out) in args
                    .rows
                    .chunks_exact(args.row_bytes)
                    .zip(out.chunks_exact_mut(m))
                {
                    for (i, o) in out.iter_mut().enumerate() {
                        let x = args.x.row(i);
                        let blocks = x.scales.len();
                        assert!(
                            row.len() == blocks * block_bytes && x.values.len() == blocks * BLOCK
                        );
                        // Two accumulators each, alternate blocks, so that the adds overlap.
                        let mut acc = [_mm256_setzero_ps(); 2];
                        let mut offsets = [0.0f32; 2];
                        for b in 0..blocks {
                            // SAFETY: block `b` of the row and of the activations is in bounds
                            // (asserted above); loads are unaligned.
                            let (block, xq) = unsafe {
                                (
                                    row.as_ptr().add(b * block_bytes),
                                    x.values.as_ptr().add(b * BLOCK),
                                )
                            };
                            // The scale (and Q4_1's minimum after it) by F16C: no table lookup.
                            let halves = unsafe {
                                if T == Q4_1 {
                                    _mm_cvtsi32_si128(block.cast::<i32>().read_unaligned())
                                } else {
                                    _mm_cvtsi32_si128(block.cast::<u16>().read_unaligned() as i32)
                                }
                            };
                            let halves = _mm_cvtph_ps(halves);
                            let d = _mm_cvtss_f32(halves);
                            let offset = match T {
                                Q4_0 => -8.0 * d,
                                Q4_1 => _mm_cvtss_f32(_mm_movehdup_ps(halves)),
                                _ => 0.0,
                            };
                            let q = unsafe { block.add(values_at) };
                            let (x0, x1) = unsafe {
                                (
                                    _mm256_loadu_si256(xq.cast()),
                                    _mm256_loadu_si256(xq.add(16).cast()),
                                )
                            };
                            // Values 0..16 and 16..32 of the block, widened to 16 bits.
                            let (w0, w1) = if T == Q8_0 {
                                let (a, b) = unsafe {
                                    (_mm_loadu_si128(q.cast()), _mm_loadu_si128(q.add(16).cast()))
                                };
                                (_mm256_cvtepi8_epi16(a), _mm256_cvtepi8_epi16(b))
                            } else {
                                let packed = unsafe { _mm_loadu_si128(q.cast()) };
                                let lo = _mm_and_si128(packed, low);
                                let hi = _mm_and_si128(_mm_srli_epi16::<4>(packed), low);
                                (_mm256_cvtepu8_epi16(lo), _mm256_cvtepu8_epi16(hi))
                            };
                            let sums = _mm256_add_epi32($dot(w0, x0), $dot(w1, x1));
                            let scale = _mm256_set1_ps(d * x.scales[b]);
                            acc[b & 1] =
                                _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[b & 1]);
                            if T != Q8_0 {
                                offsets[b & 1] += offset * x.sums[b];
                            }
                        }
                        let v = _mm256_add_ps(acc[0], acc[1]);
                        let v =
                            _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                        let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
                        let v = _mm_add_ss(v, _mm_movehdup_ps(v));
                        *o = _mm_cvtss_f32(v) + offsets[0] + offsets[1];
                    }
                }
            }
        };
    }

    kernel!(dots_avx2, "avx2,fma,f16c", dot16_avx2);
    kernel!(dots_vnni, "avx2,fma,f16c,avx512vnni,avx512vl", dot16_vnni);
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;

    use super::{BLOCK, Q4_0, Q4_1, Q8_0, Row, layout};

    #[inline(always)]
    pub fn row_dot<const T: u8>(row: &[u8], block_bytes: usize, x: Row, table: &[f32]) -> f32 {
        let values_at = layout(T).1;
        let blocks = x.scales.len();
        assert!(row.len() == blocks * block_bytes && x.values.len() == blocks * BLOCK);
        assert!(table.len() == 1 << 16);
        // Two accumulators each, alternate blocks, so that the adds overlap.
        let mut acc = [f32x4_splat(0.0); 2];
        let mut offsets = [0.0f32; 2];
        for b in 0..blocks {
            // SAFETY: block `b` of the row and of the activations is in bounds (asserted
            // above), and the table has an entry for every u16; loads are unaligned.
            let (block, xq) = unsafe {
                (
                    row.as_ptr().add(b * block_bytes),
                    x.values.as_ptr().add(b * BLOCK),
                )
            };
            let half = |at: usize| unsafe {
                *table.get_unchecked(block.add(at).cast::<u16>().read_unaligned() as usize)
            };
            let d = half(0);
            let offset = match T {
                Q4_0 => -8.0 * d,
                Q4_1 => half(2),
                _ => 0.0,
            };
            let q = unsafe { block.add(values_at) };
            let part = |i: usize| unsafe { v128_load(xq.add(8 * i).cast()) };
            // Values 0..16 and 16..32 of the block, as bytes.
            let (w0, w1) = if T == Q8_0 {
                unsafe { (v128_load(q.cast()), v128_load(q.add(16).cast())) }
            } else {
                let packed = unsafe { v128_load(q.cast()) };
                (v128_and(packed, u8x16_splat(0x0F)), u8x16_shr(packed, 4))
            };
            // Nibbles are unsigned, Q8_0's bytes signed; either way they fit i16.
            let widen = |w: v128| {
                if T == Q8_0 {
                    (i16x8_extend_low_i8x16(w), i16x8_extend_high_i8x16(w))
                } else {
                    (i16x8_extend_low_u8x16(w), i16x8_extend_high_u8x16(w))
                }
            };
            let ((w00, w01), (w10, w11)) = (widen(w0), widen(w1));
            let sums = i32x4_add(
                i32x4_add(i32x4_dot_i16x8(w00, part(0)), i32x4_dot_i16x8(w01, part(1))),
                i32x4_add(i32x4_dot_i16x8(w10, part(2)), i32x4_dot_i16x8(w11, part(3))),
            );
            let scale = f32x4_splat(d * x.scales[b]);
            acc[b & 1] = f32x4_add(acc[b & 1], f32x4_mul(f32x4_convert_i32x4(sums), scale));
            if T != Q8_0 {
                offsets[b & 1] += offset * x.sums[b];
            }
        }
        let v = f32x4_add(acc[0], acc[1]);
        f32x4_extract_lane::<0>(v)
            + f32x4_extract_lane::<1>(v)
            + f32x4_extract_lane::<2>(v)
            + f32x4_extract_lane::<3>(v)
            + offsets[0]
            + offsets[1]
    }
}

/// Every half-precision bit pattern as f32 (256 kB), built on first use: block scales are
/// decoded by lookup in the hot loops.
pub static F16_TABLE: F16Table = F16Table(std::sync::OnceLock::new());

pub struct F16Table(std::sync::OnceLock<Box<[f32]>>);

impl F16Table {
    pub fn get(&self) -> &[f32] {
        self.0
            .get_or_init(|| (0..=u16::MAX).map(half_to_f32).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caption::blocks::dequantize;

    /// Blocks of `ggml_type` with varied scales, offsets and values, extremes included
    /// (Q8_0's −128 and 127, every nibble).
    fn weights(ggml_type: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
        let mut data = Vec::new();
        for block in 0..rows * cols / BLOCK {
            data.extend((0x2C00u16 + block as u16 * 5).to_le_bytes());
            if ggml_type == GgmlType::Q4_1 {
                data.extend((0xB000u16 + block as u16 * 3).to_le_bytes());
            }
            let n = if ggml_type == GgmlType::Q8_0 { 32 } else { 16 };
            data.extend((0..n).map(|i| match (block + i) % 7 {
                0 => 0x80,
                1 => 0x7F,
                _ => ((block * 13 + i * 29) % 256) as u8,
            }));
        }
        data
    }

    /// Activations with a zero block, a block at ±the same magnitude, and varied values.
    fn activations(m: usize, cols: usize) -> Vec<f32> {
        (0..m * cols)
            .map(|i| match (i / BLOCK) % 5 {
                0 => 0.0,
                1 => {
                    if i % 2 == 0 {
                        3.5
                    } else {
                        -3.5
                    }
                }
                _ => ((i * 37) % 19) as f32 / 9.0 - 1.0,
            })
            .collect()
    }

    fn reference(weight: &[f32], x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let m = x.len() / cols;
        let mut out = vec![0.0; rows * m];
        for k in 0..rows {
            for i in 0..m {
                out[k * m + i] = (0..cols)
                    .map(|c| weight[k * cols + c] as f64 * x[i * cols + c] as f64)
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    fn check(label: &str, got: &[f32], expected: &[f32]) {
        for (j, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{label}[{j}]: {g} vs {e}"
            );
        }
    }

    /// Every kernel this CPU can run, against the f64 product of the dequantized weights and
    /// the activations as their 8-bit blocks hold them.
    #[test]
    fn every_kernel_equals_the_product_with_the_quantized_activations() {
        let (rows, cols) = (13, 96);
        for ggml_type in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let data = weights(ggml_type, rows, cols);
            let weight = dequantize(ggml_type, &data).unwrap();
            let row_bytes = data.len() / rows;
            for m in [1, 2, 5] {
                let x = QRows::quantize(&activations(m, cols), cols);
                let expected = reference(&weight, &x.dequantized(), rows, cols);
                let label = format!("{ggml_type:?} m={m}");
                let mut out = vec![0.0; rows * m];
                block_dots(ggml_type, &data, row_bytes, &x, &mut out);
                check(&format!("{label} dispatched"), &out, &expected);

                let args = Args {
                    rows: &data,
                    row_bytes,
                    block_bytes: ggml_type.block().1 as usize,
                    x: &x,
                    table: F16_TABLE.get(),
                };
                let mut out = vec![0.0; rows * m];
                match ggml_type {
                    GgmlType::Q4_0 => dots_with::<Q4_0>(&args, &mut out, row_dot_scalar::<Q4_0>),
                    GgmlType::Q4_1 => dots_with::<Q4_1>(&args, &mut out, row_dot_scalar::<Q4_1>),
                    _ => dots_with::<Q8_0>(&args, &mut out, row_dot_scalar::<Q8_0>),
                }
                check(&format!("{label} scalar"), &out, &expected);

                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2")
                    && std::is_x86_feature_detected!("fma")
                    && std::is_x86_feature_detected!("f16c")
                {
                    let mut out = vec![0.0; rows * m];
                    // SAFETY: checked just above.
                    unsafe {
                        match ggml_type {
                            GgmlType::Q4_0 => x86::dots_avx2::<Q4_0>(&args, &mut out),
                            GgmlType::Q4_1 => x86::dots_avx2::<Q4_1>(&args, &mut out),
                            _ => x86::dots_avx2::<Q8_0>(&args, &mut out),
                        }
                    }
                    check(&format!("{label} avx2"), &out, &expected);
                }
            }
        }
    }

    /// Each value is within half a step of its block's scale, and the block sums are those
    /// of the values as quantized.
    #[test]
    fn activations_round_to_the_nearest_step_of_their_block() {
        let cols = 64;
        let x = activations(3, cols);
        let q = QRows::quantize(&x, cols);
        let back = q.dequantized();
        for (i, (a, b)) in x.iter().zip(&back).enumerate() {
            let scale = q.scales[i / BLOCK];
            assert!((a - b).abs() <= scale / 2.0 + 1e-6, "[{i}]: {a} vs {b}");
        }
        for (b, block) in back.chunks_exact(BLOCK).enumerate() {
            let sum: f32 = block.iter().sum();
            assert!(
                (sum - q.sums[b]).abs() <= 1e-4 * sum.abs().max(1.0),
                "block {b}"
            );
        }
        assert!(q.scales[0] == 0.0 && q.values[..BLOCK].iter().all(|&v| v == 0));
    }
}
