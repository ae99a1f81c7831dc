//! A [`Hasher`] that gathers what it is given in a stack buffer and hands it to the hasher it
//! wraps in one `write`: the detectors' route keys are a few short strings, their separators
//! and markers (six or more writes), and SipHash spends more on each call than on its bytes.
//! SipHash reads its input as one byte stream however it is cut, so the key is the one the
//! separate writes would give (a test pins it).

use std::hash::Hasher;

/// Bytes gathered before they are handed on (routes longer than this are hashed in parts).
const BUF: usize = 128;

pub struct Buffered<H> {
    inner: H,
    buf: [u8; BUF],
    len: usize,
}

impl<H: Hasher + Clone> Buffered<H> {
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            buf: [0; BUF],
            len: 0,
        }
    }
}

impl<H: Hasher + Clone> Hasher for Buffered<H> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.len..self.len + bytes.len()) {
            dst.copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.inner.write(&self.buf[..self.len]);
        self.len = 0;
        if bytes.len() >= BUF {
            self.inner.write(bytes);
        } else {
            self.buf[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
        }
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.write(&[byte]);
    }

    /// `finish` takes `&self`: the gathered bytes go to a copy of the inner hasher.
    fn finish(&self) -> u64 {
        let mut inner = self.inner.clone();
        inner.write(&self.buf[..self.len]);
        inner.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hash, RandomState};

    use super::*;

    #[test]
    fn the_key_is_the_one_separate_writes_give() {
        let state = RandomState::new();
        let long = "x".repeat(300);
        let cases: [(&str, &str, &str); 4] = [
            ("api.example", "GET", "/users/{id}"),
            ("", "", ""),
            (&long, "POST", "/a"),
            ("h", "GET", &long),
        ];
        for value in cases {
            let mut h = Buffered::new(state.build_hasher());
            value.hash(&mut h);
            assert_eq!(h.finish(), state.hash_one(value), "{value:?}");
            // Bytes and markers written one at a time.
            let mut h = Buffered::new(state.build_hasher());
            let mut plain = state.build_hasher();
            for b in long.bytes().take(200) {
                h.write_u8(b);
                plain.write_u8(b);
                h.write(&[0xff, b]);
                plain.write(&[0xff, b]);
            }
            assert_eq!(h.finish(), plain.finish());
        }
    }
}
