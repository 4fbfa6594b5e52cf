//! The caption model's quantized matrix products on a real GPU, at every shape SmolLM2-135M
//! multiplies (576 wide, 1536 in the MLP, 192 for the grouped keys and values, 49152 for the
//! vocabulary; 1 row while decoding, up to a prompt's length before): each must run and
//! match the same product on the CPU. The GPU chooses its kernel from the adapter's limits,
//! so this needs a real adapter: `cargo test --release --test gpu_products -- --ignored`.
//! Before the prompt's products were expanded to f32 (see `src/caption/quant.rs`), every
//! shape with more than one row panicked on an H200 (Vulkan) while lavapipe and SwiftShader
//! ran them all.

use burn::tensor::{Device, Tensor, TensorData};
use glimpse::caption::blocks::dequantize;
use glimpse::caption::gguf::GgmlType;
use glimpse::caption::quant::QuantizedMatrix;

/// `[rows, cols]` of every matrix in SmolLM2-135M, as `x · Wᵀ` multiplies them.
const MATRICES: [(usize, usize); 6] = [
    (576, 576),
    (192, 576),
    (1536, 576),
    (576, 1536),
    (49152, 576),
    (64, 64),
];
/// Rows of `x`: one decoded token, a short and a long prompt.
const POSITIONS: [usize; 3] = [1, 37, 160];

/// Random Q4_1 blocks (20 bytes per 32 weights) from a fixed seed.
fn q4_1(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut data = Vec::with_capacity(rows * cols / 32 * 20);
    for _ in 0..rows * cols / 32 {
        // f16 bits: a scale in [2⁻⁷, 2⁻⁶), a minimum of either sign in [2⁻⁵, 2⁻⁴).
        let scale = 0x2000 | (next() % 0x400) as u16;
        let min = 0x2800 | (next() % 0x400) as u16 | ((next() & 1) as u16) << 15;
        data.extend(scale.to_le_bytes());
        data.extend(min.to_le_bytes());
        data.extend((0..16).map(|_| next() as u8));
    }
    data
}

fn values(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_to_vec().expect("f32 values")
}

#[test]
#[ignore = "needs a GPU adapter"]
fn quantized_products_at_smollm2_shapes_run_and_match_the_cpu_on_wgpu() {
    let gpu = Device::wgpu_options().init().expect("a wgpu adapter");
    let mut worst = 0f32;
    for (rows, cols) in MATRICES {
        let data = q4_1(rows, cols, (rows * 31 + cols) as u64);
        let weight = dequantize(GgmlType::Q4_1, &data).unwrap();
        let on_gpu = QuantizedMatrix::new(GgmlType::Q4_1, rows, cols, &data, &gpu)
            .unwrap()
            .unwrap();
        for positions in POSITIONS {
            let case = format!("{positions}x{cols} · [{rows}, {cols}]ᵀ");
            let x: Vec<f32> = (0..positions * cols)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
                .collect();
            let on = |device: &Device| {
                Tensor::<3>::from_data(TensorData::new(x.clone(), [1, positions, cols]), device)
            };
            let expected: Vec<f32> = {
                let w = Tensor::<2>::from_data(
                    TensorData::new(weight.clone(), [rows, cols]),
                    &Device::flex(),
                );
                values(on(&Device::flex()).matmul(w.transpose().unsqueeze()))
            };
            let got = values(on_gpu.forward(on(&gpu)));
            let err = got
                .iter()
                .zip(&expected)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            eprintln!("{case}: max relative error {err:.2e}");
            worst = worst.max(err);
        }
    }
    assert!(worst < 1e-3, "worst relative error {worst:.2e}");
}
