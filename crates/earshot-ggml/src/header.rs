//! The model header: hyper-parameters, mel filterbank and vocabulary, and what they say
//! about the model ([`ModelInfo`]: its size class, whether it is multilingual, how its
//! weights are stored).

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use crate::input::Input;
use crate::{GgmlError, GGML_MAGIC};

/// `ftype` = `QNT_VERSION_FACTOR × quantization version + ggml ftype`.
pub(crate) const QNT_VERSION_FACTOR: i32 = 1000;
/// Largest mel filterbank dimension accepted (whisper uses 80 or 128 × 201).
const MAX_MEL_DIM: i32 = 4096;
/// Most vocabulary entries accepted (whisper has 51864-51866).
const MAX_TOKENS: i32 = 1_000_000;
/// Longest vocabulary entry accepted, bytes.
const MAX_TOKEN_BYTES: u32 = 4096;

/// The eleven hyper-parameters, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    /// Vocabulary size (51864 English-only, 51865+ multilingual).
    pub n_vocab: i32,
    /// Encoder positions (1500 = 30 s).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions.
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands.
    pub n_mels: i32,
    /// Weight type: `1000 × quantization version + ggml ftype`.
    pub ftype: i32,
}

impl Hparams {
    pub(crate) fn from_array(a: [i32; 11]) -> Self {
        Hparams {
            n_vocab: a[0],
            n_audio_ctx: a[1],
            n_audio_state: a[2],
            n_audio_head: a[3],
            n_audio_layer: a[4],
            n_text_ctx: a[5],
            n_text_state: a[6],
            n_text_head: a[7],
            n_text_layer: a[8],
            n_mels: a[9],
            ftype: a[10],
        }
    }

    /// Tensors a whisper model with these layers has: 7 encoder-wide (conv1 and conv2
    /// weight and bias, positional embedding, final norm weight and bias), 15 per encoder
    /// layer, 4 decoder-wide (positional and token embeddings, final norm) and 24 per
    /// decoder layer. A file with fewer was cut short.
    pub fn tensor_count(&self) -> usize {
        7 + 15 * self.n_audio_layer.max(0) as usize + 4 + 24 * self.n_text_layer.max(0) as usize
    }

    pub(crate) fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }
}

/// How a model's matrices are stored (the ggml ftype of the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightType {
    /// All f32.
    F32,
    /// f16 matrices (the published conversions).
    F16,
    /// 4-bit, one scale per 32 values.
    Q4_0,
    /// 4-bit, scale and minimum per 32 values.
    Q4_1,
    /// 5-bit, one scale per 32 values.
    Q5_0,
    /// 5-bit, scale and minimum per 32 values.
    Q5_1,
    /// 8-bit, one scale per 32 values.
    Q8_0,
    /// Anything else (k-quants...), by ggml ftype number.
    Other(i32),
}

impl WeightType {
    /// From the header's `ftype` (the quantization version is ignored).
    pub fn from_ftype(ftype: i32) -> Self {
        match ftype.rem_euclid(QNT_VERSION_FACTOR) {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            7 => Self::Q8_0,
            8 => Self::Q5_0,
            9 => Self::Q5_1,
            n => Self::Other(n),
        }
    }

    /// The name whisper.cpp's model files use (`f16`, `q8_0`, ...).
    pub fn name(self) -> String {
        match self {
            Self::F32 => "f32".into(),
            Self::F16 => "f16".into(),
            Self::Q4_0 => "q4_0".into(),
            Self::Q4_1 => "q4_1".into(),
            Self::Q5_0 => "q5_0".into(),
            Self::Q5_1 => "q5_1".into(),
            Self::Q8_0 => "q8_0".into(),
            Self::Other(n) => format!("ggml ftype {n}"),
        }
    }

    /// Whether the matrices are quantized (neither f32 nor f16).
    pub fn is_quantized(self) -> bool {
        !matches!(self, Self::F32 | Self::F16)
    }
}

impl std::fmt::Display for WeightType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// What a model file's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// The hyper-parameters.
    pub hparams: Hparams,
    /// How the matrices are stored.
    pub weights: WeightType,
    /// Bytes of the whole file.
    pub file_bytes: u64,
}

impl ModelInfo {
    /// Multilingual models have 51865 tokens or more (whisper.cpp's own test).
    pub fn multilingual(&self) -> bool {
        self.hparams.n_vocab >= 51865
    }

    /// `tiny`, `base`, `small`, `medium` or `large`, from the encoder depth.
    pub fn size_class(&self) -> Option<&'static str> {
        Some(match self.hparams.n_audio_layer {
            4 => "tiny",
            6 => "base",
            12 => "small",
            24 => "medium",
            32 => "large",
            _ => return None,
        })
    }

    /// Compute per decode relative to tiny (4+4 layers of width 384): layers × width², the
    /// matrix work that dominates both encoder and decoder. A first guess at what a model
    /// costs before its decodes have been measured (base: 2.7; measured about 2.3).
    pub fn relative_compute(&self) -> f64 {
        let h = &self.hparams;
        let work = |layers: i32, width: i32| layers.max(0) as f64 * (width.max(0) as f64).powi(2);
        let tiny = 2.0 * work(4, 384);
        (work(h.n_audio_layer, h.n_audio_state) + work(h.n_text_layer, h.n_text_state)) / tiny
    }
}

/// The header and what follows it up to the first tensor.
pub(crate) struct Header {
    pub hparams: Hparams,
    /// `n_mel`, `n_fft` and the filterbank, as in the file.
    pub mel: Vec<u8>,
    /// `n_tokens` and the entries, as in the file.
    pub vocab: Vec<u8>,
}

fn read_hparams_from<R: std::io::Read>(input: &mut Input<R>) -> Result<Hparams, GgmlError> {
    if input.remaining() < 4 || input.u32("magic")? != GGML_MAGIC {
        return Err(GgmlError::NotGgml);
    }
    let mut hp = [0i32; 11];
    for v in hp.iter_mut() {
        *v = input.i32("hparams")?;
    }
    let hparams = Hparams::from_array(hp);
    if hp[..10].iter().any(|&v| v <= 0) || hparams.ftype < 0 {
        return Err(GgmlError::Malformed(format!(
            "hyper-parameters {hp:?} include a non-positive size"
        )));
    }
    Ok(hparams)
}

/// Reads everything before the tensors, checking each length against the file.
pub(crate) fn read_header<R: std::io::Read>(input: &mut Input<R>) -> Result<Header, GgmlError> {
    let hparams = read_hparams_from(input)?;
    let n_mel = input.i32("mel filterbank size")?;
    let n_fft = input.i32("mel filterbank size")?;
    if !(1..=MAX_MEL_DIM).contains(&n_mel) || !(1..=MAX_MEL_DIM).contains(&n_fft) {
        return Err(GgmlError::Malformed(format!(
            "mel filterbank of {n_mel} × {n_fft}"
        )));
    }
    let filters = input.bytes("mel filterbank", 4 * n_mel as u64 * n_fft as u64)?;
    let mut mel = Vec::with_capacity(8 + filters.len());
    mel.extend_from_slice(&n_mel.to_le_bytes());
    mel.extend_from_slice(&n_fft.to_le_bytes());
    mel.extend_from_slice(&filters);

    let n_tokens = input.i32("vocabulary size")?;
    if !(0..=MAX_TOKENS).contains(&n_tokens) {
        return Err(GgmlError::Malformed(format!(
            "vocabulary of {n_tokens} entries"
        )));
    }
    let mut vocab = n_tokens.to_le_bytes().to_vec();
    for _ in 0..n_tokens {
        let len = input.u32("vocabulary entry")?;
        if len > MAX_TOKEN_BYTES {
            return Err(GgmlError::Malformed(format!(
                "vocabulary entry of {len} bytes at offset {}",
                input.pos() - 4
            )));
        }
        vocab.extend_from_slice(&len.to_le_bytes());
        vocab.extend_from_slice(&input.bytes("vocabulary entry", len as u64)?);
    }
    Ok(Header {
        hparams,
        mel,
        vocab,
    })
}

/// Reads a model file's header up to its tensors, checking it.
pub fn read_info(path: &Path) -> Result<ModelInfo, GgmlError> {
    info(path, |input| Ok(read_header(input)?.hparams))
}

/// Reads only the first 48 bytes (magic and hyper-parameters): what a model is, cheaply.
pub fn read_hparams(path: &Path) -> Result<ModelInfo, GgmlError> {
    info(path, read_hparams_from)
}

fn info(
    path: &Path,
    read: impl FnOnce(&mut Input<BufReader<File>>) -> Result<Hparams, GgmlError>,
) -> Result<ModelInfo, GgmlError> {
    let file =
        File::open(path).map_err(|e| GgmlError::io(format!("opening {}", path.display()), e))?;
    let len = file
        .metadata()
        .map_err(|e| GgmlError::io(format!("reading {}", path.display()), e))?
        .len();
    let hparams = read(&mut Input::new(BufReader::new(file), len))?;
    Ok(ModelInfo {
        hparams,
        weights: WeightType::from_ftype(hparams.ftype),
        file_bytes: len,
    })
}
