//! Which of whisper.cpp's alignment-head presets fits a model file, for DTW word timings.
//!
//! whisper.cpp can time each token by dynamic time warping over the cross-attention of a
//! few "alignment heads" (the method of OpenAI's `word_timestamps`). The heads differ per
//! model size and must be named before the model loads; a wrong preset would index layers
//! the model does not have. So the size is read from the file's header (the text decoder's
//! width and depth, and the vocabulary size that tells `.en` models apart); quantized files
//! share their original's heads. An unknown shape gets no DTW, and the words fall back to
//! whisper's timestamp-token estimates.

use std::io::Read;
use std::path::Path;

use whisper_rs::DtwModelPreset;

/// The ggml header fields after the magic, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hparams {
    pub n_vocab: i32,
    pub n_text_state: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
}

/// Reads the header of a ggml whisper model (after checking the magic elsewhere).
pub(crate) fn read_hparams(path: &Path) -> Option<Hparams> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut buf = [0u8; 4 * 12];
    f.read_exact(&mut buf).ok()?;
    let field = |i: usize| i32::from_le_bytes(buf[4 * i..4 * i + 4].try_into().unwrap_or([0; 4]));
    // magic, n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    // n_text_state, n_text_head, n_text_layer, n_mels, ftype
    Some(Hparams {
        n_vocab: field(1),
        n_text_state: field(7),
        n_text_layer: field(9),
        n_mels: field(10),
    })
}

/// The preset for a model of this shape, if whisper.cpp has one.
pub(crate) fn preset(h: Hparams) -> Option<DtwModelPreset> {
    // English-only models have one token fewer than the multilingual ones.
    let en = h.n_vocab == 51_864;
    Some(match (h.n_text_state, h.n_text_layer, en) {
        (384, 4, true) => DtwModelPreset::TinyEn,
        (384, 4, false) => DtwModelPreset::Tiny,
        (512, 6, true) => DtwModelPreset::BaseEn,
        (512, 6, false) => DtwModelPreset::Base,
        (768, 12, true) => DtwModelPreset::SmallEn,
        (768, 12, false) => DtwModelPreset::Small,
        (1024, 24, true) => DtwModelPreset::MediumEn,
        (1024, 24, false) => DtwModelPreset::Medium,
        (1280, 32, false) if h.n_mels == 128 => DtwModelPreset::LargeV3,
        (1280, 4, false) if h.n_mels == 128 => DtwModelPreset::LargeV3Turbo,
        // large-v1 and v2 share a shape: their heads cannot be told apart.
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n_vocab: i32, n_text_state: i32, n_text_layer: i32, n_mels: i32) -> Hparams {
        Hparams {
            n_vocab,
            n_text_state,
            n_text_layer,
            n_mels,
        }
    }

    #[test]
    fn presets_follow_the_shape() {
        assert!(matches!(
            preset(h(51_864, 384, 4, 80)),
            Some(DtwModelPreset::TinyEn)
        ));
        assert!(matches!(
            preset(h(51_865, 512, 6, 80)),
            Some(DtwModelPreset::Base)
        ));
        assert!(preset(h(51_865, 1280, 32, 80)).is_none());
        assert!(preset(h(0, 0, 0, 0)).is_none());
    }
}
