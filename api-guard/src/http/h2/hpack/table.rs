//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2, §4).

use std::collections::VecDeque;

/// Per-entry overhead counted in a table's size (§4.1).
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// Number of static-table entries; the dynamic table's indices start after them.
pub(crate) const STATIC_LEN: usize = 61;

/// RFC 7541 Appendix A, index 1 first.
#[rustfmt::skip]
pub(crate) static STATIC_TABLE: [(&[u8], &[u8]); STATIC_LEN] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// A dynamic-table entry.
#[derive(Clone, Debug)]
pub(crate) enum Entry {
    /// Name and value in one allocation, the name first.
    Known { bytes: Box<[u8]>, name_len: usize },
    /// Inserted by a literal whose name referred to an entry from before a mid-stream join:
    /// it holds a position but its content is unknown. `size` is a lower bound (the value's
    /// length plus the overhead; the name's length is unknown).
    Placeholder { size: usize },
}

impl Entry {
    pub(crate) fn known(name: &[u8], value: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        Entry::Known {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        }
    }

    /// Size as §4.1 counts it (a lower bound for a placeholder).
    pub(crate) fn size(&self) -> usize {
        match self {
            Entry::Known { bytes, .. } => bytes.len() + ENTRY_OVERHEAD,
            Entry::Placeholder { size } => *size,
        }
    }

    /// Heap bytes of name and value.
    fn content_len(&self) -> usize {
        match self {
            Entry::Known { bytes, .. } => bytes.len(),
            Entry::Placeholder { .. } => 0,
        }
    }

    /// `(name, value)`, or `None` for a placeholder.
    pub(crate) fn field(&self) -> Option<(&[u8], &[u8])> {
        match self {
            Entry::Known { bytes, name_len } => Some(bytes.split_at_checked(*name_len)?),
            Entry::Placeholder { .. } => None,
        }
    }
}

/// The dynamic table, newest entry first (dynamic index 0 = HPACK index 62).
///
/// After a mid-stream join the table holds only the entries inserted since the join, and
/// `tail_unknown` says that the encoder's table may hold older, unknown ones behind them.
/// Keeping just the known newest-first list is exact for every index below its length:
/// the encoder inserts at the front and evicts only from the back (§4.4), so its table is
/// always "the entries we know" followed by "older ones we do not", and index 62 + i is the
/// i-th newest in both. Our eviction may keep *more* than the encoder does (placeholder
/// sizes are lower bounds and the table size may be an upper bound until a size update is
/// seen), which only leaves extra entries at the back, where a correct encoder never
/// points; it never keeps fewer, because every size we count is ≤ the true one and the
/// maximum we use is ≥ the true one. Once we evict anything, the encoder has necessarily
/// evicted everything older too, so the unknown tail is gone.
#[derive(Clone, Debug)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    /// Sum of the entries' sizes (§4.1).
    size: usize,
    /// The current maximum size (§4.2), set by size updates.
    max_size: usize,
    /// The encoder's table may hold entries older than ours that we never saw.
    tail_unknown: bool,
    /// Bytes of names and values held.
    content_bytes: usize,
}

/// What an index refers to.
pub(crate) enum Lookup<'a> {
    Field(&'a [u8], &'a [u8]),
    /// Refers to an entry this decoder cannot know (mid-stream join only).
    Unresolved,
    /// Outside the table: a decoding error.
    Invalid,
}

impl DynamicTable {
    pub(crate) fn new(max_size: usize, tail_unknown: bool) -> Self {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            tail_unknown,
            content_bytes: 0,
        }
    }

    pub(crate) fn size(&self) -> usize {
        self.size
    }

    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Resolves an HPACK index (1-based, static entries first).
    pub(crate) fn get(&self, index: u64) -> Lookup<'_> {
        let Some(i) = usize::try_from(index).ok().and_then(|i| i.checked_sub(1)) else {
            return Lookup::Invalid;
        };
        if let Some(&(name, value)) = STATIC_TABLE.get(i) {
            return Lookup::Field(name, value);
        }
        // `i` is past the static table here.
        let d = i.saturating_sub(STATIC_LEN);
        match self.entries.get(d) {
            Some(entry) => match entry.field() {
                Some((name, value)) => Lookup::Field(name, value),
                None => Lookup::Unresolved,
            },
            // An unknown older entry can only sit where a table of the current maximum
            // size could still have one (each entry counts at least 32 bytes).
            None if self.tail_unknown && d < self.max_size / ENTRY_OVERHEAD => Lookup::Unresolved,
            None => Lookup::Invalid,
        }
    }

    /// Inserts at the front after evicting what no longer fits (§4.4); an entry larger than
    /// the whole table empties it and is not inserted.
    pub(crate) fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max_size {
            self.clear();
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.content_bytes += entry.content_len();
        self.entries.push_front(entry);
    }

    /// A dynamic table size update (§6.3), already checked against the limits.
    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
        if max_size < ENTRY_OVERHEAD {
            // No entry fits at all: the encoder's table is empty.
            self.tail_unknown = false;
        }
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(old) = self.entries.pop_back() else {
                break;
            };
            self.size -= old.size();
            self.content_bytes -= old.content_len();
            self.tail_unknown = false;
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.size = 0;
        self.content_bytes = 0;
        self.tail_unknown = false;
    }

    /// Heap bytes held: entry contents plus the entry slots.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.content_bytes + self.entries.capacity() * std::mem::size_of::<Entry>()
    }

    /// Entries newest first (tests).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}
