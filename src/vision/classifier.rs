//! The classifier as every surface uses it: weights in, probabilities and top-k out.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::efficientnet::{EfficientNet, EfficientNetConfig};
use super::labels;
use super::preprocess::CROP;
use crate::error::Result;
use crate::runtime::load_burnpack;
#[cfg(not(target_arch = "wasm32"))]
use crate::runtime::{Rows, rows};

/// One ranked class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub prob: f32,
}

pub struct Classifier {
    model: EfficientNet,
    device: Device,
}

impl Classifier {
    /// Loads EfficientNet-Lite0 weights in burnpack format (f32 or f16 on disk; f32 in memory).
    pub fn from_burnpack(bytes: Vec<u8>, device: Device) -> Result<Self> {
        let mut model = EfficientNetConfig::lite0().init(&device);
        load_burnpack(&mut model, bytes, "EfficientNet-Lite0")?;
        let model = model.laid_out_for_device();
        Ok(Self { model, device })
    }

    pub fn model(&self) -> &EfficientNet {
        &self.model
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Stacks prepared inputs (`[3, 224, 224]` each, see [`super::preprocess::prepare`]).
    pub fn batch(&self, inputs: &[Vec<f32>]) -> Tensor<4> {
        let side = CROP as usize;
        let data = inputs.concat();
        Tensor::from_data(
            TensorData::new(data, [inputs.len(), 3, side, side]),
            &self.device,
        )
    }

    pub fn logits(&self, batch: Tensor<4>) -> Tensor<2> {
        self.model.forward(batch)
    }

    pub fn probabilities(&self, batch: Tensor<4>) -> Tensor<2> {
        softmax(self.logits(batch), 1)
    }

    /// Pooled features `[N, 1280]` (what a taught head reads) and class probabilities
    /// `[N, 1000]`, from one pass.
    pub fn features_and_probabilities(&self, batch: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        self.read_out(self.feature_map(batch))
    }

    /// The network's head output before pooling, `[N, 1280, 7, 7]`: probabilities, pooled
    /// features and class maps are all read from it ([`Classifier::read_out`],
    /// [`Classifier::maps_of`]), so one pass over a batch serves all three.
    pub fn feature_map(&self, batch: Tensor<4>) -> Tensor<4> {
        self.model.feature_map(batch)
    }

    /// Pooled features `[N, 1280]` and class probabilities `[N, 1000]` of a feature map.
    pub fn read_out(&self, feature_map: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let features = EfficientNet::pool(feature_map);
        let probs = softmax(self.model.fc.forward(features.clone()), 1);
        (features, probs)
    }

    /// Class activation maps `[N, K, cells]` of `classes` (K of them) for each input: the last
    /// layer's weights for those classes applied at every cell of the feature map before
    /// pooling, so each map's mean is the class's logit minus its bias. Only the K rows of
    /// weights take part, and everything stays on the device until the caller reads it.
    pub fn class_maps(&self, batch: Tensor<4>, classes: &[usize]) -> Tensor<3> {
        self.maps_of(self.feature_map(batch), classes)
    }

    /// [`Classifier::class_maps`] of a feature map already computed.
    pub fn maps_of(&self, feature_map: Tensor<4>, classes: &[usize]) -> Tensor<3> {
        let [n, channels, h, w] = feature_map.dims();
        let indices: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
        let indices =
            Tensor::<1, Int>::from_data(TensorData::new(indices, [classes.len()]), &self.device);
        // The weights are stored `[1280, 1000]` (input by output).
        let weights = self.model.fc.weight.val().select(1, indices).transpose();
        weights
            .unsqueeze::<3>()
            .matmul(feature_map.reshape([n, channels, h * w]))
    }

    /// Class probabilities, one row per input. Blocks until the device is done; in the
    /// browser use [`Classifier::probabilities`] with `into_data_async` instead.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify(&self, inputs: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let probs = self.probabilities(self.batch(inputs));
        rows(probs.into_data())
    }

    /// Class probabilities and pooled features, one row per input (see [`Classifier::classify`]).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn classify_with_features(&self, inputs: &[Vec<f32>]) -> Result<(Rows, Rows)> {
        if inputs.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let (features, probs) = self.features_and_probabilities(self.batch(inputs));
        Ok((rows(probs.into_data())?, rows(features.into_data())?))
    }
}

/// The `k` most probable ImageNet classes, best first.
pub fn top_k(probs: &[f32], k: usize) -> Vec<Prediction> {
    let classes = labels::imagenet();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|index| Prediction {
            index,
            label: classes
                .get(index)
                .map_or_else(|| format!("class {index}"), |c| c.name().to_string()),
            prob: probs[index],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_by_probability_and_names_classes() {
        let mut probs = vec![0.0; 1000];
        probs[243] = 0.7;
        probs[1] = 0.2;
        probs[5] = 0.1;
        let top = top_k(&probs, 2);
        assert_eq!(top[0].index, 243);
        assert_eq!(top[0].label, "bull mastiff");
        assert_eq!(top[1].label, "goldfish");
    }

    #[test]
    fn foreign_weight_files_are_refused_by_name() {
        let err =
            Classifier::from_burnpack(b"PK\x03\x04 this is a zip file".to_vec(), Device::flex())
                .err()
                .unwrap();
        assert!(err.to_string().contains("not in burnpack format"), "{err}");
    }
}
