//! One error type for the whole crate. Every message is written for the person who sees it:
//! what went wrong and, where it helps, what to do about it.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum GlimpseError {
    /// The input could not be turned into pixels: not an image, truncated, empty, too large.
    #[error("unsupported image: {0}")]
    UnsupportedImage(String),

    /// Weights are missing, corrupt, of the wrong format or do not fit the network.
    #[error("model weights: {0}")]
    ModelLoad(String),

    /// An argument that cannot be used as given (an empty label list, say).
    #[error("{0}")]
    InvalidArgument(String),

    /// The compute backend failed or is not available on this machine.
    #[error("backend: {0}")]
    Backend(String),

    /// Downloading or converting the model packages failed.
    #[error("model fetch: {0}")]
    Fetch(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl GlimpseError {
    /// The message without the kind that `Display` puts in front ("unsupported image: …"),
    /// for callers that carry the kind separately (the wasm edge's JS error names).
    pub fn detail(&self) -> String {
        match self {
            GlimpseError::UnsupportedImage(m)
            | GlimpseError::ModelLoad(m)
            | GlimpseError::InvalidArgument(m)
            | GlimpseError::Backend(m)
            | GlimpseError::Fetch(m) => m.clone(),
            GlimpseError::Io { .. } => self.to_string(),
        }
    }

    /// A failed read of a result from the device (burn's `into_data_async`), in one line.
    pub fn read_failed(e: impl std::fmt::Debug) -> Self {
        let detail = format!("{e:?}");
        // cubecl-wgpu hears of a lost device through wgpu's device-lost callback and fails every
        // later read as "The device is poisoned", caused by wgpu's reason ("Destroyed: …").
        if detail.contains("device is poisoned") {
            let reason = detail
                .lines()
                .map(str::trim)
                .take_while(|line| *line != "Backtrace:")
                .filter(|line| !line.is_empty() && *line != "Caused by:")
                .last()
                .unwrap_or_default();
            return GlimpseError::Backend(format!("the GPU device was lost (wgpu: {reason})"));
        }
        // burn's errors span lines ("Caused by:"); a message is one line.
        let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
        GlimpseError::Backend(format!(
            "reading the result from the device failed: {detail}"
        ))
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| GlimpseError::Io { context, source }
    }
}

/// A caption model file that cannot be read (truncated, foreign, of an unsupported type).
impl From<crate::caption::gguf::GgufError> for GlimpseError {
    fn from(e: crate::caption::gguf::GgufError) -> Self {
        GlimpseError::ModelLoad(e.to_string())
    }
}

pub type Result<T, E = GlimpseError> = std::result::Result<T, E>;
