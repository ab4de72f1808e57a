//! A reader that hashes what it yields and fails at end of stream when the content is not what
//! its descriptor promised. Every byte read from a local source goes through one of these, so a
//! corrupt blob aborts its upload before the registry is asked to commit it.

use std::io::{self, Read};

use crate::digest::{Digest, Sha256Writer};

/// A blob's content did not match its descriptor.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The content hashes to another digest.
    #[error("digest mismatch for {what}: expected {expected}, content hashes to {actual}")]
    Digest {
        /// The blob, as the reader was told to name it.
        what: String,
        /// The digest the descriptor promised.
        expected: Digest,
        /// The digest of what was read.
        actual: Digest,
    },
    /// The content is longer or shorter than promised. Raised as soon as too many bytes
    /// arrive, without waiting for the end.
    #[error("size mismatch for {what}: expected {expected} bytes, read {actual}")]
    Size {
        /// The blob, as the reader was told to name it.
        what: String,
        /// The size the descriptor promised.
        expected: u64,
        /// Bytes read: all of them, or the count that passed `expected`.
        actual: u64,
    },
}

impl VerifyError {
    /// Finds a verification failure inside an `io::Error` raised by a [`VerifyingReader`].
    pub fn from_io(err: &io::Error) -> Option<&VerifyError> {
        err.get_ref()?.downcast_ref::<VerifyError>()
    }
}

/// Wraps a reader; at EOF, checks size and digest and turns a mismatch into an `InvalidData` error.
pub struct VerifyingReader<R> {
    inner: R,
    what: String,
    expected_digest: Option<Digest>,
    expected_size: Option<u64>,
    hasher: Option<Sha256Writer>,
    result: Option<(Digest, u64)>,
}

impl<R: Read> VerifyingReader<R> {
    /// Verifies against a known digest (and size when known).
    pub fn new(inner: R, what: impl Into<String>, digest: Digest, size: Option<u64>) -> Self {
        Self {
            inner,
            what: what.into(),
            expected_digest: Some(digest),
            expected_size: size,
            hasher: Some(Sha256Writer::new()),
            result: None,
        }
    }

    /// Only hashes: for content whose digest is learnt by reading it.
    pub fn hashing(inner: R, what: impl Into<String>) -> Self {
        Self {
            inner,
            what: what.into(),
            expected_digest: None,
            expected_size: None,
            hasher: Some(Sha256Writer::new()),
            result: None,
        }
    }

    /// The digest and size of everything read, once the end was reached and verified.
    pub fn result(&self) -> Option<&(Digest, u64)> {
        self.result.as_ref()
    }

    fn finish(&mut self) -> io::Result<()> {
        let Some(hasher) = self.hasher.take() else {
            return Ok(());
        };
        let (actual, len) = hasher.finish();
        if let Some(expected) = self.expected_size {
            if expected != len {
                return Err(invalid(VerifyError::Size {
                    what: self.what.clone(),
                    expected,
                    actual: len,
                }));
            }
        }
        if let Some(expected) = &self.expected_digest {
            if *expected != actual {
                return Err(invalid(VerifyError::Digest {
                    what: self.what.clone(),
                    expected: expected.clone(),
                    actual,
                }));
            }
        }
        self.result = Some((actual, len));
        Ok(())
    }
}

fn invalid(err: VerifyError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        match self.hasher.as_mut() {
            Some(hasher) if n > 0 => {
                hasher.update(&buf[..n]);
                if let Some(expected) = self.expected_size {
                    if hasher.len() > expected {
                        return Err(invalid(VerifyError::Size {
                            what: self.what.clone(),
                            expected,
                            actual: hasher.len(),
                        }));
                    }
                }
            }
            Some(_) => self.finish()?,
            None => {}
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_of;

    #[test]
    fn passes_matching_content_and_reports_digest() {
        let data = b"layer bytes".to_vec();
        let mut r = VerifyingReader::new(&data[..], "layer", sha256_of(&data), Some(11));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(r.result().unwrap().0, sha256_of(&data));
    }

    #[test]
    fn fails_on_wrong_digest_at_eof() {
        let mut r = VerifyingReader::new(&b"abc"[..], "config", sha256_of(b"abd"), None);
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        let verify = VerifyError::from_io(&err).expect("a verify error");
        assert!(matches!(verify, VerifyError::Digest { .. }), "{verify}");
    }

    #[test]
    fn fails_on_oversize_before_eof() {
        let data = vec![7u8; 100];
        let mut r = VerifyingReader::new(&data[..], "blob", sha256_of(&data), Some(10));
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(
            VerifyError::from_io(&err),
            Some(VerifyError::Size { expected: 10, .. })
        ));
    }
}
