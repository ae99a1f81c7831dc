//! An ordered list of header (or trailer) fields kept in one shared block.
//!
//! Every exchange carries its request and response fields to the analysis threads, and the
//! request's fields also go in the request notice handed to detection before the response.
//! As a `Vec<(String, String)>` a response of eight fields cost seventeen allocations to
//! build and as many frees on another thread (the allocator's slow path). Here a list is
//! one reference-counted block, where each field ends then the fields' text: one
//! allocation whatever its length, none to clone.

use std::{
    cell::{Cell, RefCell},
    fmt,
    mem::MaybeUninit,
    sync::Arc,
};

use serde::{ser::SerializeSeq, Serialize, Serializer};

use super::by_length::ByLength;

/// Header fields in order: names and values as received (lossy UTF-8), duplicates kept.
#[derive(Clone, Default)]
pub struct Headers {
    /// For each field where its name and value end in the text (two native-endian `u32`s),
    /// then every field's name then value, back to back, each UTF-8 on its own (so every end
    /// is a character boundary: [`piece`] relies on it). `None` when empty.
    block: Option<Arc<[u8]>>,
    /// Fields in the list.
    fields: u32,
    /// Bytes of text after the ends.
    text_len: u32,
}

/// Equal when the fields are: the unused bytes after the text do not count.
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.fields == other.fields && self.parts() == other.parts()
    }
}

impl Eq for Headers {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FieldEnds {
    name: u32,
    value: u32,
}

/// Bytes of one field's ends in a block.
const ENDS_LEN: usize = 8;

impl FieldEnds {
    fn read(bytes: &[u8; ENDS_LEN]) -> Self {
        let [n0, n1, n2, n3, v0, v1, v2, v3] = *bytes;
        Self {
            name: u32::from_ne_bytes([n0, n1, n2, n3]),
            value: u32::from_ne_bytes([v0, v1, v2, v3]),
        }
    }

    fn bytes(self) -> [u8; ENDS_LEN] {
        let [n0, n1, n2, n3] = self.name.to_ne_bytes();
        let [v0, v1, v2, v3] = self.value.to_ne_bytes();
        [n0, n1, n2, n3, v0, v1, v2, v3]
    }
}

impl Headers {
    #[must_use]
    pub const fn new() -> Self {
        Self {
            block: None,
            fields: 0,
            text_len: 0,
        }
    }

    /// Appends a field. Fields past 4 GiB of text in one list are dropped (the parsers
    /// bound a head's text far below that). Copies the whole list: for building a list
    /// field by field, collect the fields (`FromIterator`) instead.
    pub fn push(&mut self, name: &str, value: &str) {
        self.extend([(name, value)]);
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.fields as usize
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields == 0
    }

    /// Bytes of all names and values.
    #[must_use]
    pub fn text_len(&self) -> usize {
        self.text_len as usize
    }

    /// The fields' text, and where each field's name and value end in it.
    fn parts(&self) -> (&str, &[[u8; ENDS_LEN]]) {
        let block = self.block.as_deref().unwrap_or_default();
        let (ends, text) = block.split_at(block.len().min(self.len() * ENDS_LEN));
        let text = text.get(..self.text_len()).unwrap_or_default();
        // SAFETY: a block is made only by `HeadersBuilder::finish_block` or `from_spans`,
        // with `fields` ends then `text_len` bytes of text known to be UTF-8 (checked, ASCII,
        // or pushed as `&str`).
        let text = unsafe { std::str::from_utf8_unchecked(text) };
        (text, ends.as_chunks::<ENDS_LEN>().0)
    }

    /// The `index`th field.
    #[must_use]
    pub fn get_index(&self, index: usize) -> Option<(&str, &str)> {
        let (text, ends) = self.parts();
        let this = FieldEnds::read(ends.get(index)?);
        let start = match index.checked_sub(1) {
            Some(prev) => FieldEnds::read(ends.get(prev)?).value,
            None => 0,
        };
        Some((
            piece(text, start, this.name)?,
            piece(text, this.name, this.value)?,
        ))
    }

    /// Fields in order.
    pub fn iter(&self) -> Iter<'_> {
        let (text, ends) = self.parts();
        Iter {
            text,
            ends: ends.iter(),
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
        let (text, ends) = self.parts();
        let bytes = text.as_bytes();
        let mut start = 0;
        ends.iter().filter_map(move |ends| {
            let ends = FieldEnds::read(ends);
            let field = std::mem::replace(&mut start, ends.value);
            // Lengths first, from the ends alone: most fields are passed over here.
            if ends.name.wrapping_sub(field) as usize != name.len() {
                return None;
            }
            let this = bytes.get(field as usize..ends.name as usize)?;
            if !this.eq_ignore_ascii_case(name.as_bytes()) {
                return None;
            }
            piece(text, ends.name, ends.value)
        })
    }
}

/// Header fields collected as bytes and checked as UTF-8 once, when done: the head parser
/// copies each name and value with one `extend_from_slice` and no per-field text check.
#[derive(Debug, Default)]
pub(crate) struct HeadersBuilder {
    text: Vec<u8>,
    ends: Vec<FieldEnds>,
}

thread_local! {
    /// A builder kept per thread for the HTTP/1 head parser: its buffers serve head after
    /// head, so a head's fields cost one allocation (the list's block), not two.
    static SCRATCH: Cell<HeadersBuilder> = const {
        Cell::new(HeadersBuilder {
            text: Vec::new(),
            ends: Vec::new(),
        })
    };
}

/// Scratch text capacity kept between heads at most; a builder grown past it is dropped.
const SCRATCH_KEEP: usize = 64 * 1024;

impl HeadersBuilder {
    pub(crate) fn with_capacity(fields: usize, text: usize) -> Self {
        Self {
            text: Vec::with_capacity(text),
            ends: Vec::with_capacity(fields),
        }
    }

    /// This thread's scratch builder (empty), with room for `fields` fields of `text`
    /// bytes; give it back with [`Self::recycle`].
    pub(crate) fn scratch(fields: usize, text: usize) -> Self {
        let mut builder = SCRATCH.try_with(Cell::take).unwrap_or_default();
        builder.text.reserve(text);
        builder.ends.reserve(fields);
        builder
    }

    /// Returns the buffers to this thread's scratch builder, emptied.
    pub(crate) fn recycle(mut self) {
        if self.text.capacity() > SCRATCH_KEEP {
            return;
        }
        self.text.clear();
        self.ends.clear();
        let _ = SCRATCH.try_with(|scratch| scratch.set(self));
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

    /// The fields, or `None` if a name or value is not UTF-8. `ascii`: the caller saw every
    /// byte pushed and none was above 0x7f, so the text needs no UTF-8 check. The builder
    /// keeps its fields (to be recycled or dropped).
    pub(crate) fn finish(&mut self, ascii: bool) -> Option<Headers> {
        if ascii {
            debug_assert!(self.text.is_ascii());
        } else {
            let mut start = 0;
            for ends in &self.ends {
                let name = self.text.get(start as usize..ends.name as usize)?;
                let value = self.text.get(ends.name as usize..ends.value as usize)?;
                std::str::from_utf8(name).ok()?;
                std::str::from_utf8(value).ok()?;
                start = ends.value;
            }
        }
        Some(self.finish_block())
    }

    /// The fields of text pushed as `&str` pieces (UTF-8 already).
    fn finish_text(&mut self) -> Headers {
        debug_assert!(std::str::from_utf8(&self.text).is_ok());
        self.finish_block()
    }

    /// The list, its text checked UTF-8 by the caller: one allocation of the exact size.
    fn finish_block(&mut self) -> Headers {
        let (Ok(fields), Ok(text_len)) = (
            u32::try_from(self.ends.len()),
            u32::try_from(self.text.len()),
        ) else {
            return Headers::new();
        };
        if fields == 0 {
            return Headers::new();
        }
        let ends_len = self.ends.len() * ENDS_LEN;
        let mut block = zeroed_block(ends_len + self.text.len());
        if let Some(buf) = Arc::get_mut(&mut block) {
            let (ends, text) = buf.split_at_mut(ends_len);
            for (dst, field) in ends
                .as_chunks_mut::<ENDS_LEN>()
                .0
                .iter_mut()
                .zip(&self.ends)
            {
                *dst = field.bytes();
            }
            text.copy_from_slice(&self.text);
        }
        Headers {
            block: Some(block),
            fields,
            text_len,
        }
    }
}

/// A block of `len` zero bytes, not shared yet (`Arc::get_mut` gives it).
fn zeroed_block(len: usize) -> Arc<[u8]> {
    // SAFETY: zero is a valid `u8`.
    unsafe { Arc::<[u8]>::new_zeroed_slice(len).assume_init() }
}

/// Where one field's name and value lie in the bytes a list is made from ([`from_spans`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FieldSpan {
    pub name: u32,
    pub name_end: u32,
    pub value: u32,
    pub value_end: u32,
}

/// The list of the fields at `spans` in `src`, `text_len` bytes of names and values in
/// all: one allocation of the exact size, ends then text, written once (no builder to copy
/// out of, no unused bytes). `ascii`: the caller saw every byte of the fields and none was
/// above 0x7f (no UTF-8 check then). `None` if the spans do not make `text_len` bytes inside
/// `src`, or the text is not UTF-8 or too long for a block.
pub(crate) fn from_spans(
    src: &[u8],
    spans: &[FieldSpan],
    text_len: usize,
    ascii: bool,
) -> Option<Headers> {
    if spans.is_empty() {
        return Some(Headers::new());
    }
    let fields = u32::try_from(spans.len()).ok()?;
    let ends_len = spans.len().checked_mul(ENDS_LEN)?;
    let len = ends_len.checked_add(text_len)?;
    let text_len = u32::try_from(text_len)
        .ok()
        .filter(|_| u32::try_from(len).is_ok())?;
    if let Some(block) = recent_block(len, |kept| holds_fields(kept, src, spans, ends_len)) {
        return Some(Headers {
            block: Some(block),
            fields,
            text_len,
        });
    }
    let mut block = Arc::<[u8]>::new_uninit_slice(len);
    let buf = Arc::get_mut(&mut block)?;
    let (ends, text) = buf.split_at_mut(ends_len);
    let mut at = 0;
    for (dst, span) in ends.as_chunks_mut::<ENDS_LEN>().0.iter_mut().zip(spans) {
        let name = src.get(span.name as usize..span.name_end as usize)?;
        let value = src.get(span.value as usize..span.value_end as usize)?;
        let name_end = at + name.len();
        let value_end = name_end + value.len();
        copy_short(text.get_mut(at..name_end)?, name);
        copy_short(text.get_mut(name_end..value_end)?, value);
        // Offsets fit: the block is shorter than 4 GiB.
        *dst = FieldEnds {
            name: name_end as u32,
            value: value_end as u32,
        }
        .bytes()
        .map(MaybeUninit::new);
        at = value_end;
    }
    if at != text_len as usize {
        return None;
    }
    // SAFETY: every byte is written: one end per span (`ends` has exactly as many), then
    // `text_len` bytes of text back to back.
    let block: Arc<[u8]> = unsafe { block.assume_init() };
    if ascii {
        debug_assert!(block.get(ends_len..).is_some_and(<[u8]>::is_ascii));
    } else {
        // Each name and value on its own (the same as the whole text when names are
        // tokens, ASCII): [`piece`] relies on it.
        let text = block.get(ends_len..)?;
        let mut start = 0;
        for span in spans {
            let (name, value) = (span.name_end - span.name, span.value_end - span.value);
            let name_end = start + name as usize;
            let value_end = name_end + value as usize;
            std::str::from_utf8(text.get(start..name_end)?).ok()?;
            std::str::from_utf8(text.get(name_end..value_end)?).ok()?;
            start = value_end;
        }
    }
    remember_block(&block);
    Some(Headers {
        block: Some(block),
        fields,
        text_len,
    })
}

/// The longest block kept: a usual head's fields, well under a page.
const MAX_RECENT_BLOCK: usize = 2048;

thread_local! {
    /// The blocks [`from_spans`] made lately on this thread. A head whose fields repeat a
    /// recent head's exactly (a client sending the same request again, a server's answer
    /// within the same second) shares that block: comparing reads what copying would and
    /// writes nothing, no block is allocated or freed, and the analysis threads read lines
    /// their caches already hold (nobody writes a block once made). Bounded: at most
    /// [`super::by_length::SLOTS`] blocks of at most [`MAX_RECENT_BLOCK`] bytes a thread.
    static RECENT: RefCell<ByLength<Arc<[u8]>>> = const { RefCell::new(ByLength::new()) };
}

/// The recent block of `len` bytes that `holds` accepts.
fn recent_block(len: usize, holds: impl FnOnce(&[u8]) -> bool) -> Option<Arc<[u8]>> {
    if len > MAX_RECENT_BLOCK {
        return None;
    }
    RECENT.with_borrow(|recent| recent.find(len, holds))
}

/// Keeps a block just made as the one its length's slot offers next.
fn remember_block(block: &Arc<[u8]>) {
    if block.len() <= MAX_RECENT_BLOCK {
        RECENT.with_borrow_mut(|recent| recent.keep(block));
    }
}

/// Whether `block` (ends then text, `ends_len` bytes of ends) holds exactly the fields at
/// `spans` in `src`: every end where the spans put it and every name and value equal, so
/// the block is the one [`from_spans`] would make of them.
fn holds_fields(block: &[u8], src: &[u8], spans: &[FieldSpan], ends_len: usize) -> bool {
    let Some((ends, text)) = block.split_at_checked(ends_len) else {
        return false;
    };
    let ends = ends.as_chunks::<ENDS_LEN>().0;
    if ends.len() != spans.len() {
        return false;
    }
    let mut at = 0;
    for (end, span) in ends.iter().zip(spans) {
        let (Some(name), Some(value)) = (
            src.get(span.name as usize..span.name_end as usize),
            src.get(span.value as usize..span.value_end as usize),
        ) else {
            return false;
        };
        let name_end = at + name.len();
        let value_end = name_end + value.len();
        let kept = FieldEnds::read(end);
        if kept.name as usize != name_end || kept.value as usize != value_end {
            return false;
        }
        let (Some(kept_name), Some(kept_value)) =
            (text.get(at..name_end), text.get(name_end..value_end))
        else {
            return false;
        };
        if !eq_short(kept_name, name) || !eq_short(kept_value, value) {
            return false;
        }
        at = value_end;
    }
    at == text.len()
}

/// `a == b` (`a` is as long as `b`) without a `bcmp` call for the short names and values
/// of a head, as [`copy_short`] copies them.
#[inline]
fn eq_short(a: &[u8], b: &[u8]) -> bool {
    match (a.len(), b.len()) {
        (8..=16, 8..=16) => {
            a.first_chunk::<8>() == b.first_chunk::<8>()
                && a.last_chunk::<8>() == b.last_chunk::<8>()
        }
        (4..8, 4..8) => {
            a.first_chunk::<4>() == b.first_chunk::<4>()
                && a.last_chunk::<4>() == b.last_chunk::<4>()
        }
        _ => a == b,
    }
}

/// `dst.write_copy_of_slice(src)` (`dst` is as long as `src`) without a `memcpy` call
/// for the short names and values of a head: 4 to 16 bytes as two overlapping words.
#[inline]
fn copy_short(dst: &mut [MaybeUninit<u8>], src: &[u8]) {
    let len = src.len();
    if let (8..=16, Some(first), Some(last)) = (len, src.first_chunk::<8>(), src.last_chunk::<8>())
    {
        if let Some(d) = dst.first_chunk_mut::<8>() {
            *d = first.map(MaybeUninit::new);
        }
        if let Some(d) = dst.last_chunk_mut::<8>() {
            *d = last.map(MaybeUninit::new);
        }
    } else if let (4..8, Some(first), Some(last)) =
        (len, src.first_chunk::<4>(), src.last_chunk::<4>())
    {
        if let Some(d) = dst.first_chunk_mut::<4>() {
            *d = first.map(MaybeUninit::new);
        }
        if let Some(d) = dst.last_chunk_mut::<4>() {
            *d = last.map(MaybeUninit::new);
        }
    } else {
        dst.write_copy_of_slice(src);
    }
}

/// A name or value of a block's `text`, `from..to` (ends read from the block): bounds
/// checked, without `str::get`'s two character-boundary checks.
#[inline]
fn piece(text: &str, from: u32, to: u32) -> Option<&str> {
    let bytes = text.as_bytes().get(from as usize..to as usize)?;
    // SAFETY: every end in a block is a character boundary of its text, each name and value
    // being UTF-8 on its own: `HeadersBuilder::finish` checks each (or the caller saw ASCII
    // alone), `finish_text` has `&str` pieces, `from_spans` checks each unless ASCII.
    Some(unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Iterator over [`Headers`] as `(name, value)`.
#[derive(Clone)]
pub struct Iter<'a> {
    text: &'a str,
    ends: std::slice::Iter<'a, [u8; ENDS_LEN]>,
    /// Where the next field starts in the text (where the previous one's value ended).
    start: u32,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let ends = FieldEnds::read(self.ends.next()?);
        let name = piece(self.text, self.start, ends.name)?;
        let value = piece(self.text, ends.name, ends.value)?;
        self.start = ends.value;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// An empty list, for views (`&Headers` fields) that default to no fields.
static EMPTY: Headers = Headers::new();

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
    /// Copies the list once, whatever the number of fields added.
    fn extend<I: IntoIterator<Item = (N, V)>>(&mut self, iter: I) {
        let mut builder = HeadersBuilder::with_capacity(self.len(), self.text_len());
        for (name, value) in self.iter() {
            builder.push(name.as_bytes(), value.as_bytes());
        }
        for (name, value) in iter {
            builder.push(name.as_ref().as_bytes(), value.as_ref().as_bytes());
        }
        *self = builder.finish_text();
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

    /// A list made from spans of a buffer equals the same fields collected, at every
    /// length the short copies handle; spans that do not add up to the text are refused.
    #[test]
    fn made_from_spans() {
        let src: &[u8] = b"Host: a\r\nX: \r\nn: \xc3\x9f\r\n0123456789abcdefghij: 0123456789abcdef";
        let span = |name: (u32, u32), value: (u32, u32)| FieldSpan {
            name: name.0,
            name_end: name.1,
            value: value.0,
            value_end: value.1,
        };
        let spans = [
            span((0, 4), (6, 7)),
            span((9, 10), (12, 12)),
            span((14, 15), (17, 19)),
        ];
        let collected: Headers = [("Host", "a"), ("X", ""), ("n", "\u{df}")].into();
        let h = from_spans(src, &spans, 9, false).expect("fits");
        assert_eq!(h, collected);
        assert_eq!(format!("{h:?}"), format!("{collected:?}"));
        assert_eq!(h.text_len(), collected.text_len());
        assert_eq!(h.get("n"), Some("\u{df}"));
        assert!(from_spans(src, &spans, 10, false).is_none());
        assert!(from_spans(src, &spans[2..], 3, false).is_some());
        assert!(from_spans(&src[..18], &spans, 9, false).is_none());
        assert_eq!(from_spans(src, &[], 0, true), Some(Headers::new()));
        let not_utf8 = from_spans(b"a\xff", &[span((0, 1), (1, 2))], 2, false);
        assert!(not_utf8.is_none());
        // UTF-8 as a whole, but a character cut between a value and the next name: refused,
        // so that every end is a character boundary.
        let cut = [span((0, 1), (1, 2)), span((2, 3), (3, 4))];
        assert!(from_spans(b"a\xc3\xa9b", &cut, 4, false).is_none());
        let mut builder = HeadersBuilder::default();
        builder.push(b"a", b"\xc3");
        builder.push(b"\xa9", b"b");
        assert!(builder.finish(false).is_none());
        let mut builder = HeadersBuilder::default();
        builder.push(b"a", b"\xc3\xa9");
        assert_eq!(builder.finish(false), Some([("a", "\u{e9}")].into()));
        // Every name and value length from 0 to 20.
        let (names, values) = (21u32, 43u32);
        for n in 0..=20 {
            for v in 0..=16 {
                let h = from_spans(
                    src,
                    &[span((names, names + n), (values, values + v))],
                    (n + v) as usize,
                    true,
                )
                .expect("fits");
                let name =
                    std::str::from_utf8(&src[names as usize..(names + n) as usize]).expect("ASCII");
                let value = std::str::from_utf8(&src[values as usize..(values + v) as usize])
                    .expect("ASCII");
                assert_eq!(h, [(name, value)]);
            }
        }
    }

    /// Fields that repeat a recent list's exactly share its block; any other difference
    /// (a byte, where a name ends, how many fields) makes a list of their own.
    #[test]
    fn repeated_fields_share_a_block() {
        let span = |name: (u32, u32), value: (u32, u32)| FieldSpan {
            name: name.0,
            name_end: name.1,
            value: value.0,
            value_end: value.1,
        };
        let block = |h: &Headers| h.block.as_ref().map(|b| Arc::as_ptr(b).cast::<u8>());
        let a: &[u8] = b"Host: example.com\r\nAccept: */*\r\n";
        let spans = [span((0, 4), (6, 17)), span((19, 25), (27, 30))];
        let first = from_spans(a, &spans, 24, true).expect("fits");
        let again = from_spans(a.to_vec().as_slice(), &spans, 24, true).expect("fits");
        assert_eq!(again, first);
        assert_eq!(block(&again), block(&first), "shared");
        // One byte differs: a list of its own, which the next alike then shares.
        let b: &[u8] = b"Host: example.org\r\nAccept: */*\r\n";
        let other = from_spans(b, &spans, 24, true).expect("fits");
        assert_eq!(other, [("Host", "example.org"), ("Accept", "*/*")]);
        assert_ne!(block(&other), block(&first));
        assert_eq!(
            block(&from_spans(b, &spans, 24, true).expect("fits")),
            block(&other)
        );
        // The same text split elsewhere (same length): not the same fields.
        let split = [span((0, 5), (6, 17)), span((19, 25), (27, 30))];
        let moved = from_spans(b, &split, 25, true).expect("fits");
        assert_eq!(moved.get_index(0), Some(("Host:", "example.org")));
        let resplit = [span((0, 4), (5, 17)), span((19, 25), (27, 30))];
        let h = from_spans(b, &resplit, 25, true).expect("fits");
        assert_eq!(h.get_index(0), Some(("Host", " example.org")));
        assert_ne!(block(&h), block(&moved));
        // Fewer fields of the same total length are not the same list either.
        let one = [span((0, 4), (6, 17))];
        assert_eq!(from_spans(b, &one, 15, true).expect("fits").len(), 1);
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
