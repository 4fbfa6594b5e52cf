//! Integer block dot products for decoding: weight rows of Q4_0, Q4_1 or Q8_0 blocks against
//! activation rows quantized once per product to 16-bit blocks of 32 (one f32 scale per
//! block, and the block's sum for the 4-bit types' offsets).
//!
//! llama.cpp and candle quantize the activations to 8 bits; on SmolLM2 that flipped a greedy
//! token of the reference cases in `tests/llama.rs` (two candidates 0.28 apart in the f32
//! logits came out 0.02 the other way), while 16 bits keep the products within f32 rounding of
//! the dequantized ones: the 16-bit multiply-adds (`vpmaddwd`, or `vpdpwssd` with AVX-512
//! VNNI, picked at run time; `i32x4.dot_i16x8` in wasm SIMD128) take the weights widened from
//! their bytes or nibbles.
//!
//! Per block the product is `d·dx·Σ qw·qx` plus the weight block's offset times the
//! activation block's sum (`−8·d` for Q4_0, `m` for Q4_1, none for Q8_0). The weights are
//! regrouped at load ([`RowGroups`]): four rows' blocks side by side, their scales (and
//! offsets) first and already in f32. A kernel then reads one stream, loads each activation
//! block once for four rows, turns the four rows' integer sums to f32 and scales them in one
//! vector operation, and never converts an f16: wasm has no instruction for it, and decoding
//! two f16 per block by arithmetic or table cost more than the whole product of a row in
//! SIMD128. Everything other than x86-64 with AVX2 and wasm with SIMD128 runs the portable
//! scalar code.

use super::blocks::half_to_f32;
use super::gguf::GgmlType;

/// Values per block, in the weights and in the quantized activations.
pub const BLOCK: usize = 32;
/// Weight rows whose blocks are laid side by side.
pub const GROUP: usize = 4;
/// How far ahead of the block it reads a kernel asks for the matrix's lines. A decoded token
/// streams every weight from memory once (110 MB), and the hardware's prefetcher, which starts
/// again at each 4 KiB page, left the kernels waiting on it: natively (`prefetcht0`) gate and
/// up took 6.5–6.8 ms of a decoded token before, 3.6–4.2 ms after. Wasm has no prefetch
/// instruction, and a load that stands in for one holds up the instructions after it until its
/// line arrives, so it gains less: a 1536×576 product taken in turn from 170 MB of matrices,
/// 134 µs in Chromium, 110 µs with each line a page ahead loaded (2 to 8 KiB ahead alike). So
/// only a prompt's kernel in wasm loads ahead; a decoded token's reads several streams at once
/// instead (`wasm::STREAMS`).
const AHEAD: usize = 4096;

/// How a block's values are stored: Q4_0 and Q4_1 as nibbles (Q4_0's `−8·d` kept as an
/// offset like Q4_1's minimum), Q8_0 as signed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Width {
    Nibbles,
    Bytes,
}

impl Width {
    /// Bytes of one block of a group: four f32 scales, four f32 offsets (nibbles only), and
    /// each row's values.
    const fn group_block_bytes(self) -> usize {
        match self {
            Width::Nibbles => 2 * 16 + GROUP * 16,
            Width::Bytes => 16 + GROUP * 32,
        }
    }

    /// Where the rows' values start in a group's block.
    const fn values_at(self) -> usize {
        match self {
            Width::Nibbles => 32,
            Width::Bytes => 16,
        }
    }

    const fn row_values_bytes(self) -> usize {
        match self {
            Width::Nibbles => 16,
            Width::Bytes => 32,
        }
    }
}

/// The position in a block of activation `i` as the kernels read it. Bytes: in order. Nibbles:
/// a 4-bit block read as eight u16 lanes holds values `2j`, `2j + 16`, `2j + 1` and `2j + 17`
/// in lane `j`'s four nibbles, so the kernels take nibble `k` of every lane with one shift
/// and mask (eight 16-bit weights at once, no widening) against activations stored in that
/// order.
const fn read_order(width: Width, i: usize) -> usize {
    match width {
        Width::Bytes => i,
        Width::Nibbles => {
            let (pair, high) = (i % 16 / 2, i >= 16);
            let odd = i % 2 == 1;
            (odd as usize) * 16 + (high as usize) * 8 + pair
        }
    }
}

/// A `[rows, cols]` Q4_0, Q4_1 or Q8_0 matrix regrouped for the integer products: groups of
/// [`GROUP`] rows, block after block; per block, the rows' f32 scales, their f32 offsets
/// (4-bit types), then each row's packed values as GGUF stores them. A last partial group is
/// padded with zero rows.
#[derive(Clone)]
pub struct RowGroups {
    width: Width,
    rows: usize,
    cols: usize,
    data: Vec<u8>,
}

impl RowGroups {
    /// Regroups GGUF blocks (`rows` rows of `cols / 32` blocks, sizes checked by the caller);
    /// `None` for a type other than Q4_0, Q4_1 and Q8_0.
    pub fn new(ggml_type: GgmlType, rows: usize, cols: usize, data: &[u8]) -> Option<Self> {
        let (width, block_bytes, values_at) = match ggml_type {
            GgmlType::Q4_0 => (Width::Nibbles, 18, 2),
            GgmlType::Q4_1 => (Width::Nibbles, 20, 4),
            GgmlType::Q8_0 => (Width::Bytes, 34, 2),
            _ => return None,
        };
        let blocks = cols / BLOCK;
        assert_eq!(data.len(), rows * blocks * block_bytes, "block data");
        let gbb = width.group_block_bytes();
        let mut out = vec![0u8; rows.div_ceil(GROUP) * blocks * gbb];
        let half = |b: &[u8]| half_to_f32(u16::from_le_bytes([b[0], b[1]]));
        for (row, src) in data.chunks_exact(blocks * block_bytes).enumerate() {
            let (group, r) = (row / GROUP, row % GROUP);
            for (b, block) in src.chunks_exact(block_bytes).enumerate() {
                let at = (group * blocks + b) * gbb;
                let dst = &mut out[at..at + gbb];
                let d = half(block);
                dst[4 * r..4 * r + 4].copy_from_slice(&d.to_le_bytes());
                if width == Width::Nibbles {
                    let offset = match ggml_type {
                        GgmlType::Q4_1 => half(&block[2..]),
                        _ => -8.0 * d,
                    };
                    dst[16 + 4 * r..20 + 4 * r].copy_from_slice(&offset.to_le_bytes());
                }
                let n = width.row_values_bytes();
                let v = width.values_at() + r * n;
                dst[v..v + n].copy_from_slice(&block[values_at..]);
            }
        }
        Some(Self {
            width,
            rows,
            cols,
            data: out,
        })
    }

    /// Bytes held, scales and padding included.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    fn group_bytes(&self) -> usize {
        self.cols / BLOCK * self.width.group_block_bytes()
    }

    /// Group `g`'s bytes, and the matrix's bytes from the group on: the stream a kernel reads,
    /// in which it asks for lines [`AHEAD`].
    #[inline(always)]
    fn group(&self, g: usize) -> (&[u8], &[u8]) {
        let (at, len) = (g * self.group_bytes(), self.group_bytes());
        (&self.data[at..at + len], &self.data[at..])
    }

    /// Row `row`, dequantized into `out` (`cols` values): the same f32 values as GGUF's
    /// dequantization, since the scales were widened exactly and `n·d + (−8·d)` is exact.
    pub fn row_into(&self, row: usize, out: &mut [f32]) {
        assert!(row < self.rows && out.len() == self.cols);
        let (group, r) = (row / GROUP, row % GROUP);
        let gbb = self.width.group_block_bytes();
        let data = self.group(group).0;
        for (block, out) in data.chunks_exact(gbb).zip(out.chunks_exact_mut(BLOCK)) {
            let d = f32_at(block, 4 * r);
            let n = self.width.row_values_bytes();
            let q = &block[self.width.values_at() + r * n..][..n];
            match self.width {
                Width::Nibbles => {
                    let offset = f32_at(block, 16 + 4 * r);
                    let (low, high) = out.split_at_mut(16);
                    for ((&q, l), h) in q.iter().zip(low).zip(high) {
                        *l = (q & 0x0F) as f32 * d + offset;
                        *h = (q >> 4) as f32 * d + offset;
                    }
                }
                Width::Bytes => {
                    for (&q, v) in q.iter().zip(out) {
                        *v = q as i8 as f32 * d;
                    }
                }
            }
        }
    }

    /// The activation rows `x` (`[m, cols]`) quantized in the order this matrix's kernels
    /// read them.
    pub fn quantize(&self, x: &[f32]) -> QRows {
        QRows::quantize(x, self.cols, self.width)
    }

    /// [`Self::quantize`] of shared rows, made on the first product of their encoding.
    pub fn quantized<'s>(&self, x: &'s SharedRows) -> &'s QRows {
        x.by_width[self.width as usize].get_or_init(|| self.quantize(x.values))
    }

    /// `out[k·m + i] = W[first_row + k] · x[i]` for as many rows as `out` holds and the `m`
    /// rows of `x` (from [`Self::quantize`]). `first_row` starts a group.
    ///
    /// # Panics
    ///
    /// When `first_row` does not start a group, or the rows run past the matrix.
    pub fn dots(&self, x: &QRows, first_row: usize, out: &mut [f32]) {
        let m = x.len();
        assert!(first_row.is_multiple_of(GROUP) && first_row + out.len() / m <= self.rows);
        assert!(x.cols == self.cols && x.width == self.width, "activations");
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                let vnni = std::is_x86_feature_detected!("avx512vnni")
                    && std::is_x86_feature_detected!("avx512vl");
                // SAFETY: the CPU was just checked for every feature each kernel is compiled for.
                unsafe {
                    match (vnni, self.width) {
                        (true, Width::Nibbles) => x86::dots_vnni::<true>(self, x, first_row, out),
                        (true, Width::Bytes) => x86::dots_vnni::<false>(self, x, first_row, out),
                        (false, Width::Nibbles) => x86::dots_avx2::<true>(self, x, first_row, out),
                        (false, Width::Bytes) => x86::dots_avx2::<false>(self, x, first_row, out),
                    }
                }
                return;
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            match self.width {
                Width::Nibbles => wasm::dots::<true>(self, x, first_row, out),
                Width::Bytes => wasm::dots::<false>(self, x, first_row, out),
            }
            return;
        }
        #[allow(unreachable_code)]
        each_group(self, x, first_row, out, |group, _, x| {
            group_dots_scalar(self.width, group, x)
        });
    }
}

/// Activation rows that several products take (q, k and v; gate and up), quantized once for
/// each encoding of the weights they meet.
pub struct SharedRows<'a> {
    values: &'a [f32],
    by_width: [std::cell::OnceCell<QRows>; 2],
}

impl<'a> SharedRows<'a> {
    pub fn new(values: &'a [f32]) -> Self {
        Self {
            values,
            by_width: Default::default(),
        }
    }

    pub fn values(&self) -> &'a [f32] {
        self.values
    }
}

/// Activation rows in 16-bit blocks: `values[i]·scales[i / 32]` approximates the input, with
/// each block's values in the order the matrix's kernels read ([`read_order`]).
pub struct QRows {
    values: Vec<i16>,
    scales: Vec<f32>,
    /// Per block, `scale · Σ values`: the sum of the block as quantized.
    sums: Vec<f32>,
    cols: usize,
    width: Width,
}

impl QRows {
    /// Quantizes `x` (rows of `cols`, a whole number of blocks) with one scale per block, its
    /// largest magnitude mapped to 32767, each value rounded to the nearest step (ties to
    /// even). Written so that the compiler vectorizes it: `f32::round` is a call into libm per
    /// value in wasm, and a decoded token quantizes about 100,000 activations.
    fn quantize(x: &[f32], cols: usize, width: Width) -> Self {
        // Adding 1.5·2²³ rounds a value of magnitude below 2²² to an integer.
        const ROUND: f32 = 12_582_912.0;
        debug_assert!(cols.is_multiple_of(BLOCK) && x.len().is_multiple_of(cols));
        let blocks = x.len() / BLOCK;
        let mut values = vec![0i16; x.len()];
        let (mut scales, mut sums) = (Vec::with_capacity(blocks), Vec::with_capacity(blocks));
        for (block, q) in x.chunks_exact(BLOCK).zip(values.chunks_exact_mut(BLOCK)) {
            let amax = block.iter().fold(0.0f32, |a, v| {
                let v = v.abs();
                if v > a { v } else { a }
            });
            let scale = amax / 32767.0;
            let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let mut rounded = [0i16; BLOCK];
            for (r, &v) in rounded.iter_mut().zip(block) {
                *r = ((v * inverse + ROUND) - ROUND) as i16;
            }
            let sum: i32 = rounded.iter().map(|&r| r as i32).sum();
            match width {
                Width::Bytes => q.copy_from_slice(&rounded),
                Width::Nibbles => {
                    for (i, &r) in rounded.iter().enumerate() {
                        q[read_order(width, i)] = r;
                    }
                }
            }
            scales.push(scale);
            sums.push(scale * sum as f32);
        }
        Self {
            values,
            scales,
            sums,
            cols,
            width,
        }
    }

    /// The values as quantized, back in f32 and in their input order (for reference checks).
    #[cfg(test)]
    pub fn dequantized(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.values.len()];
        for (b, block) in out.chunks_exact_mut(BLOCK).enumerate() {
            for (i, v) in block.iter_mut().enumerate() {
                *v = self.values[b * BLOCK + read_order(self.width, i)] as f32 * self.scales[b];
            }
        }
        out
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

/// Every group from `first_row`'s on against every activation row, with `group_dots` for one
/// group and one activation row (the group's four products, padding rows' included). Its
/// second argument is the matrix's bytes from the group on, the stream the kernel reads, so
/// that it can ask for lines [`AHEAD`] bytes ahead.
#[inline(always)]
fn each_group(
    groups: &RowGroups,
    x: &QRows,
    first_row: usize,
    out: &mut [f32],
    group_dots: impl Fn(&[u8], &[u8], Row) -> [f32; GROUP],
) {
    let m = x.len();
    let first = first_row / GROUP;
    for (g, out) in out.chunks_mut(GROUP * m).enumerate() {
        let (group, stream) = groups.group(first + g);
        for i in 0..m {
            let sums = group_dots(group, stream, x.row(i));
            for (r, out) in out.chunks_exact_mut(m).enumerate() {
                out[i] = sums[r];
            }
        }
    }
}

/// A decoded token's product: one activation row against every group from `first_row`'s on,
/// `K` groups at a time with `many`, taken from `K` places spread over the rows (group `g` of
/// each of `K` equal runs), so that the kernel reads `K` streams that the hardware prefetcher
/// follows at once; the groups left over one at a time with `one`. The kernels' arguments are
/// as [`each_group`]'s.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[inline(always)]
fn each_group_in_streams<const K: usize>(
    groups: &RowGroups,
    x: Row,
    first_row: usize,
    out: &mut [f32],
    many: impl Fn([&[u8]; K], [&[u8]; K], Row) -> [[f32; GROUP]; K],
    one: impl Fn(&[u8], &[u8], Row) -> [f32; GROUP],
) {
    let first = first_row / GROUP;
    let group = |g: usize| groups.group(first + g);
    let count = out.len().div_ceil(GROUP);
    // A last partial group writes its real rows only.
    let mut put = |g: usize, sums: [f32; GROUP]| {
        let out = &mut out[g * GROUP..];
        let n = out.len().min(GROUP);
        out[..n].copy_from_slice(&sums[..n]);
    };
    let run = count / K;
    for g in 0..run {
        let sums = many(
            core::array::from_fn(|k| group(k * run + g).0),
            core::array::from_fn(|k| group(k * run + g).1),
            x,
        );
        for (k, sums) in sums.into_iter().enumerate() {
            put(k * run + g, sums);
        }
    }
    for g in K * run..count {
        let (group, stream) = group(g);
        put(g, one(group, stream, x));
    }
}

/// The blocks of the groups a SIMD kernel of nibbles or bytes reads, and the bytes of each, once
/// every one of `groups` and `x` are checked to hold that many (their loads are unchecked).
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
#[inline(always)]
fn checked_blocks<const NIBBLES: bool>(groups: &[&[u8]], x: &Row) -> (usize, usize) {
    let width = if NIBBLES {
        Width::Nibbles
    } else {
        Width::Bytes
    };
    let (blocks, gbb) = (x.scales.len(), width.group_block_bytes());
    assert!(x.values.len() == blocks * BLOCK && x.sums.len() == blocks);
    assert!(groups.iter().all(|group| group.len() == blocks * gbb));
    (blocks, gbb)
}

fn f32_at(bytes: &[u8], at: usize) -> f32 {
    f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn group_dots_scalar(width: Width, group: &[u8], x: Row) -> [f32; GROUP] {
    let gbb = width.group_block_bytes();
    let mut total = [0.0f32; GROUP];
    for (b, block) in group.chunks_exact(gbb).enumerate() {
        let xq = &x.values[b * BLOCK..(b + 1) * BLOCK];
        for (r, total) in total.iter_mut().enumerate() {
            let n = width.row_values_bytes();
            let q = &block[width.values_at() + r * n..][..n];
            // At most 32 products of 128 by 32767: within i32.
            let sum: i32 = match width {
                Width::Bytes => q
                    .iter()
                    .zip(xq)
                    .map(|(&w, &v)| w as i8 as i32 * v as i32)
                    .sum(),
                Width::Nibbles => (0..BLOCK)
                    .map(|i| {
                        let byte = q[i % 16];
                        let w = if i < 16 { byte & 0x0F } else { byte >> 4 };
                        w as i32 * xq[read_order(width, i)] as i32
                    })
                    .sum(),
            };
            *total += f32_at(block, 4 * r) * x.scales[b] * sum as f32;
            if width == Width::Nibbles {
                *total += f32_at(block, 16 + 4 * r) * x.sums[b];
            }
        }
    }
    total
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{
        AHEAD, BLOCK, GROUP, QRows, Row, RowGroups, checked_blocks, each_group,
        each_group_in_streams,
    };

    /// Groups a decoded token's kernel reads at once, from as many places in the matrix
    /// ([`each_group_in_streams`]). With one, and its lines asked for ahead, a decoded token
    /// took 9.4–11.3 ms on an Intel Xeon (AVX-512), gate and up 2.9–3.5; with 2, 3, 4, 6 and 8
    /// streams 7.9–8.4, 8.3–8.4, 6.5–7.9, 8.2–8.7 and 7.8–8.6 ms, gate and up 1.9–2.3 with 4
    /// (one thread, the matrices in one piece). Without the lines asked for, 4 streams took
    /// 10.4–10.7 ms.
    const STREAMS: usize = 4;

    /// 8 lanes of 32-bit sums of two 16-bit products each, added to `acc`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dot16_avx2(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_add_epi32(acc, _mm256_madd_epi16(w, x))
    }

    #[inline]
    #[target_feature(enable = "avx2,avx512vnni,avx512vl")]
    fn dot16_vnni(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpwssd_epi32(acc, w, x)
    }

    macro_rules! kernel {
        ($name:ident, $group:ident, $features:literal, $dot:ident) => {
            /// One activation row against `K` groups: per block, each group's four rows' 32
            /// products in two 16-lane multiply-adds each, the four sums gathered into one
            /// vector by horizontal adds, scaled and accumulated together; each group's lines
            /// [`AHEAD`] in its stream asked for.
            #[inline]
            #[target_feature(enable = $features)]
            fn $group<const NIBBLES: bool, const K: usize>(
                groups: [&[u8]; K],
                streams: [&[u8]; K],
                x: Row,
            ) -> [[f32; GROUP]; K] {
                let (blocks, gbb) = checked_blocks::<NIBBLES>(&groups, &x);
                let mask = _mm256_set1_epi16(0x000F);
                // Nibbles 0 and 1 of each u16 lane in the low and high halves, then 2 and 3.
                let (shift01, shift23) = (
                    _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4),
                    _mm256_setr_epi32(8, 8, 8, 8, 12, 12, 12, 12),
                );
                let (mut acc, mut offsets) = ([_mm_setzero_ps(); K], [_mm_setzero_ps(); K]);
                for b in 0..blocks {
                    // SAFETY: block `b` of the activations is in bounds (asserted above);
                    // loads are unaligned.
                    let (x01, x23) = unsafe {
                        let xq = x.values.as_ptr().add(b * BLOCK);
                        (
                            _mm256_loadu_si256(xq.cast()),
                            _mm256_loadu_si256(xq.add(16).cast()),
                        )
                    };
                    for k in 0..K {
                        // SAFETY: block `b` of every group is in bounds (asserted above).
                        let p = unsafe { groups[k].as_ptr().add(b * gbb) };
                        let ahead = streams[k].as_ptr().wrapping_add(b * gbb + AHEAD);
                        // Past the matrix's end the hint is only wasted.
                        for line in (0..gbb).step_by(64) {
                            crate::runtime::prefetch(ahead.wrapping_add(line));
                        }
                        let row = |r: usize| {
                            let zero = _mm256_setzero_si256();
                            if NIBBLES {
                                let v = unsafe {
                                    _mm256_broadcastsi128_si256(_mm_loadu_si128(
                                        p.add(32 + 16 * r).cast(),
                                    ))
                                };
                                let w01 = _mm256_and_si256(_mm256_srlv_epi32(v, shift01), mask);
                                let w23 = _mm256_and_si256(_mm256_srlv_epi32(v, shift23), mask);
                                $dot($dot(zero, w01, x01), w23, x23)
                            } else {
                                let (lo, hi) = unsafe {
                                    (
                                        _mm_loadu_si128(p.add(16 + 32 * r).cast()),
                                        _mm_loadu_si128(p.add(32 + 32 * r).cast()),
                                    )
                                };
                                let (w01, w23) =
                                    (_mm256_cvtepi8_epi16(lo), _mm256_cvtepi8_epi16(hi));
                                $dot($dot(zero, w01, x01), w23, x23)
                            }
                        };
                        let (s0, s1, s2, s3) = (row(0), row(1), row(2), row(3));
                        let h =
                            _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
                        let sums = _mm_add_epi32(
                            _mm256_castsi256_si128(h),
                            _mm256_extracti128_si256::<1>(h),
                        );
                        let d = unsafe { _mm_loadu_ps(p.cast()) };
                        let scale = _mm_mul_ps(d, _mm_set1_ps(x.scales[b]));
                        acc[k] = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), scale, acc[k]);
                        if NIBBLES {
                            let offset = unsafe { _mm_loadu_ps(p.add(16).cast()) };
                            offsets[k] = _mm_fmadd_ps(offset, _mm_set1_ps(x.sums[b]), offsets[k]);
                        }
                    }
                }
                core::array::from_fn(|k| {
                    let mut out = [0.0f32; GROUP];
                    // SAFETY: `out` holds four f32.
                    unsafe { _mm_storeu_ps(out.as_mut_ptr(), _mm_add_ps(acc[k], offsets[k])) };
                    out
                })
            }

            /// A decoded token's one activation row against [`STREAMS`] groups at once, a
            /// prompt's rows one at a time against each group.
            #[target_feature(enable = $features)]
            pub fn $name<const NIBBLES: bool>(
                groups: &RowGroups,
                x: &QRows,
                first_row: usize,
                out: &mut [f32],
            ) {
                if x.len() == 1 {
                    each_group_in_streams(
                        groups,
                        x.row(0),
                        first_row,
                        out,
                        |groups, streams, x| $group::<NIBBLES, STREAMS>(groups, streams, x),
                        |group, stream, x| $group::<NIBBLES, 1>([group], [stream], x)[0],
                    );
                } else {
                    each_group(groups, x, first_row, out, |group, stream, x| {
                        $group::<NIBBLES, 1>([group], [stream], x)[0]
                    });
                }
            }
        };
    }

    kernel!(dots_avx2, group_avx2, "avx2,fma", dot16_avx2);
    kernel!(
        dots_vnni,
        group_vnni,
        "avx2,fma,avx512vnni,avx512vl",
        dot16_vnni
    );
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;
    use core::array::from_fn;

    use super::{
        AHEAD, BLOCK, GROUP, QRows, Row, RowGroups, checked_blocks, each_group_in_streams,
    };

    /// Groups a decoded token's kernel reads at once, from as many places in the matrix
    /// ([`each_group_in_streams`]). With one stream and a load a page ahead standing in for a
    /// prefetch, a 1536×576 product taken in turn from 170 MB of matrices took 102–104 µs in
    /// Chromium; with 4, 6, 8 and 16 streams (and no loads ahead) 84, 65–66, 66–68 and 86 µs
    /// (16 run out of registers).
    const STREAMS: usize = 8;

    /// Every group from `first_row`'s on against every activation row: a decoded token's one
    /// row against [`STREAMS`] groups at once; a prompt's rows two at a time, which then share
    /// each block's weights as taken apart from their nibbles or bytes (175 rows against a
    /// 1536×576 matrix in Chromium: 10.2 → 7.4 ms), a last odd row alone.
    pub fn dots<const NIBBLES: bool>(
        groups: &RowGroups,
        x: &QRows,
        first_row: usize,
        out: &mut [f32],
    ) {
        let m = x.len();
        if m == 1 {
            each_group_in_streams(
                groups,
                x.row(0),
                first_row,
                out,
                |groups, _, x| group_dots::<NIBBLES, STREAMS>(groups, x),
                |group, _, x| group_dots::<NIBBLES, 1>([group], x)[0],
            );
            return;
        }
        let first = first_row / GROUP;
        for (g, out) in out.chunks_mut(GROUP * m).enumerate() {
            let (group, stream) = groups.group(first + g);
            let mut put = |i: usize, sums: [f32; GROUP]| {
                for (r, out) in out.chunks_exact_mut(m).enumerate() {
                    out[i] = sums[r];
                }
            };
            let mut i = 0;
            while i + 2 <= m {
                let [a, b] = group_dots_two::<NIBBLES>(group, stream, [x.row(i), x.row(i + 1)]);
                put(i, a);
                put(i + 1, b);
                i += 2;
            }
            if i < m {
                put(i, group_dots::<NIBBLES, 1>([group], x.row(i))[0]);
            }
        }
    }

    /// One activation row against `K` groups: per block, each group's four rows' 32 products in
    /// four `i32x4.dot_i16x8` each, the four sums transposed into one vector, scaled and
    /// accumulated together. The groups lie apart in the matrix, so the kernel reads `K`
    /// streams, which the hardware prefetcher follows at once: wasm has no prefetch
    /// instruction, and one stream left the kernel waiting on memory (see [`STREAMS`]).
    #[inline(always)]
    fn group_dots<const NIBBLES: bool, const K: usize>(
        groups: [&[u8]; K],
        x: Row,
    ) -> [[f32; GROUP]; K] {
        let (blocks, gbb) = checked_blocks::<NIBBLES>(&groups, &x);
        // Two accumulators a group, for the products and for the offsets, so that the adds
        // overlap.
        let (mut acc, mut offsets) = ([f32x4_splat(0.0); K], [f32x4_splat(0.0); K]);
        for b in 0..blocks {
            // SAFETY: block `b` of every group and of the activations is in bounds (asserted
            // above).
            let xs = unsafe { activations(x.values.as_ptr().add(b * BLOCK)) };
            for k in 0..K {
                // SAFETY: as above.
                let p = unsafe { groups[k].as_ptr().add(b * gbb) };
                let row = |r: usize| dot(unsafe { weights::<NIBBLES>(p, r) }, xs);
                let sums = transpose_add(row(0), row(1), row(2), row(3));
                // SAFETY: as above.
                unsafe { accumulate::<NIBBLES>(p, sums, &x, b, &mut acc[k], &mut offsets[k]) };
            }
        }
        from_fn(|k| lanes(f32x4_add(acc[k], offsets[k])))
    }

    /// [`group_dots`] for two activation rows.
    #[inline(always)]
    fn group_dots_two<const NIBBLES: bool>(
        group: &[u8],
        stream: &[u8],
        [x, y]: [Row; 2],
    ) -> [[f32; GROUP]; 2] {
        let (blocks, gbb) = checked_blocks::<NIBBLES>(&[group], &x);
        checked_blocks::<NIBBLES>(&[group], &y);
        let (mut acc_x, mut offsets_x) = (f32x4_splat(0.0), f32x4_splat(0.0));
        let (mut acc_y, mut offsets_y) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for b in 0..blocks {
            // SAFETY: block `b` of the group and of both rows is in bounds (asserted above).
            let (p, xs, ys) = unsafe {
                (
                    group.as_ptr().add(b * gbb),
                    activations(x.values.as_ptr().add(b * BLOCK)),
                    activations(y.values.as_ptr().add(b * BLOCK)),
                )
            };
            touch_ahead(stream, b * gbb + AHEAD, gbb);
            let row = |r: usize| {
                // SAFETY: as above.
                let w = unsafe { weights::<NIBBLES>(p, r) };
                (dot(w, xs), dot(w, ys))
            };
            let ((x0, y0), (x1, y1), (x2, y2), (x3, y3)) = (row(0), row(1), row(2), row(3));
            // SAFETY: as above.
            unsafe {
                let sums = transpose_add(x0, x1, x2, x3);
                accumulate::<NIBBLES>(p, sums, &x, b, &mut acc_x, &mut offsets_x);
                let sums = transpose_add(y0, y1, y2, y3);
                accumulate::<NIBBLES>(p, sums, &y, b, &mut acc_y, &mut offsets_y);
            }
        }
        [
            lanes(f32x4_add(acc_x, offsets_x)),
            lanes(f32x4_add(acc_y, offsets_y)),
        ]
    }

    /// Loads a byte of each line of `stream[at..at + len]` that exists: wasm has no prefetch
    /// instruction, and a load starts the line's transfer as well.
    #[inline(always)]
    fn touch_ahead(stream: &[u8], at: usize, len: usize) {
        if let Some(ahead) = stream.get(at..at + len) {
            for line in (0..len).step_by(64) {
                // SAFETY: a read of a byte in bounds; volatile, so that it is not dropped.
                let _ = unsafe { core::ptr::read_volatile(&ahead[line]) };
            }
        }
    }

    /// A block's 32 activations (16-bit, in the order the kernels read) as four vectors.
    ///
    /// # Safety
    ///
    /// `xq` points at 32 readable i16.
    #[inline(always)]
    unsafe fn activations(xq: *const i16) -> [v128; 4] {
        // SAFETY: in bounds by the caller's word; loads are unaligned.
        core::array::from_fn(|i| unsafe { v128_load(xq.add(8 * i).cast()) })
    }

    /// Row `r`'s 32 weights of the group block at `p`, widened to four vectors of eight i16.
    ///
    /// # Safety
    ///
    /// `p` points at a whole group block.
    #[inline(always)]
    unsafe fn weights<const NIBBLES: bool>(p: *const u8, r: usize) -> [v128; 4] {
        // SAFETY: the row's values lie within the group block, by the caller's word.
        unsafe {
            if NIBBLES {
                let mask = u16x8_splat(0x000F);
                let v = v128_load(p.add(32 + 16 * r).cast());
                [
                    v128_and(v, mask),
                    v128_and(u16x8_shr(v, 4), mask),
                    v128_and(u16x8_shr(v, 8), mask),
                    u16x8_shr(v, 12),
                ]
            } else {
                let (lo, hi) = (
                    v128_load(p.add(16 + 32 * r).cast()),
                    v128_load(p.add(32 + 32 * r).cast()),
                );
                [
                    i16x8_extend_low_i8x16(lo),
                    i16x8_extend_high_i8x16(lo),
                    i16x8_extend_low_i8x16(hi),
                    i16x8_extend_high_i8x16(hi),
                ]
            }
        }
    }

    /// The block's 32 products of one row, in four lanes of partial sums.
    #[inline(always)]
    fn dot(w: [v128; 4], x: [v128; 4]) -> v128 {
        i32x4_add(
            i32x4_add(i32x4_dot_i16x8(w[0], x[0]), i32x4_dot_i16x8(w[1], x[1])),
            i32x4_add(i32x4_dot_i16x8(w[2], x[2]), i32x4_dot_i16x8(w[3], x[3])),
        )
    }

    /// Adds block `b`'s four rows' integer `sums`, scaled, to `acc`, and their offsets times
    /// the activation block's sum to `offsets` (4-bit types).
    ///
    /// # Safety
    ///
    /// `p` points at a whole group block.
    #[inline(always)]
    unsafe fn accumulate<const NIBBLES: bool>(
        p: *const u8,
        sums: v128,
        x: &Row,
        b: usize,
        acc: &mut v128,
        offsets: &mut v128,
    ) {
        // SAFETY: the scales and offsets lead the group block, by the caller's word.
        unsafe {
            let d = v128_load(p.cast());
            let scale = f32x4_mul(d, f32x4_splat(x.scales[b]));
            *acc = f32x4_add(*acc, f32x4_mul(f32x4_convert_i32x4(sums), scale));
            if NIBBLES {
                let offset = v128_load(p.add(16).cast());
                *offsets = f32x4_add(*offsets, f32x4_mul(offset, f32x4_splat(x.sums[b])));
            }
        }
    }

    #[inline(always)]
    fn lanes(v: v128) -> [f32; GROUP] {
        [
            f32x4_extract_lane::<0>(v),
            f32x4_extract_lane::<1>(v),
            f32x4_extract_lane::<2>(v),
            f32x4_extract_lane::<3>(v),
        ]
    }

    /// Lane `r` of the result is the sum of the four lanes of the `r`-th argument.
    #[inline(always)]
    fn transpose_add(a: v128, b: v128, c: v128, d: v128) -> v128 {
        // (a0 + a2, b0 + b2, a1 + a3, b1 + b3), and likewise for c and d.
        let ab = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(a, b),
            i32x4_shuffle::<2, 6, 3, 7>(a, b),
        );
        let cd = i32x4_add(
            i32x4_shuffle::<0, 4, 1, 5>(c, d),
            i32x4_shuffle::<2, 6, 3, 7>(c, d),
        );
        i32x4_add(
            i32x4_shuffle::<0, 1, 4, 5>(ab, cd),
            i32x4_shuffle::<2, 3, 6, 7>(ab, cd),
        )
    }
}

/// `x` (rows of `cols`) as the products see it after quantization, in input order.
#[cfg(test)]
pub fn quantized_activations(x: &[f32], cols: usize) -> Vec<f32> {
    QRows::quantize(x, cols, Width::Bytes).dequantized()
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

    /// [`weights`] as GGUF dequantizes them, and regrouped.
    fn regrouped(ggml_type: GgmlType, rows: usize, cols: usize) -> (Vec<f32>, RowGroups) {
        let data = weights(ggml_type, rows, cols);
        let weight = dequantize(ggml_type, &data).unwrap();
        (
            weight,
            RowGroups::new(ggml_type, rows, cols, &data).unwrap(),
        )
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
        assert_eq!(got.len(), expected.len(), "{label}");
        for (j, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{label}[{j}]: {g} vs {e}"
            );
        }
    }

    /// Every kernel this CPU can run, over whole groups, a padded last group and a run of rows
    /// from a later group on, against the f64 product of the dequantized weights and the
    /// activations as their 16-bit blocks hold them.
    #[test]
    fn every_kernel_equals_the_product_with_the_quantized_activations() {
        // 77 rows: 20 groups, the last partial; a decoded token's kernels take them 4 or 8 at
        // a time, 8 leaving 4 over.
        let cols = 96;
        for (ggml_type, rows) in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0]
            .into_iter()
            .flat_map(|t| [(t, 13), (t, 77)])
        {
            let (weight, groups) = regrouped(ggml_type, rows, cols);
            for m in [1, 2, 5] {
                let x = groups.quantize(&activations(m, cols));
                let expected = reference(&weight, &x.dequantized(), rows, cols);
                let label = format!("{ggml_type:?} {rows} rows, m={m}");
                let mut out = vec![0.0; rows * m];
                groups.dots(&x, 0, &mut out);
                check(&format!("{label} dispatched"), &out, &expected);
                let mut tail = vec![0.0; (rows - 8) * m];
                groups.dots(&x, 8, &mut tail);
                check(&format!("{label} from row 8"), &tail, &expected[8 * m..]);

                let mut out = vec![0.0; rows * m];
                each_group(&groups, &x, 0, &mut out, |group, _, x| {
                    group_dots_scalar(groups.width, group, x)
                });
                check(&format!("{label} scalar"), &out, &expected);

                #[cfg(target_arch = "x86_64")]
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    let mut out = vec![0.0; rows * m];
                    // SAFETY: checked just above.
                    unsafe {
                        match groups.width {
                            Width::Nibbles => x86::dots_avx2::<true>(&groups, &x, 0, &mut out),
                            Width::Bytes => x86::dots_avx2::<false>(&groups, &x, 0, &mut out),
                        }
                    }
                    check(&format!("{label} avx2"), &out, &expected);
                }
            }
        }
    }

    /// A regrouped row decodes to exactly GGUF's values.
    #[test]
    fn regrouped_rows_decode_to_the_values_of_their_blocks() {
        let (rows, cols) = (7, 64);
        for ggml_type in [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q8_0] {
            let (weight, groups) = regrouped(ggml_type, rows, cols);
            let mut row = vec![0.0; cols];
            for r in 0..rows {
                groups.row_into(r, &mut row);
                assert_eq!(
                    row,
                    weight[r * cols..(r + 1) * cols],
                    "{ggml_type:?} row {r}"
                );
            }
        }
    }

    /// Each value is within half a step of its block's scale, and the block sums are those
    /// of the values as quantized, whichever order the kernels read them in.
    #[test]
    fn activations_round_to_the_nearest_step_of_their_block() {
        let cols = 64;
        let x = activations(3, cols);
        for width in [Width::Nibbles, Width::Bytes] {
            let q = QRows::quantize(&x, cols, width);
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
        let order: std::collections::BTreeSet<_> =
            (0..BLOCK).map(|i| read_order(Width::Nibbles, i)).collect();
        assert_eq!(order.len(), BLOCK, "a permutation");
    }
}
