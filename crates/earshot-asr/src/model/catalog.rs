//! The whisper.cpp models earshot knows by name: file, published size and digest, and
//! which quantized variants are made locally rather than downloaded.

use super::normalize_name;

/// A model name we know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// Short name as used by `fetch` (`tiny.en`).
    pub name: &'static str,
    /// File name (`ggml-tiny.en.bin`).
    pub file: &'static str,
    /// Size in bytes of the file in the whisper.cpp repository, where known.
    pub bytes: Option<u64>,
    /// sha256 of that file, where known (checked by `fetch`).
    pub sha256: Option<&'static str>,
    /// English-only model.
    pub english_only: bool,
}

const fn km(
    name: &'static str,
    file: &'static str,
    bytes: Option<u64>,
    sha256: Option<&'static str>,
    english_only: bool,
) -> KnownModel {
    KnownModel {
        name,
        file,
        bytes,
        sha256,
        english_only,
    }
}

/// Known whisper.cpp ggml models (sizes / digests of the files in the upstream repository
/// where we have them; others are fetched without a digest check, which is said at fetch time).
static KNOWN: &[KnownModel] = &[
    km(
        "tiny.en",
        "ggml-tiny.en.bin",
        Some(77_704_715),
        Some("921e4cf8686fdd993dcd081a5da5b6c365bfde1162e72b08d75ac75289920b1f"),
        true,
    ),
    km(
        "tiny",
        "ggml-tiny.bin",
        Some(77_691_713),
        Some("be07e048e1e599ad46341c8d2a135645097a538221678b7acdd1b1919c6e1b21"),
        false,
    ),
    km(
        "base.en",
        "ggml-base.en.bin",
        Some(147_964_211),
        Some("a03779c86df3323075f5e796cb2ce5029f00ec8869eee3fdfb897afe36c6d002"),
        true,
    ),
    km(
        "base",
        "ggml-base.bin",
        Some(147_951_465),
        Some("60ed5bc3dd14eea856493d334349b405782ddcaf0028d4b5df4088345fba2efe"),
        false,
    ),
    km(
        "small.en",
        "ggml-small.en.bin",
        Some(487_614_201),
        Some("c6138d6d58ecc8322097e0f987c32f1be8bb0a18532a3f88f734d1bbf9c41e5d"),
        true,
    ),
    km(
        "small",
        "ggml-small.bin",
        Some(487_601_967),
        Some("1be3a9b2063867b937e64e2ec7483364a79917e157fa98c5d94b5c1fffea987b"),
        false,
    ),
    km(
        "medium.en",
        "ggml-medium.en.bin",
        Some(1_533_774_781),
        Some("cc37e93478338ec7700281a7ac30a10128929eb8f427dda2e865faa8f6da4356"),
        true,
    ),
    km(
        "medium",
        "ggml-medium.bin",
        Some(1_533_763_059),
        Some("6c14d5adee5f86394037b4e4e8b59f1673b6cee10e3cf0b11bbdbee79c156208"),
        false,
    ),
    km(
        "large-v3",
        "ggml-large-v3.bin",
        Some(3_095_033_483),
        Some("64d182b440b98d5203c4f9bd541544d84c605196c4f7b845dfa11fb23594d1e2"),
        false,
    ),
    km(
        "large-v3-turbo",
        "ggml-large-v3-turbo.bin",
        Some(1_624_555_275),
        Some("1fc70f774d38eb169993ac391eea357ef47c88757ef72ee5943879b7e8e2bc69"),
        false,
    ),
    // Quantized variants, as the repository publishes them (tiny to small in q5_1 and
    // q8_0, medium and large in q5_0 and q8_0). Others (tiny.en-q5_0, base-q5_0...) are
    // made locally from the f16 file with `earshot model quantize`.
    km(
        "tiny.en-q5_1",
        "ggml-tiny.en-q5_1.bin",
        Some(32_166_155),
        Some("c77c5766f1cef09b6b7d47f21b546cbddd4157886b3b5d6d4f709e91e66c7c2b"),
        true,
    ),
    km(
        "tiny.en-q8_0",
        "ggml-tiny.en-q8_0.bin",
        Some(43_550_795),
        Some("5bc2b3860aa151a4c6e7bb095e1fcce7cf12c7b020ca08dcec0c6d018bb7dd94"),
        true,
    ),
    km(
        "tiny-q5_1",
        "ggml-tiny-q5_1.bin",
        Some(32_152_673),
        Some("818710568da3ca15689e31a743197b520007872ff9576237bda97bd1b469c3d7"),
        false,
    ),
    km(
        "tiny-q8_0",
        "ggml-tiny-q8_0.bin",
        Some(43_537_433),
        Some("c2085835d3f50733e2ff6e4b41ae8a2b8d8110461e18821b09a15c40c42d1cca"),
        false,
    ),
    km(
        "base.en-q5_1",
        "ggml-base.en-q5_1.bin",
        Some(59_721_011),
        Some("4baf70dd0d7c4247ba2b81fafd9c01005ac77c2f9ef064e00dcf195d0e2fdd2f"),
        true,
    ),
    km(
        "base.en-q8_0",
        "ggml-base.en-q8_0.bin",
        Some(81_781_811),
        Some("a4d4a0768075e13cfd7e19df3ae2dbc4a68d37d36a7dad45e8410c9a34f8c87e"),
        true,
    ),
    km(
        "base-q5_1",
        "ggml-base-q5_1.bin",
        Some(59_707_625),
        Some("422f1ae452ade6f30a004d7e5c6a43195e4433bc370bf23fac9cc591f01a8898"),
        false,
    ),
    km(
        "base-q8_0",
        "ggml-base-q8_0.bin",
        Some(81_768_585),
        Some("c577b9a86e7e048a0b7eada054f4dd79a56bbfa911fbdacf900ac5b567cbb7d9"),
        false,
    ),
    km(
        "small.en-q5_1",
        "ggml-small.en-q5_1.bin",
        Some(190_098_681),
        Some("bfdff4894dcb76bbf647d56263ea2a96645423f1669176f4844a1bf8e478ad30"),
        true,
    ),
    km(
        "small.en-q8_0",
        "ggml-small.en-q8_0.bin",
        Some(264_477_561),
        Some("67a179f608ea6114bd3fdb9060e762b588a3fb3bd00c4387971be4d177958067"),
        true,
    ),
    km(
        "small-q5_1",
        "ggml-small-q5_1.bin",
        Some(190_085_487),
        Some("ae85e4a935d7a567bd102fe55afc16bb595bdb618e11b2fc7591bc08120411bb"),
        false,
    ),
    km(
        "small-q8_0",
        "ggml-small-q8_0.bin",
        Some(264_464_607),
        Some("49c8fb02b65e6049d5fa6c04f81f53b867b5ec9540406812c643f177317f779f"),
        false,
    ),
    km(
        "medium.en-q5_0",
        "ggml-medium.en-q5_0.bin",
        Some(539_225_533),
        Some("76733e26ad8fe1c7a5bf7531a9d41917b2adc0f20f2e4f5531688a8c6cd88eb0"),
        true,
    ),
    km(
        "medium.en-q8_0",
        "ggml-medium.en-q8_0.bin",
        Some(823_382_461),
        Some("43fa2cd084de5a04399a896a9a7a786064e221365c01700cea4666005218f11c"),
        true,
    ),
    km(
        "medium-q5_0",
        "ggml-medium-q5_0.bin",
        Some(539_212_467),
        Some("19fea4b380c3a618ec4723c3eef2eb785ffba0d0538cf43f8f235e7b3b34220f"),
        false,
    ),
    km(
        "medium-q8_0",
        "ggml-medium-q8_0.bin",
        Some(823_369_779),
        Some("42a1ffcbe4167d224232443396968db4d02d4e8e87e213d3ee2e03095dea6502"),
        false,
    ),
    km(
        "large-v3-q5_0",
        "ggml-large-v3-q5_0.bin",
        Some(1_081_140_203),
        Some("d75795ecff3f83b5faa89d1900604ad8c780abd5739fae406de19f23ecd98ad1"),
        false,
    ),
    km(
        "large-v3-turbo-q5_0",
        "ggml-large-v3-turbo-q5_0.bin",
        Some(574_041_195),
        Some("394221709cd5ad1f40c46e6031ca61bce88931e6e088c188294c6d5a55ffa7e2"),
        false,
    ),
    km(
        "large-v3-turbo-q8_0",
        "ggml-large-v3-turbo-q8_0.bin",
        Some(874_188_075),
        Some("317eb69c11673c9de1e1f0d459b253999804ec71ac4c23c17ecf5fbe24e259a1"),
        false,
    ),
];

/// The models `earshot model list` shows.
pub fn list() -> &'static [KnownModel] {
    KNOWN
}

impl KnownModel {
    /// How the weights are stored, from the name: `q5_1`, `q8_0`..., else `f16`.
    pub fn weights(&self) -> &'static str {
        match self.name.rsplit_once('-') {
            Some((_, q)) if q.starts_with('q') && q.contains('_') => q,
            _ => "f16",
        }
    }

    /// The f16 model a quantized variant was made from (`base-q8_0` → `base`).
    pub fn f16_name(&self) -> &'static str {
        match self.name.rsplit_once('-') {
            Some((base, q)) if q.starts_with('q') && q.contains('_') => base,
            _ => self.name,
        }
    }
}

/// Where a quantized name that the repository does not publish comes from: its f16
/// model, quantized locally (`base-q5_0` → (`base`, `q5_0`)).
pub fn local_quantization(name: &str) -> Option<(&'static KnownModel, &str)> {
    let (short, _) = normalize_name(name).ok()?;
    let (base, q) = short.rsplit_once('-')?;
    if !matches!(q, "q8_0" | "q5_0") || KNOWN.iter().any(|k| k.name == short) {
        return None;
    }
    let kind = if q == "q8_0" { "q8_0" } else { "q5_0" };
    KNOWN.iter().find(|k| k.name == base).map(|k| (k, kind))
}
