//! Held-out material: sentences and voices that no part of earshot was tuned on.
//!
//! Capacity figures measured on the material the policy was tuned on have been wrong
//! before (the tuning set's utterances were short, unseen read speech was not). This pool
//! is for the figures we publish: longer, narrative sentences of a different register,
//! spoken by Festival voices (a statistical HTS voice and two diphone voices) as well as
//! espeak-ng variants, at varied rates. Keep it out of any tuning loop: once a change is
//! chosen because it does better here, this stops being held-out and needs replacing.

use std::path::{Path, PathBuf};
use std::process::Command;

use earshot_testsupport::spoken::normalize_spoken;

use crate::material::{fnv, read_wav_16k, trim_silence, write_wav, Utterance};

/// Written to be read aloud as written (numbers spelled out), so the text is the reference.
const SENTENCES: &[&str] = &[
    "When the old lighthouse keeper retired, the village held a supper in his honour and nobody could remember a winter without him.",
    "The committee decided that the bridge would be repaired in spring, although several members argued that a new one would cost less in the long run.",
    "My grandmother kept every letter she ever received in a tin box under her bed, tied with ribbons of different colours.",
    "Across the valley the farmers were already cutting the wheat, and the smell of dust and straw drifted over the road.",
    "The detective looked at the muddy footprints by the window and asked the butler where he had been at midnight.",
    "Scientists have found that some birds can remember thousands of hiding places where they stored seeds for the winter.",
    "He missed the last bus home, so he walked for an hour through the quiet streets, listening to the rain on the pavement.",
    "The museum will open a new gallery next year devoted to the history of clocks, maps and navigation at sea.",
    "Before you leave the laboratory, switch off the burners, close the windows and write the temperature in the notebook.",
    "Her first novel sold only a few hundred copies, but the second one was translated into twenty languages.",
    "The engineers tested the engine for six hours without a break, and it never once ran too hot.",
    "On the second day of the journey the wind turned against them, and the little boat made almost no progress at all.",
    "A good cup of tea needs fresh water, a warm pot and a few minutes of patience.",
    "The council has promised to plant four hundred trees along the river before the end of the decade.",
    "Everyone in the office was surprised when the quiet accountant won the singing competition on Friday night.",
    "If the price of fuel keeps rising, many families will have to think twice before driving to the coast this summer.",
];

/// Voices, cycled over the sentences: (engine, voice, rate). Festival's rate is a duration
/// stretch (above 1 is slower); espeak-ng's is words per minute.
const VOICES: &[(&str, &str, f64)] = &[
    ("festival", "voice_cmu_us_slt_arctic_hts", 1.0),
    ("festival", "voice_kal_diphone", 1.05),
    ("espeak-ng", "en-gb-x-rp+m3", 160.0),
    ("festival", "voice_ked_diphone", 0.95),
    ("espeak-ng", "en-us+f2", 140.0),
    ("festival", "voice_cmu_us_slt_arctic_hts", 1.15),
];

/// Synthesizes the held-out pool (cached as 16 kHz WAV under `cache_dir`).
pub fn synthesize(cache_dir: &Path) -> Result<Vec<Utterance>, String> {
    std::fs::create_dir_all(cache_dir).map_err(|e| format!("{}: {e}", cache_dir.display()))?;
    let mut out = Vec::new();
    for (i, sentence) in SENTENCES.iter().enumerate() {
        let (engine, voice, rate) = VOICES[i % VOICES.len()];
        let key = fnv(&format!("{engine}|{voice}|{rate}|{sentence}"));
        let cached: PathBuf = cache_dir.join(format!("u{i:02}-{key:016x}.wav"));
        if !cached.exists() {
            let raw = cache_dir.join(format!("u{i:02}-{key:016x}.raw.wav"));
            speak(engine, voice, rate, sentence, &raw)?;
            let samples = read_wav_16k(&raw)?;
            write_wav(&cached, &trim_silence(&samples))?;
            let _ = std::fs::remove_file(&raw);
        }
        out.push(Utterance {
            name: format!("unseen-{i:02}"),
            samples: read_wav_16k(&cached)?,
            reference: normalize_spoken(sentence).join(" "),
        });
    }
    Ok(out)
}

fn speak(engine: &str, voice: &str, rate: f64, text: &str, out: &Path) -> Result<(), String> {
    let status = if engine == "festival" {
        let txt = out.with_extension("txt");
        std::fs::write(&txt, text).map_err(|e| format!("{}: {e}", txt.display()))?;
        let eval = format!("(begin ({voice}) (Parameter.set 'Duration_Stretch {rate}))");
        let s = Command::new("text2wave")
            .args(["-eval", &eval, "-o"])
            .arg(out)
            .arg(&txt)
            .status();
        let _ = std::fs::remove_file(&txt);
        s
    } else {
        Command::new("espeak-ng")
            .args(["-v", voice, "-s", &format!("{rate:.0}"), "-w"])
            .arg(out)
            .arg(text)
            .status()
    };
    let status = status.map_err(|e| {
        format!("{engine}: {e} (install: apt-get install -y festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k espeak-ng)")
    })?;
    if !status.success() {
        return Err(format!("{engine} {voice} failed ({status}) on {text:?}"));
    }
    Ok(())
}
