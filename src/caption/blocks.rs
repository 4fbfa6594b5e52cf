//! The block arithmetic of GGML's encodings: how Q4_0, Q4_1, Q8_0, the K-quants, F16 and
//! BF16 hold their values, decoded to f32. The container that says which encoding a tensor
//! uses is [`super::gguf`]; the products that decode blocks in registers are in
//! [`super::quant`].

use super::gguf::{GgmlType, GgufError, err};

/// Dequantizes a tensor's raw data to f32 (for reference checks and for layers that are not
/// run quantized).
pub fn dequantize(ggml_type: GgmlType, data: &[u8]) -> Result<Vec<f32>, GgufError> {
    let (per_block, bytes) = ggml_type.block();
    let mut out = vec![0.0; data.len() / bytes as usize * per_block as usize];
    dequantize_into(ggml_type, data, &mut out)?;
    Ok(out)
}

/// Dequantizes whole blocks of raw data into `out`, which holds exactly as many values: the
/// allocation-free form used row by row by the quantized matrix products.
pub fn dequantize_into(ggml_type: GgmlType, data: &[u8], out: &mut [f32]) -> Result<(), GgufError> {
    let (per_block, bytes) = ggml_type.block();
    let (per_block, bytes) = (per_block as usize, bytes as usize);
    if !data.len().is_multiple_of(bytes) || data.len() / bytes * per_block != out.len() {
        return err(format!(
            "{} bytes is not a whole number of {ggml_type:?} blocks holding {} values",
            data.len(),
            out.len()
        ));
    }
    let f16 = |b: &[u8]| half_to_f32(u16::from_le_bytes([b[0], b[1]]));
    let blocks = data
        .chunks_exact(bytes)
        .zip(out.chunks_exact_mut(per_block));
    match ggml_type {
        GgmlType::F32 => {
            for (b, o) in blocks {
                o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        GgmlType::F16 => {
            for (b, o) in blocks {
                o[0] = f16(b);
            }
        }
        GgmlType::BF16 => {
            for (b, o) in blocks {
                o[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
            }
        }
        GgmlType::Q4_0 => {
            for (block, o) in blocks {
                let d = f16(&block[0..2]);
                let (low, high) = o.split_at_mut(16);
                for ((&q, l), h) in block[2..].iter().zip(low).zip(high) {
                    *l = ((q & 0x0F) as i32 - 8) as f32 * d;
                    *h = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
        }
        GgmlType::Q4_1 => {
            for (block, o) in blocks {
                let (d, m) = (f16(&block[0..2]), f16(&block[2..4]));
                let (low, high) = o.split_at_mut(16);
                for ((&q, l), h) in block[4..].iter().zip(low).zip(high) {
                    *l = (q & 0x0F) as f32 * d + m;
                    *h = (q >> 4) as f32 * d + m;
                }
            }
        }
        GgmlType::Q8_0 => {
            for (block, o) in blocks {
                let d = f16(&block[0..2]);
                for (&q, v) in block[2..].iter().zip(o) {
                    *v = q as i8 as f32 * d;
                }
            }
        }
        GgmlType::Q4K | GgmlType::Q5K => {
            let five = ggml_type == GgmlType::Q5K;
            for (block, o) in blocks {
                let (d, dmin) = (f16(&block[0..2]), f16(&block[2..4]));
                let scales = &block[4..16];
                let (high, low) = if five {
                    (Some(&block[16..48]), &block[48..176])
                } else {
                    (None, &block[16..144])
                };
                // Four runs of 64 values; each byte's low nibbles make the first 32, its high
                // nibbles the next 32, each half with its own 6-bit scale and minimum.
                for (run, (q, out)) in low.chunks_exact(32).zip(o.chunks_exact_mut(64)).enumerate()
                {
                    for half in 0..2 {
                        let (scale, min) = k_scale_min(2 * run + half, scales);
                        let (dl, ml) = (d * scale as f32, dmin * min as f32);
                        let bit = 2 * run + half;
                        for (l, v) in out[half * 32..half * 32 + 32].iter_mut().enumerate() {
                            let mut n = if half == 0 { q[l] & 0x0F } else { q[l] >> 4 };
                            if let Some(h) = high {
                                n |= ((h[l] >> bit) & 1) << 4;
                            }
                            *v = dl * n as f32 - ml;
                        }
                    }
                }
            }
        }
        GgmlType::Q6K => {
            for (block, o) in blocks {
                let (low, high) = (&block[0..128], &block[128..192]);
                let scales = &block[192..208];
                let d = f16(&block[208..210]);
                // Two halves of 128 values; in each, value `32·k + l` takes its low 4 bits from
                // byte `l + 32·(k mod 2)` of `low` (low nibble for k < 2) and its high 2 bits
                // from `high[l]`, bits 2k..2k+2.
                for half in 0..2 {
                    let (ql, qh) = (
                        &low[half * 64..half * 64 + 64],
                        &high[half * 32..half * 32 + 32],
                    );
                    for k in 0..4 {
                        for l in 0..32 {
                            let byte = ql[l + 32 * (k % 2)];
                            let nibble = if k < 2 { byte & 0x0F } else { byte >> 4 };
                            let q = (nibble | ((qh[l] >> (2 * k)) & 3) << 4) as i32 - 32;
                            let scale = scales[half * 8 + l / 16 + 2 * k] as i8;
                            o[half * 128 + 32 * k + l] = d * scale as f32 * q as f32;
                        }
                    }
                }
            }
        }
        other => return err(format!("dequantizing {other:?} is not supported yet")),
    }
    Ok(())
}

/// The 6-bit scale and minimum of sub-block `j` (0..8) of a Q4_K or Q5_K block.
fn k_scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// IEEE 754 half precision to f32.
pub fn half_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1F) as u32;
    let frac = (h & 0x3FF) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalize it.
            let shift = frac.leading_zeros() - 21;
            sign | ((127 - 15 + 1 - shift) << 23) | ((frac << shift) & 0x3FF) << 13
        }
        (0x1F, _) => sign | 0x7F80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_blocks_store_low_nibbles_first() {
        let mut q4_0 = 0x3C00u16.to_le_bytes().to_vec();
        q4_0.extend([0x9F; 16]); // low nibble 15, high nibble 9
        let w = dequantize(GgmlType::Q4_0, &q4_0).unwrap();
        assert_eq!((w[0], w[16]), (7.0, 1.0));

        let mut q4_1 = 0x4000u16.to_le_bytes().to_vec(); // d = 2
        q4_1.extend(0xBC00u16.to_le_bytes()); // m = -1
        q4_1.extend([0x21; 16]);
        let w = dequantize(GgmlType::Q4_1, &q4_1).unwrap();
        assert_eq!((w[0], w[16]), (1.0, 3.0));
    }

    /// Two random blocks of each K-quant, decoded by the `gguf` Python package.
    #[test]
    fn k_quants_decode_like_the_reference() {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/golden/gguf_kquants.json")).unwrap();
        for (name, ty) in [
            ("Q4_K", GgmlType::Q4K),
            ("Q5_K", GgmlType::Q5K),
            ("Q6_K", GgmlType::Q6K),
        ] {
            let hex = golden[name]["bytes"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            let got = dequantize(ty, &bytes).unwrap();
            let expected = golden[name]["values"].as_array().unwrap();
            assert_eq!(got.len(), expected.len(), "{name}");
            for (i, (g, e)) in got.iter().zip(expected).enumerate() {
                let e = e.as_f64().unwrap() as f32;
                assert!(
                    (g - e).abs() <= 1e-5 * e.abs().max(1.0),
                    "{name}[{i}]: {g} vs {e}"
                );
            }
        }
    }

    #[test]
    fn half_precision_decodes_normal_subnormal_and_special_values() {
        assert_eq!(half_to_f32(0x3C00), 1.0);
        assert_eq!(half_to_f32(0xC000), -2.0);
        assert_eq!(half_to_f32(0x0001), 5.960_464_5e-8);
        assert!(half_to_f32(0x7E00).is_nan());
        assert_eq!(half_to_f32(0x7C00), f32::INFINITY);
    }
}
