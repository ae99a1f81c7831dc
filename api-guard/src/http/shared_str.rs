//! Text of an exchange's request line and host that clones without allocating.
//!
//! An exchange's method, path, query and host are made on the parsing task, copied into the
//! request notice handed to detection before the response, and freed on the analysis
//! threads (mimalloc's slow, cross-thread path). Short text (most methods, paths and hosts)
//! is kept inline, longer text in one reference-counted allocation: making one costs at
//! most one allocation, cloning one none.

use std::{borrow::Borrow, fmt, hash, ops::Deref, sync::Arc};

use serde::{Serialize, Serializer};

/// Bytes kept inline: the most that fits beside the length in the size of a `String`.
const INLINE: usize = 22;

/// Immutable text, inline up to 22 bytes, else shared. Reads as a `&str` (`Deref`).
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    /// `bytes[..len]` is the text (UTF-8: copied from a `&str`).
    Inline {
        len: u8,
        bytes: [u8; INLINE],
    },
    Shared(Arc<str>),
}

// As small as the `String` it replaces, and `Option<SharedStr>` too.
const _: () = assert!(size_of::<SharedStr>() == 24 && size_of::<Option<SharedStr>>() == 24);

impl SharedStr {
    /// The empty text.
    #[must_use]
    pub const fn new() -> Self {
        Self(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// Length in bytes (without making the `&str`).
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Inline { len, .. } => usize::from(*len),
            Repr::Shared(text) => text.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = bytes.get(..usize::from(*len)).unwrap_or_default();
                // SAFETY: an inline text is a copy of a whole `&str` (`From<&str>`), UTF-8.
                unsafe { std::str::from_utf8_unchecked(bytes) }
            }
            Repr::Shared(text) => text,
        }
    }
}

impl From<&str> for SharedStr {
    fn from(text: &str) -> Self {
        let len = text.len();
        if len <= INLINE {
            let mut bytes = [0; INLINE];
            if let Some(slot) = bytes.get_mut(..len) {
                slot.copy_from_slice(text.as_bytes());
            }
            Self(Repr::Inline {
                len: len as u8,
                bytes,
            })
        } else {
            Self(Repr::Shared(Arc::from(text)))
        }
    }
}

impl From<&String> for SharedStr {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<String> for SharedStr {
    fn from(text: String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<SharedStr> for String {
    fn from(text: SharedStr) -> Self {
        text.as_str().to_owned()
    }
}

impl Default for SharedStr {
    fn default() -> Self {
        Self::new()
    }
}

impl Deref for SharedStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq for SharedStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl hash::Hash for SharedStr {
    fn hash<H: hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedStr> for String {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_shared_read_back() {
        let long = "/a/much/longer/path/than/fits/inline/é";
        for text in ["", "GET", "localhost:8080", "0123456789012345678901", long] {
            let s = SharedStr::from(text);
            assert_eq!(s.as_str(), text);
            assert_eq!(s.clone(), text);
            assert_eq!(format!("{s:?}"), format!("{text:?}"));
            assert_eq!(
                serde_json::to_string(&s).ok(),
                serde_json::to_string(text).ok()
            );
        }
        assert!(matches!(
            SharedStr::from("x".repeat(22)).0,
            Repr::Inline { .. }
        ));
        assert!(matches!(SharedStr::from("x".repeat(23)).0, Repr::Shared(_)));
        let shared = SharedStr::from(long);
        let copy = shared.clone();
        assert!(
            matches!((&shared.0, &copy.0), (Repr::Shared(a), Repr::Shared(b)) if Arc::ptr_eq(a, b))
        );
        assert_eq!(SharedStr::default(), "");
    }
}
