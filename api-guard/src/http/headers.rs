//! An ordered list of header (or trailer) fields kept in one text buffer.
//!
//! Every exchange carries its request and response fields to the analysis threads; as a
//! `Vec<(String, String)>` a response of eight fields cost seventeen allocations to build
//! and as many frees on another thread (the allocator's slow path). Here a list costs two,
//! whatever its length, and clones as cheaply.

use std::fmt;

use serde::{ser::SerializeSeq, Serialize, Serializer};

/// Header fields in order: names and values as received (lossy UTF-8), duplicates kept.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    /// Every field's name then value, back to back.
    text: String,
    /// Where each field's name and value end in `text`; a field starts where the previous
    /// one's value ends.
    ends: Vec<FieldEnds>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldEnds {
    name: u32,
    value: u32,
}

impl Headers {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list with room for `fields` fields of `text` bytes in all.
    #[must_use]
    pub fn with_capacity(fields: usize, text: usize) -> Self {
        Self {
            text: String::with_capacity(text),
            ends: Vec::with_capacity(fields),
        }
    }

    /// Appends a field. Fields past 4 GiB of text in one list are dropped (the parsers
    /// bound a head's text far below that).
    pub fn push(&mut self, name: &str, value: &str) {
        let Some(total) = self.text.len().checked_add(name.len() + value.len()) else {
            return;
        };
        if u32::try_from(total).is_err() {
            return;
        }
        self.text.push_str(name);
        let name_end = self.text.len() as u32;
        self.text.push_str(value);
        self.ends.push(FieldEnds {
            name: name_end,
            value: self.text.len() as u32,
        });
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes of all names and values.
    #[must_use]
    pub fn text_len(&self) -> usize {
        self.text.len()
    }

    /// The `index`th field.
    #[must_use]
    pub fn get_index(&self, index: usize) -> Option<(&str, &str)> {
        let ends = self.ends.get(index)?;
        let start = match index.checked_sub(1) {
            Some(prev) => self.ends.get(prev)?.value,
            None => 0,
        };
        let name = self.text.get(start as usize..ends.name as usize)?;
        let value = self.text.get(ends.name as usize..ends.value as usize)?;
        Some((name, value))
    }

    /// Fields in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            headers: self,
            next: 0,
            start: 0,
        }
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// The values of the fields named `name` (ASCII case-insensitive), in order. Names are
    /// compared as bytes and only the values found are cut out as text: a few instructions
    /// per field passed over, where [`Self::iter`] checks both of its parts as text.
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        let bytes = self.text.as_bytes();
        let mut start = 0;
        self.ends.iter().filter_map(move |ends| {
            let field = std::mem::replace(&mut start, ends.value);
            // Lengths first, from the ends alone: most fields are passed over here.
            if ends.name.wrapping_sub(field) as usize != name.len() {
                return None;
            }
            let this = bytes.get(field as usize..ends.name as usize)?;
            if !this.eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            self.text.get(ends.name as usize..ends.value as usize)
        })
    }
}

/// Header fields collected as bytes and checked as UTF-8 once, when done: the head parser
/// copies each name and value with one `extend_from_slice` and no per-field text check.
#[derive(Debug)]
pub(crate) struct HeadersBuilder {
    text: Vec<u8>,
    ends: Vec<FieldEnds>,
}

impl HeadersBuilder {
    pub(crate) fn with_capacity(fields: usize, text: usize) -> Self {
        Self {
            text: Vec::with_capacity(text),
            ends: Vec::with_capacity(fields),
        }
    }

    /// Appends a field, as [`Headers::push`] does (dropped past 4 GiB of text).
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) {
        let Some(total) = self.text.len().checked_add(name.len() + value.len()) else {
            return;
        };
        if u32::try_from(total).is_err() {
            return;
        }
        self.text.extend_from_slice(name);
        let name_end = self.text.len() as u32;
        self.text.extend_from_slice(value);
        self.ends.push(FieldEnds {
            name: name_end,
            value: self.text.len() as u32,
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The fields, or `None` if their text is not UTF-8. `ascii`: the caller saw every byte
    /// pushed and none was above 0x7f, so the text needs no UTF-8 check.
    pub(crate) fn finish(self, ascii: bool) -> Option<Headers> {
        let text = if ascii {
            debug_assert!(self.text.is_ascii());
            // SAFETY: ASCII text is UTF-8 (the caller's promise, checked in debug builds).
            unsafe { String::from_utf8_unchecked(self.text) }
        } else {
            String::from_utf8(self.text).ok()?
        };
        Some(Headers {
            text,
            ends: self.ends,
        })
    }
}

/// Iterator over [`Headers`] as `(name, value)`.
#[derive(Clone)]
pub struct Iter<'a> {
    headers: &'a Headers,
    next: usize,
    /// Where the next field starts in the text (where the previous one's value ended).
    start: u32,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let ends = *self.headers.ends.get(self.next)?;
        let text = &self.headers.text;
        let name = text.get(self.start as usize..ends.name as usize)?;
        let value = text.get(ends.name as usize..ends.value as usize)?;
        self.next += 1;
        self.start = ends.value;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.headers.len().saturating_sub(self.next);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// An empty list, for views (`&Headers` fields) that default to no fields.
static EMPTY: Headers = Headers {
    text: String::new(),
    ends: Vec::new(),
};

impl Default for &Headers {
    fn default() -> Self {
        &EMPTY
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        headers.extend(iter);
        headers
    }
}

impl<N: AsRef<str>, V: AsRef<str>> Extend<(N, V)> for Headers {
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.push(name.as_ref(), value.as_ref());
        }
    }
}

impl<N: AsRef<str>, V: AsRef<str>> From<&[(N, V)]> for Headers {
    fn from(fields: &[(N, V)]) -> Self {
        fields
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect()
    }
}

impl<N: AsRef<str>, V: AsRef<str>> From<Vec<(N, V)>> for Headers {
    fn from(fields: Vec<(N, V)>) -> Self {
        fields.into_iter().collect()
    }
}

impl<N: AsRef<str>, V: AsRef<str>, const K: usize> From<[(N, V); K]> for Headers {
    fn from(fields: [(N, V); K]) -> Self {
        fields.into_iter().collect()
    }
}

/// Equal to a list of pairs with the same fields in the same order.
impl<N: AsRef<str>, V: AsRef<str>> PartialEq<[(N, V)]> for Headers {
    fn eq(&self, other: &[(N, V)]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((n, v), (on, ov))| n == on.as_ref() && v == ov.as_ref())
    }
}

impl<N: AsRef<str>, V: AsRef<str>, const K: usize> PartialEq<[(N, V); K]> for Headers {
    fn eq(&self, other: &[(N, V); K]) -> bool {
        *self == other[..]
    }
}

impl<N: AsRef<str>, V: AsRef<str>> PartialEq<Vec<(N, V)>> for Headers {
    fn eq(&self, other: &Vec<(N, V)>) -> bool {
        *self == other[..]
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// As a sequence of `[name, value]` pairs, like the `Vec<(String, String)>` it replaces.
impl Serialize for Headers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for field in self {
            seq.serialize_element(&field)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_duplicates_and_empty_parts() {
        let h: Headers = [("Host", "a"), ("X", ""), ("", "v"), ("host", "b")]
            .into_iter()
            .collect();
        assert_eq!(h.len(), 4);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("Host", "a"), ("X", ""), ("", "v"), ("host", "b")]
        );
        assert_eq!(h.get("HOST"), Some("a"));
        assert_eq!(h.values("host").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(h.values("").collect::<Vec<_>>(), ["v"]);
        assert_eq!(h.values("x").collect::<Vec<_>>(), [""]);
        assert_eq!(h.values("missing").count(), 0);
        assert_eq!(h.get("missing"), None);
        assert_eq!(h.get_index(2), Some(("", "v")));
        assert_eq!(h.get_index(4), None);
        assert_eq!(h.text_len(), 12);
        assert_eq!(h.iter().len(), 4);
        assert_eq!(
            format!("{h:?}"),
            r#"[("Host", "a"), ("X", ""), ("", "v"), ("host", "b")]"#
        );
        assert_eq!(
            serde_json::to_string(&h).ok().as_deref(),
            Some(r#"[["Host","a"],["X",""],["","v"],["host","b"]]"#)
        );
    }

    #[test]
    fn multibyte_text() {
        let h: Headers = [("é", "ü…"), ("n", "ß")].into_iter().collect();
        assert_eq!(h.iter().collect::<Vec<_>>(), [("é", "ü…"), ("n", "ß")]);
        assert_eq!(h.get("é"), Some("ü…"));
        assert_eq!(h.get("É"), None, "ASCII case only");
        assert_eq!(h.get("N"), Some("ß"));
        assert_eq!(h.clone(), h);
        assert!(Headers::new().is_empty());
    }
}
