//! Hostile audio for tests: files whose size says nothing about how much audio they hold.

/// A FLAC file of `seconds` of a constant tone level at `rate` Hz, mono, 16-bit: every
/// block of 65 535 samples is one CONSTANT subframe of 3 bytes, so three hours at 48 kHz
/// take about 100 KB. A decoder that sized anything from what the file decodes to, or
/// decoded it all before checking, would spend gigabytes on it.
pub fn constant_flac(rate: u32, seconds: u64) -> Vec<u8> {
    const BLOCK: u64 = 65_535;
    let total = rate as u64 * seconds;
    let mut out = b"fLaC".to_vec();
    // STREAMINFO, the last metadata block, 34 bytes.
    out.extend_from_slice(&[0x80, 0, 0, 34]);
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes()); // min block size
    out.extend_from_slice(&(BLOCK as u16).to_be_bytes()); // max block size
    out.extend_from_slice(&[0; 6]); // min / max frame size unknown
                                    // rate (20 bits) | channels - 1 (3 bits) | bits - 1 (5 bits) | total samples (36 bits)
    let packed: u64 = ((rate as u64) << 44) | (15u64 << 36) | (total & 0xF_FFFF_FFFF);
    out.extend_from_slice(&packed.to_be_bytes());
    out.extend_from_slice(&[0; 16]); // no MD5
    let mut done = 0u64;
    let mut frame_no = 0u32;
    while done < total {
        let n = BLOCK.min(total - done);
        let mut f = vec![0xFF, 0xF8];
        // block size: 16-bit (n - 1) after the header; rate: from STREAMINFO.
        f.push(0x70);
        // mono, 16 bits per sample.
        f.push(0x08);
        f.extend(utf8_number(frame_no));
        f.extend_from_slice(&((n - 1) as u16).to_be_bytes());
        f.push(crc8(&f));
        // CONSTANT subframe, then its one 16-bit value.
        f.push(0x00);
        f.extend_from_slice(&1000i16.to_be_bytes());
        let crc = crc16(&f);
        f.extend_from_slice(&crc.to_be_bytes());
        out.extend(f);
        done += n;
        frame_no += 1;
    }
    out
}

/// FLAC's frame number coding (UTF-8 style), for numbers below 2^21.
fn utf8_number(n: u32) -> Vec<u8> {
    match n {
        0..=0x7F => vec![n as u8],
        0x80..=0x7FF => vec![0xC0 | (n >> 6) as u8, 0x80 | (n & 0x3F) as u8],
        0x800..=0xFFFF => vec![
            0xE0 | (n >> 12) as u8,
            0x80 | ((n >> 6) & 0x3F) as u8,
            0x80 | (n & 0x3F) as u8,
        ],
        _ => vec![
            0xF0 | (n >> 18) as u8,
            0x80 | ((n >> 12) & 0x3F) as u8,
            0x80 | ((n >> 6) & 0x3F) as u8,
            0x80 | (n & 0x3F) as u8,
        ],
    }
}

fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A 16-bit mono WAV at `rate` holding `samples`, whose header claims `claimed_bytes` of
/// data (as a recorder that streams its output writes a placeholder size).
pub fn wav_claiming(rate: u32, samples: &[i16], claimed_bytes: u32) -> Vec<u8> {
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&claimed_bytes.saturating_add(36).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&claimed_bytes.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}
