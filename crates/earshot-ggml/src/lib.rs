//! `earshot-ggml`: whisper.cpp's legacy ggml model file, read and re-encoded without
//! whisper.cpp: what a model is (its header, [`read_info`]) and offline quantization to
//! q8_0 or q5_0 ([`quantize_file`]), so a user can make a smaller, faster model from the f16
//! one they have, with the same rules as whisper.cpp's own `quantize` tool.
//!
//! The file, all little-endian:
//!
//! ```text
//! u32 magic 0x67676d6c ("ggml")
//! i32 × 11 hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
//!                   n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype
//! i32 n_mel, i32 n_fft, f32 × n_mel·n_fft    mel filterbank
//! i32 n_tokens, then per token: u32 len, len bytes
//! tensors to the end of the file, each:
//!   i32 n_dims, i32 name_len, i32 type, i32 × n_dims ne, name bytes, data
//! ```
//!
//! `ftype` is `1000 × quantization version + ggml ftype` (1 = f16; 2007 = q8_0 and 2008 =
//! q5_0 after quantization). Tensor `type` is a ggml type (0 f32, 1 f16, 6 q5_0, 8 q8_0).
//!
//! * [`header`]: the header and [`ModelInfo`] (size, languages, weight type);
//! * [`blocks`]: the q8_0 and q5_0 block encoders, bit for bit as ggml's reference code;
//! * [`quantize`]: the streaming file rewrite (memory bounded by one chunk, whatever the
//!   model's size; every length checked against what the file really holds).

#![warn(missing_docs)]

pub mod blocks;
mod error;
pub mod header;
mod input;
pub mod quantize;

pub use error::GgmlError;
pub use header::{read_hparams, read_info, Hparams, ModelInfo, WeightType};
pub use quantize::{quantize_file, QuantType, QuantizeReport};

/// The first four bytes of every legacy ggml file, read as a little-endian u32.
pub const GGML_MAGIC: u32 = 0x6767_6d6c;
