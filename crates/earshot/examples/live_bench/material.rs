//! Test material: per-stream scripts of utterances separated by pauses, built from the
//! shared clips and from sentences synthesized with `espeak-ng`.

use std::path::{Path, PathBuf};
use std::process::Command;

use earshot_testsupport::spoken::normalize_spoken;

/// Sample rate of every script.
pub const RATE: u32 = 16_000;

/// Which utterances go into the scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    Clips,
    Espeak,
    Mixed,
    /// A held-out pool of [`crate::unseen::POOLS`] (its index).
    Held(usize),
}

impl std::fmt::Display for Material {
    /// The `--material` name, as it was given.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Clips => "clips",
            Self::Espeak => "espeak",
            Self::Mixed => "mixed",
            Self::Held(i) => crate::unseen::POOLS[*i].name,
        })
    }
}

impl std::str::FromStr for Material {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "clips" => Ok(Self::Clips),
            "espeak" => Ok(Self::Espeak),
            "mixed" => Ok(Self::Mixed),
            _ => crate::unseen::POOLS
                .iter()
                .position(|p| p.name == s)
                .map(Self::Held)
                .ok_or_else(|| {
                    let held: Vec<&str> = crate::unseen::POOLS.iter().map(|p| p.name).collect();
                    format!(
                        "--material must be clips, espeak, mixed or a held-out pool ({}), not {s:?}",
                        held.join(", ")
                    )
                }),
        }
    }
}

/// Read-style sentences for `espeak-ng`, written so that the text is also the reference
/// (numbers spelled the way they are spoken).
const SENTENCES: &[&str] = &[
    "The morning train to Boston leaves at seven fifteen, so please be on the platform ten minutes early.",
    "Maria bought three apples, two loaves of bread and a small jar of honey at the market.",
    "Our meeting with the design team has been moved to Thursday afternoon at four o'clock.",
    "The river flows for nearly two hundred miles before it finally reaches the sea.",
    "Thomas said the library will stay open until nine in the evening during the exam period.",
    "Please remember to water the plants and feed the cat while we are away next week.",
    "The weather report expects heavy rain in the north and sunny skies along the southern coast.",
    "She counted forty two birds sitting on the old wooden fence behind the farmhouse.",
    "In nineteen ninety eight, the small company moved its office from Paris to London.",
    "If you press the green button twice, the machine will print a copy of your receipt.",
    "The children built a tall sandcastle near the water and watched the waves wash it away.",
    "Peter works as a nurse at the city hospital and usually starts his shift at six.",
    "We need fifteen chairs, eight tables and enough coffee for everyone at the conference.",
    "After the concert ended, hundreds of people walked slowly across the bridge toward the old town, talking and laughing in the warm summer evening.",
    "Professor Emily Carter will present the results of the study on Monday, and the full report should be ready by the end of the month.",
];

/// One utterance: 16 kHz samples and its reference words.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub name: String,
    pub samples: Vec<i16>,
    pub reference: String,
}

/// Where a scripted utterance sits in a script.
#[derive(Debug, Clone)]
pub struct Placed {
    pub name: String,
    pub end_ms: u64,
}

/// What one stream sends.
#[derive(Debug, Clone)]
pub struct Script {
    pub index: usize,
    pub samples: Vec<i16>,
    pub utterances: Vec<Placed>,
    /// Normalized reference words of the whole script.
    pub reference: Vec<String>,
    /// Identifies the script across runs (for `--solo-from`).
    pub fingerprint: String,
}

impl Script {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(RATE)
    }
}

/// Small deterministic generator (splitmix64): the scripts must be the same in every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * (hi - lo)
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// Loads the utterance pool for `material`.
pub fn load_pool(
    material: Material,
    audio_dir: &Path,
    cache_dir: &Path,
) -> Result<Vec<Utterance>, String> {
    let mut pool = Vec::new();
    match material {
        Material::Clips => pool.extend(load_clips(audio_dir)?),
        Material::Espeak => pool.extend(synthesize(cache_dir)?),
        Material::Mixed => {
            pool.extend(load_clips(audio_dir)?);
            pool.extend(synthesize(cache_dir)?);
        }
        Material::Held(i) => pool.extend(crate::unseen::synthesize(
            &crate::unseen::POOLS[i],
            cache_dir,
        )?),
    }
    if pool.is_empty() {
        return Err("no utterances".into());
    }
    Ok(pool)
}

fn load_clips(dir: &Path) -> Result<Vec<Utterance>, String> {
    let tsv = dir.join("references.tsv");
    let text = std::fs::read_to_string(&tsv).map_err(|e| format!("{}: {e}", tsv.display()))?;
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (file, reference) = line
            .split_once('\t')
            .ok_or_else(|| format!("{}: no tab in {line:?}", tsv.display()))?;
        let samples = read_wav_16k(&dir.join(file))?;
        out.push(Utterance {
            name: file.to_owned(),
            samples: trim_silence(&samples),
            reference: reference.trim().to_owned(),
        });
    }
    Ok(out)
}

/// Synthesizes [`SENTENCES`] (cached as 16 kHz WAV under `cache_dir`).
fn synthesize(cache_dir: &Path) -> Result<Vec<Utterance>, String> {
    std::fs::create_dir_all(cache_dir).map_err(|e| format!("{}: {e}", cache_dir.display()))?;
    let mut out = Vec::new();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let voice = if i % 3 == 2 { "en" } else { "en-us" };
        let speed = 150 + (i * 7) % 26; // 150..175
        let key = fnv(&format!("{voice}|{speed}|{sentence}"));
        let cached: PathBuf = cache_dir.join(format!("s{i:02}-{key:016x}.wav"));
        if !cached.exists() {
            let raw = cache_dir.join(format!("s{i:02}-{key:016x}.raw.wav"));
            let status = Command::new("espeak-ng")
                .args(["-v", voice, "-s", &speed.to_string(), "-w"])
                .arg(&raw)
                .arg(sentence)
                .status()
                .map_err(|e| {
                    format!("espeak-ng: {e} (install it: apt-get install -y espeak-ng)")
                })?;
            if !status.success() {
                return Err(format!("espeak-ng failed ({status}) on {sentence:?}"));
            }
            let samples = read_wav_16k(&raw)?;
            write_wav(&cached, &trim_silence(&samples))?;
            let _ = std::fs::remove_file(&raw);
        }
        out.push(Utterance {
            name: format!("espeak-{i:02}"),
            samples: read_wav_16k(&cached)?,
            reference: normalize_spoken(sentence).join(" "),
        });
    }
    Ok(out)
}

/// Builds stream `index`'s script: the pool in a seeded order (reshuffled whenever it runs
/// out), 0.3–2.0 s pauses with faint noise, until it lasts at least `min_secs`.
pub fn build_script(pool: &[Utterance], index: usize, seed: u64, min_secs: f64) -> Script {
    let mut rng = Rng::new(seed ^ (index as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut samples: Vec<i16> = Vec::new();
    let mut utterances = Vec::new();
    let mut reference = Vec::new();
    let min_samples = (min_secs * f64::from(RATE)) as usize;
    let pause = |rng: &mut Rng, samples: &mut Vec<i16>, secs: f64| {
        let n = (secs * f64::from(RATE)) as usize;
        samples.extend((0..n).map(|_| (rng.next_u64() % 9) as i16 - 4));
    };
    pause(&mut rng, &mut samples, 0.5);
    let mut order: Vec<usize> = Vec::new();
    while samples.len() < min_samples {
        if order.is_empty() {
            order = (0..pool.len()).collect();
            rng.shuffle(&mut order);
        }
        let u = &pool[order.pop().unwrap_or(0)];
        samples.extend_from_slice(&u.samples);
        let end_ms = samples.len() as u64 * 1000 / u64::from(RATE);
        utterances.push(Placed {
            name: u.name.clone(),
            end_ms,
        });
        reference.extend(normalize_spoken(&u.reference));
        let secs = rng.range(0.3, 2.0);
        pause(&mut rng, &mut samples, secs);
    }
    let names: Vec<&str> = utterances.iter().map(|u| u.name.as_str()).collect();
    let fingerprint = format!(
        "{:016x}",
        fnv(&format!("{}|{}", samples.len(), names.join(",")))
    );
    Script {
        index,
        samples,
        utterances,
        reference,
        fingerprint,
    }
}

/// Reads a mono or stereo 16-bit WAV and returns 16 kHz mono samples (linear interpolation).
pub fn read_wav_16k(path: &Path) -> Result<Vec<i16>, String> {
    let reader = hound::WavReader::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(format!("{}: not 16-bit PCM", path.display()));
    }
    let ch = usize::from(spec.channels.max(1));
    let all: Vec<i16> = reader
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mono: Vec<i16> = all
        .chunks(ch)
        .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
        .collect();
    Ok(resample(&mono, spec.sample_rate, RATE))
}

fn resample(x: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || x.is_empty() {
        return x.to_vec();
    }
    let n = (x.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..n)
        .map(|i| {
            let pos = i as f64 * step;
            let j = pos as usize;
            let frac = pos - j as f64;
            let a = f64::from(x[j.min(x.len() - 1)]);
            let b = f64::from(x[(j + 1).min(x.len() - 1)]);
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

/// Cuts leading and trailing silence (below 3 % of the peak), keeping 100 ms margins, so an
/// utterance's scripted end is where its speech ends.
pub fn trim_silence(x: &[i16]) -> Vec<i16> {
    let peak = x.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
    let thr = (u32::from(peak) * 3 / 100) as u16;
    let loud = |s: &i16| s.unsigned_abs() > thr;
    let (Some(first), Some(last)) = (x.iter().position(loud), x.iter().rposition(loud)) else {
        return x.to_vec();
    };
    let margin = RATE as usize / 10;
    x[first.saturating_sub(margin)..(last + margin).min(x.len())].to_vec()
}

pub fn write_wav(path: &Path, samples: &[i16]) -> Result<(), String> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let err = |e: hound::Error| format!("{}: {e}", path.display());
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in samples {
        w.write_sample(s).map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// FNV-1a, for cache keys and fingerprints.
pub fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
