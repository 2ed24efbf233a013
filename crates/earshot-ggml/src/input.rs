//! A reader that knows how many bytes the file really has left, so every length read from
//! the header is checked before anything is allocated for it: a corrupt or hostile header
//! gets [`GgmlError::Truncated`], never a huge allocation.

use std::io::Read;

use crate::GgmlError;

pub(crate) struct Input<R> {
    inner: R,
    pos: u64,
    len: u64,
}

impl<R: Read> Input<R> {
    /// `inner` holds `len` bytes.
    pub(crate) fn new(inner: R, len: u64) -> Self {
        Input { inner, pos: 0, len }
    }

    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    pub(crate) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// Fails unless `need` more bytes are there.
    pub(crate) fn check(&self, what: &str, need: u64) -> Result<(), GgmlError> {
        if need > self.remaining() {
            return Err(GgmlError::Truncated {
                what: what.to_owned(),
                at: self.pos,
                need,
                have: self.remaining(),
            });
        }
        Ok(())
    }

    /// Fills `buf` entirely.
    pub(crate) fn fill(&mut self, what: &str, buf: &mut [u8]) -> Result<(), GgmlError> {
        self.check(what, buf.len() as u64)?;
        self.inner.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                // The file shrank under us or its length was wrong.
                GgmlError::Truncated {
                    what: what.to_owned(),
                    at: self.pos,
                    need: buf.len() as u64,
                    have: 0,
                }
            } else {
                GgmlError::io(format!("reading {what}"), e)
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// `n` bytes (checked against what is left first).
    pub(crate) fn bytes(&mut self, what: &str, n: u64) -> Result<Vec<u8>, GgmlError> {
        self.check(what, n)?;
        let mut v = vec![0u8; n as usize];
        self.fill(what, &mut v)?;
        Ok(v)
    }

    pub(crate) fn i32(&mut self, what: &str) -> Result<i32, GgmlError> {
        let mut b = [0u8; 4];
        self.fill(what, &mut b)?;
        Ok(i32::from_le_bytes(b))
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, GgmlError> {
        let mut b = [0u8; 4];
        self.fill(what, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }
}
