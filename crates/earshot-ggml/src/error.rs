//! What can be wrong with a model file, each said so the user knows what to do.

/// Reading or quantizing a model failed.
#[derive(Debug, thiserror::Error)]
pub enum GgmlError {
    /// The file system refused (missing file, permissions, full disk).
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The file does not start with the ggml magic.
    #[error("not a whisper.cpp ggml model (the file does not start with the ggml magic)")]
    NotGgml,
    /// The file ends before what its header promises.
    #[error("the file is truncated: {what} needs {need} bytes at offset {at} but only {have} remain (an interrupted download?)")]
    Truncated {
        /// The part being read.
        what: String,
        /// Its offset in the file.
        at: u64,
        /// Bytes it needs.
        need: u64,
        /// Bytes left in the file.
        have: u64,
    },
    /// The file ends at a tensor boundary, before all of the model's tensors.
    #[error("the file is truncated: it holds {have} of the {want} tensors a whisper model with these layers has (an interrupted download?)")]
    MissingTensors {
        /// Tensors found.
        have: usize,
        /// Tensors the hyper-parameters call for.
        want: usize,
    },
    /// A header field that no whisper model has.
    #[error("malformed ggml model: {0}")]
    Malformed(String),
    /// The input's weights are quantized already: quantizing again would only lose accuracy.
    #[error("the model is already quantized ({0}); quantize the f16 model instead")]
    AlreadyQuantized(String),
    /// The input's weights are neither f16 nor quantized (f32).
    #[error("the model's weights are {0}; only f16 models can be quantized")]
    NotF16(String),
}

impl GgmlError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GgmlError::Io {
            context: context.into(),
            source,
        }
    }
}
