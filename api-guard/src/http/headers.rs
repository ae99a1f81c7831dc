//! An ordered list of header (or trailer) fields kept in one shared block.
//!
//! Every exchange carries its request and response fields to the analysis threads, and the
//! request's fields also go in the request notice handed to detection before the response.
//! As a `Vec<(String, String)>` a response of eight fields cost seventeen allocations to
//! build and as many frees on another thread (the allocator's slow path). Here a list is
//! one reference-counted block, where each field ends then the fields' text: one
//! allocation whatever its length, none to clone.

use std::{cell::Cell, fmt, mem::MaybeUninit, sync::Arc};

use serde::{ser::SerializeSeq, Serialize, Serializer};

/// Header fields in order: names and values as received (lossy UTF-8), duplicates kept.
#[derive(Clone, Default)]
pub struct Headers {
    /// For each field where its name and value end in the text (two native-endian `u32`s),
    /// then every field's name then value, back to back (UTF-8), then possibly unused bytes
    /// (a head's block is sized before its fields are known). `None` when empty.
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
        // SAFETY: a block is made only by `HeadersBuilder::finish_block` or `write_fields`,
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
        let name = text.get(start as usize..this.name as usize)?;
        let value = text.get(this.name as usize..this.value as usize)?;
        Some((name, value))
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
            text.get(ends.name as usize..ends.value as usize)
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

    /// The fields, or `None` if their text is not UTF-8. `ascii`: the caller saw every byte
    /// pushed and none was above 0x7f, so the text needs no UTF-8 check. The builder keeps
    /// its fields (to be recycled or dropped).
    pub(crate) fn finish(&mut self, ascii: bool) -> Option<Headers> {
        if ascii {
            debug_assert!(self.text.is_ascii());
        } else {
            std::str::from_utf8(&self.text).ok()?;
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

/// What [`write_fields`] made.
pub(crate) enum Written<T> {
    /// The fields, and what the writer returned.
    Fields(Headers, T),
    /// The writer gave up (`None`).
    Failed,
    /// More fields came than there was room for.
    TooMany,
    /// The text is not UTF-8, or too long for a block.
    Unfit,
}

/// Builds a list by writing its fields straight into its block (no builder to copy out
/// of): room for `fields` ends and `text` bytes of text is made first, and the text moved
/// down if fewer fields came. `write` pushes the fields and returns `None` to give up, or
/// its result and whether every byte pushed was ASCII (no UTF-8 check needed then).
pub(crate) fn write_fields<T>(
    fields: usize,
    text: usize,
    write: impl FnOnce(&mut BlockWriter<'_>) -> Option<(T, bool)>,
) -> Written<T> {
    let Some(len) = fields
        .checked_mul(ENDS_LEN)
        .and_then(|ends| ends.checked_add(text))
        .filter(|&len| u32::try_from(len).is_ok())
    else {
        return Written::Unfit;
    };
    // No block for a list that cannot have fields (a head of its start line alone). Not
    // zeroed: mimalloc's zeroing path is slower, and only the bytes left over are filled.
    let mut block = (fields > 0).then(|| Arc::<[u8]>::new_uninit_slice(len));
    let mut empty: [MaybeUninit<u8>; 0] = [];
    let buf: &mut [MaybeUninit<u8>] = match block.as_mut() {
        Some(block) => match Arc::get_mut(block) {
            Some(buf) => buf,
            None => return Written::Unfit,
        },
        None => &mut empty[..],
    };
    let mut writer = BlockWriter {
        buf,
        cap: fields,
        fields: 0,
        text: 0,
        too_many: false,
    };
    let Some((result, ascii)) = write(&mut writer) else {
        return Written::Failed;
    };
    let BlockWriter {
        buf,
        cap,
        fields,
        text: text_len,
        too_many,
    } = writer;
    if too_many {
        return Written::TooMany;
    }
    if fields < cap {
        // Fewer fields than room for (the rest went past the text limit).
        buf.copy_within(cap * ENDS_LEN..cap * ENDS_LEN + text_len, fields * ENDS_LEN);
    }
    let used = fields * ENDS_LEN + text_len;
    if let Some(rest) = buf.get_mut(used..) {
        rest.fill(MaybeUninit::new(0));
    }
    let (Ok(fields @ 1..), Ok(text_len), Some(block)) =
        (u32::try_from(fields), u32::try_from(text_len), block)
    else {
        return Written::Fields(Headers::new(), result);
    };
    // SAFETY: every byte is written: `fields` ends and `text_len` bytes of text by
    // `BlockWriter::push` (moved down if fewer fields came than room was made for), then
    // zeros after them.
    let block: Arc<[u8]> = unsafe { block.assume_init() };
    let text = block
        .get(used - text_len as usize..used)
        .unwrap_or_default();
    if ascii {
        debug_assert!(text.is_ascii());
    } else if std::str::from_utf8(text).is_err() {
        return Written::Unfit;
    }
    Written::Fields(
        Headers {
            block: Some(block),
            fields,
            text_len,
        },
        result,
    )
}

/// Appends fields to a block made by [`write_fields`].
pub(crate) struct BlockWriter<'b> {
    /// Room for `cap` ends, then the text.
    buf: &'b mut [MaybeUninit<u8>],
    cap: usize,
    fields: usize,
    /// Text bytes written.
    text: usize,
    /// A field came with no room left for it.
    too_many: bool,
}

impl BlockWriter<'_> {
    /// Appends a field (flags the list as having too many if there is no room).
    pub(crate) fn push(&mut self, name: &[u8], value: &[u8]) {
        let at = self.cap * ENDS_LEN + self.text;
        let name_end = self.text + name.len();
        let value_end = name_end + value.len();
        let fields = self.fields;
        let room = (self.fields < self.cap)
            .then(|| self.buf.split_at_mut_checked(at))
            .flatten()
            .and_then(|(ends, text)| {
                let ends = ends
                    .get_mut(fields * ENDS_LEN..)?
                    .first_chunk_mut::<ENDS_LEN>()?;
                let (name_dst, rest) = text.split_at_mut_checked(name.len())?;
                Some((ends, name_dst, rest.get_mut(..value.len())?))
            });
        let Some((ends, name_dst, value_dst)) = room else {
            self.too_many = true;
            return;
        };
        // Offsets fit: `write_fields` made a block shorter than 4 GiB.
        *ends = FieldEnds {
            name: name_end as u32,
            value: value_end as u32,
        }
        .bytes()
        .map(MaybeUninit::new);
        name_dst.write_copy_of_slice(name);
        value_dst.write_copy_of_slice(value);
        self.fields += 1;
        self.text = value_end;
    }

    /// Fields pushed so far.
    pub(crate) fn len(&self) -> usize {
        self.fields
    }
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
        let name = self.text.get(self.start as usize..ends.name as usize)?;
        let value = self.text.get(ends.name as usize..ends.value as usize)?;
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

    /// A list written into a block sized in advance equals the same fields collected, with
    /// room to spare for fields and text, with none, and when fields do not fit.
    #[test]
    fn written_in_place() {
        let fields: [(&[u8], &[u8]); 3] = [(b"Host", b"a"), (b"X", b""), (b"n", b"\xc3\x9f")];
        let collected: Headers = [("Host", "a"), ("X", ""), ("n", "\u{df}")].into();
        let write = |cap: usize, text: usize, count: usize| {
            write_fields(cap, text, |w| {
                for (name, value) in &fields[..count] {
                    w.push(name, value);
                }
                Some((w.len(), false))
            })
        };
        for (cap, text) in [(3, 9), (3, 100), (7, 9), (7, 100)] {
            let Written::Fields(h, n) = write(cap, text, 3) else {
                panic!("fits in {cap}, {text}");
            };
            assert_eq!((n, &h), (3, &collected));
            assert_eq!(format!("{h:?}"), format!("{collected:?}"));
            assert_eq!(h.text_len(), collected.text_len());
            assert_eq!(h.get("n"), Some("\u{df}"));
            assert_eq!(h.clone(), h);
        }
        let Written::Fields(h, _) = write(3, 9, 1) else {
            panic!("one field fits");
        };
        assert_eq!(h, [("Host", "a")]);
        let Written::Fields(h, _) = write(0, 0, 0) else {
            panic!("no fields fit");
        };
        assert!(h.is_empty() && h == Headers::new());
        assert!(matches!(write(2, 100, 3), Written::TooMany));
        assert!(matches!(write(3, 8, 3), Written::TooMany));
        let not_utf8 = write_fields(1, 4, |w| {
            w.push(b"a", b"\xff");
            Some(((), false))
        });
        assert!(matches!(not_utf8, Written::Unfit));
        assert!(matches!(
            write_fields(1, 4, |_| None::<((), bool)>),
            Written::Failed
        ));
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
