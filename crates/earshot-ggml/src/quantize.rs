//! Offline quantization of an f16 model file to q8_0 or q5_0, with whisper.cpp's rules:
//! every 2-D f16 `*.weight` tensor whose rows are whole blocks (the attention, MLP and
//! token-embedding matrices, which whisper.cpp creates with the model's weight type) is
//! re-encoded block by block; conv kernels (3-D, f16), biases, layer norms and positional
//! embeddings (f32) are copied unchanged; the header's `ftype` becomes
//! `2000 + ggml ftype` (2007 q8_0, 2008 q5_0), which is how whisper.cpp recognises a
//! quantized file.
//!
//! The rewrite streams: it holds the header and one chunk of one tensor at a time, and
//! writes `<output>.part`, renamed into place only when complete.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;

use crate::blocks::{self, Q5_0_BLOCK, Q8_0_BLOCK, QK};
use crate::header::{read_header, QNT_VERSION_FACTOR};
use crate::input::Input;
use crate::{GgmlError, WeightType};

/// The quantization version written in `ftype` (ggml's `GGML_QNT_VERSION`).
const QNT_VERSION: i32 = 2;
/// Most dimensions a tensor may have (ggml's `GGML_MAX_DIMS`).
const MAX_DIMS: i32 = 4;
/// Longest tensor name accepted.
const MAX_NAME: i32 = 512;
/// Blocks converted per step: bounds memory whatever the tensor's size.
const CHUNK_BLOCKS: usize = 4096;

/// ggml tensor types this module reads or writes.
const TYPE_F32: i32 = 0;
const TYPE_F16: i32 = 1;

/// A target quantization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuantType {
    /// 8-bit.
    Q8_0,
    /// 5-bit.
    Q5_0,
}

impl QuantType {
    /// `q8_0` / `q5_0`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "q8_0" => Some(Self::Q8_0),
            "q5_0" => Some(Self::Q5_0),
            _ => None,
        }
    }

    /// `q8_0` / `q5_0`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Q8_0 => "q8_0",
            Self::Q5_0 => "q5_0",
        }
    }

    /// (ggml tensor type, ggml ftype).
    fn ids(self) -> (i32, i32) {
        match self {
            Self::Q8_0 => (8, 7),
            Self::Q5_0 => (6, 8),
        }
    }

    fn block_bytes(self) -> usize {
        match self {
            Self::Q8_0 => Q8_0_BLOCK,
            Self::Q5_0 => Q5_0_BLOCK,
        }
    }
}

/// What a quantization did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizeReport {
    /// Tensors in the model.
    pub tensors: usize,
    /// Tensors re-encoded.
    pub quantized: usize,
    /// Input bytes.
    pub in_bytes: u64,
    /// Output bytes.
    pub out_bytes: u64,
}

/// Quantizes the f16 model at `input` into a new file at `output`. Nothing is left at
/// `output` on failure.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    kind: QuantType,
) -> Result<QuantizeReport, GgmlError> {
    let src =
        File::open(input).map_err(|e| GgmlError::io(format!("opening {}", input.display()), e))?;
    let len = src
        .metadata()
        .map_err(|e| GgmlError::io(format!("reading {}", input.display()), e))?
        .len();
    let part = part_path(output);
    let dst = File::create(&part)
        .map_err(|e| GgmlError::io(format!("creating {}", part.display()), e))?;
    let result = (|| {
        let mut w = BufWriter::new(dst);
        let report = quantize(BufReader::new(src), len, &mut w, kind)?;
        let f = w
            .into_inner()
            .map_err(|e| GgmlError::io(format!("writing {}", part.display()), e.into_error()))?;
        f.sync_all()
            .map_err(|e| GgmlError::io(format!("writing {}", part.display()), e))?;
        std::fs::rename(&part, output)
            .map_err(|e| GgmlError::io(format!("renaming to {}", output.display()), e))?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

fn part_path(output: &Path) -> PathBuf {
    let mut s = output.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// Quantizes the `len`-byte f16 model read from `r` into `w`.
pub fn quantize<R: Read, W: Write>(
    r: R,
    len: u64,
    w: &mut W,
    kind: QuantType,
) -> Result<QuantizeReport, GgmlError> {
    let mut input = Input::new(r, len);
    let mut out = Counted { w, n: 0 };
    let header = read_header(&mut input)?;
    let mut hp = header.hparams;
    match WeightType::from_ftype(hp.ftype) {
        WeightType::F16 => {}
        t if t.is_quantized() => return Err(GgmlError::AlreadyQuantized(t.name())),
        t => return Err(GgmlError::NotF16(t.name())),
    }
    let (ttype_q, ftype_q) = kind.ids();
    hp.ftype = QNT_VERSION * QNT_VERSION_FACTOR + ftype_q;
    out.put(&crate::GGML_MAGIC.to_le_bytes())?;
    for v in hp.to_array() {
        out.put(&v.to_le_bytes())?;
    }
    out.put(&header.mel)?;
    out.put(&header.vocab)?;

    let mut report = QuantizeReport {
        tensors: 0,
        quantized: 0,
        in_bytes: len,
        out_bytes: 0,
    };
    while input.remaining() > 0 {
        let t = read_tensor_header(&mut input)?;
        let quantize = t.ne.len() == 2
            && t.name.ends_with(b".weight")
            && t.ttype == TYPE_F16
            && (t.ne[0] as usize).is_multiple_of(QK);
        let ttype = if quantize { ttype_q } else { t.ttype };
        for v in [t.ne.len() as i32, t.name.len() as i32, ttype] {
            out.put(&v.to_le_bytes())?;
        }
        for &n in &t.ne {
            out.put(&n.to_le_bytes())?;
        }
        out.put(&t.name)?;
        if quantize {
            quantize_data(&mut input, &mut out, &t, kind)?;
            report.quantized += 1;
        } else {
            copy_data(&mut input, &mut out, &t)?;
        }
        report.tensors += 1;
    }
    let want = header.hparams.tensor_count();
    if report.tensors < want {
        return Err(GgmlError::MissingTensors {
            have: report.tensors,
            want,
        });
    }
    report.out_bytes = out.n;
    Ok(report)
}

struct TensorHeader {
    name: Vec<u8>,
    ne: Vec<i32>,
    ttype: i32,
    elements: u64,
}

impl TensorHeader {
    fn label(&self) -> String {
        format!("tensor {}", String::from_utf8_lossy(&self.name))
    }
}

fn read_tensor_header<R: Read>(input: &mut Input<R>) -> Result<TensorHeader, GgmlError> {
    let at = input.pos();
    let n_dims = input.i32("tensor header")?;
    let name_len = input.i32("tensor header")?;
    let ttype = input.i32("tensor header")?;
    if !(1..=MAX_DIMS).contains(&n_dims) || !(1..=MAX_NAME).contains(&name_len) {
        return Err(GgmlError::Malformed(format!(
            "tensor at offset {at} has {n_dims} dimensions and a {name_len}-byte name"
        )));
    }
    let mut ne = Vec::with_capacity(n_dims as usize);
    let mut elements: u64 = 1;
    for _ in 0..n_dims {
        let n = input.i32("tensor shape")?;
        if n <= 0 {
            return Err(GgmlError::Malformed(format!(
                "tensor at offset {at} has a dimension of {n}"
            )));
        }
        elements = elements.saturating_mul(n as u64);
        ne.push(n);
    }
    let name = input.bytes("tensor name", name_len as u64)?;
    let t = TensorHeader {
        name,
        ne,
        ttype,
        elements,
    };
    if ttype != TYPE_F32 && ttype != TYPE_F16 {
        return Err(GgmlError::Malformed(format!(
            "{} at offset {at} has ggml type {ttype}; an f16 model holds only f32 and f16 tensors",
            t.label()
        )));
    }
    Ok(t)
}

fn element_bytes(ttype: i32) -> u64 {
    if ttype == TYPE_F32 {
        4
    } else {
        2
    }
}

fn copy_data<R: Read, W: Write>(
    input: &mut Input<R>,
    out: &mut Counted<'_, W>,
    t: &TensorHeader,
) -> Result<(), GgmlError> {
    let total = t.elements.saturating_mul(element_bytes(t.ttype));
    input.check(&t.label(), total)?;
    let mut buf = vec![0u8; (CHUNK_BLOCKS * QK * 4).min(total as usize)];
    let mut left = total;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        input.fill(&t.label(), &mut buf[..n])?;
        out.put(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

fn quantize_data<R: Read, W: Write>(
    input: &mut Input<R>,
    out: &mut Counted<'_, W>,
    t: &TensorHeader,
    kind: QuantType,
) -> Result<(), GgmlError> {
    input.check(&t.label(), t.elements.saturating_mul(2))?;
    let blocks_total = (t.elements / QK as u64) as usize;
    let chunk = CHUNK_BLOCKS.min(blocks_total);
    let mut raw = vec![0u8; chunk * QK * 2];
    let mut enc = vec![0u8; chunk * kind.block_bytes()];
    let mut done = 0;
    while done < blocks_total {
        let n = chunk.min(blocks_total - done);
        let raw = &mut raw[..n * QK * 2];
        input.fill(&t.label(), raw)?;
        for (src, dst) in raw
            .chunks_exact(QK * 2)
            .zip(enc.chunks_exact_mut(kind.block_bytes()))
        {
            let x: [f32; QK] =
                std::array::from_fn(|i| f16::from_le_bytes([src[2 * i], src[2 * i + 1]]).to_f32());
            match kind {
                QuantType::Q8_0 => blocks::q8_0(&x, dst.try_into().expect("block size")),
                QuantType::Q5_0 => blocks::q5_0(&x, dst.try_into().expect("block size")),
            }
        }
        out.put(&enc[..n * kind.block_bytes()])?;
        done += n;
    }
    Ok(())
}

/// The output, counting what was written.
struct Counted<'a, W> {
    w: &'a mut W,
    n: u64,
}

impl<W: Write> Counted<'_, W> {
    fn put(&mut self, b: &[u8]) -> Result<(), GgmlError> {
        self.w
            .write_all(b)
            .map_err(|e| GgmlError::io("writing the quantized model", e))?;
        self.n += b.len() as u64;
        Ok(())
    }
}
