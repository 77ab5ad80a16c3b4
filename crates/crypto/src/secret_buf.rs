//! A growable plaintext buffer that never leaves a copy behind.
//!
//! Owns: [`SecretWriter`], an `io::Write` sink for serializing secrets (`serde_json::to_writer`)
//! whose every allocation is zeroized when released — a plain `Vec` leaves the old allocation
//! unwiped each time it grows. A size limit makes an oversized secret an error before it is
//! copied anywhere else.
//!
//! Must not: print its contents (`Debug` is `<hidden>`) or hand out a non-zeroizing copy.

use std::io;

use zeroize::Zeroizing;

use crate::keyring::SecretBytes;

/// Zeroizing `io::Write` buffer with a size limit. Growth copies into a fresh zeroizing
/// allocation and wipes the old one.
pub struct SecretWriter {
    buf: Zeroizing<Vec<u8>>,
    limit: usize,
}

impl SecretWriter {
    /// An empty buffer that refuses to hold more than `limit` bytes.
    pub fn with_limit(limit: usize) -> Self {
        Self {
            buf: Zeroizing::new(Vec::with_capacity(limit.min(1024))),
            limit,
        }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The written bytes as a [`SecretBytes`] (moved, not copied).
    pub fn into_secret(mut self) -> SecretBytes {
        SecretBytes::new(std::mem::take(&mut *self.buf))
    }
}

impl io::Write for SecretWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let need = self.buf.len().saturating_add(data.len());
        if need > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "secret exceeds its size limit",
            ));
        }
        if need > self.buf.capacity() {
            let cap = need
                .max(self.buf.capacity().saturating_mul(2))
                .min(self.limit);
            let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&self.buf);
            // The old allocation is wiped when `bigger` replaces it.
            self.buf = bigger;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl std::fmt::Debug for SecretWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretWriter(<hidden>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn grows_within_its_limit_and_refuses_beyond() {
        let mut w = SecretWriter::with_limit(3000);
        for _ in 0..2 {
            w.write_all(&[7u8; 1500]).unwrap();
        }
        assert_eq!(w.len(), 3000);
        assert!(w.write_all(b"x").is_err());
        let s = w.into_secret();
        assert_eq!(s.expose().len(), 3000);
        assert_eq!(format!("{s:?}"), "SecretBytes(<hidden>)");
    }
}
