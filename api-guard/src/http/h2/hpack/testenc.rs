//! A small HPACK encoder for the tests: every representation, Huffman on or off, table
//! size updates, and bookkeeping of which fields a decoder that joined mid-stream can
//! resolve.

use std::collections::VecDeque;

use super::huffman;
use super::table::{ENTRY_OVERHEAD, STATIC_TABLE};

/// How a field is to be represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Indexed when name and value are in a table, else a literal with incremental indexing.
    Index,
    /// Literal without indexing (§6.2.2).
    Without,
    /// Literal never indexed (§6.2.3).
    Never,
}

struct EncEntry {
    name: Vec<u8>,
    value: Vec<u8>,
    /// A decoder that joined at the last [`Encoder::mark_join`] knows this entry.
    known: bool,
}

impl EncEntry {
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + ENTRY_OVERHEAD
    }
}

pub(crate) struct Encoder {
    table: VecDeque<EncEntry>,
    size: usize,
    max_size: usize,
    /// Size updates to emit at the start of the next block.
    pending: Vec<usize>,
    pub(crate) huffman: bool,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        Encoder {
            table: VecDeque::new(),
            size: 0,
            max_size: 4096,
            pending: Vec::new(),
            huffman: false,
        }
    }

    /// Changes the table size; the update goes out with the next block.
    pub(crate) fn set_max_size(&mut self, n: usize) {
        self.pending.push(n);
        self.max_size = n;
        self.evict_to(n);
    }

    /// From now on, the entries present are unknown to a decoder that joins here.
    pub(crate) fn mark_join(&mut self) {
        for e in &mut self.table {
            e.known = false;
        }
    }

    pub(crate) fn table_size(&self) -> usize {
        self.size
    }

    /// Encodes one block; returns, per field, whether a decoder that joined at the last
    /// [`Encoder::mark_join`] can resolve it.
    pub(crate) fn encode(
        &mut self,
        fields: &[(&[u8], &[u8], Mode)],
        out: &mut Vec<u8>,
    ) -> Vec<bool> {
        for size in std::mem::take(&mut self.pending) {
            write_int(out, 0x20, 5, size as u64);
        }
        let mut resolvable = Vec::with_capacity(fields.len());
        for &(name, value, mode) in fields {
            let (full, name_at) = self.find(name, value);
            if let (Some(i), Mode::Index) = (full, mode) {
                write_int(out, 0x80, 7, i as u64);
                resolvable.push(self.known(i));
                continue;
            }
            let (first, prefix) = match mode {
                Mode::Index => (0x40, 6),
                Mode::Without => (0x00, 4),
                Mode::Never => (0x10, 4),
            };
            let name_known = match name_at {
                Some(i) => {
                    write_int(out, first, prefix, i as u64);
                    self.known(i)
                }
                None => {
                    write_int(out, first, prefix, 0);
                    self.write_str(out, name);
                    true
                }
            };
            self.write_str(out, value);
            resolvable.push(name_known);
            if mode == Mode::Index {
                self.insert(name, value, name_known);
            }
        }
        resolvable
    }

    /// HPACK indices of an entry equal to (name, value) and of one with that name.
    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let all = STATIC_TABLE
            .iter()
            .map(|&(n, v)| (n, v))
            .chain(self.table.iter().map(|e| (&e.name[..], &e.value[..])));
        let (mut full, mut by_name) = (None, None);
        for (i, (n, v)) in all.enumerate() {
            if n == name {
                by_name.get_or_insert(i + 1);
                if v == value {
                    full = Some(i + 1);
                    break;
                }
            }
        }
        (full, by_name)
    }

    fn known(&self, index: usize) -> bool {
        index <= STATIC_TABLE.len() || self.table[index - STATIC_TABLE.len() - 1].known
    }

    fn insert(&mut self, name: &[u8], value: &[u8], known: bool) {
        let entry = EncEntry {
            name: name.to_vec(),
            value: value.to_vec(),
            known,
        };
        let size = entry.size();
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.table.push_front(entry);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let old = self.table.pop_back().unwrap();
            self.size -= old.size();
        }
    }

    fn write_str(&self, out: &mut Vec<u8>, s: &[u8]) {
        if self.huffman {
            write_int(out, 0x80, 7, huffman::encoded_len(s) as u64);
            huffman::encode(s, out);
        } else {
            write_int(out, 0x00, 7, s.len() as u64);
            out.extend_from_slice(s);
        }
    }
}

/// An integer with an `n`-bit prefix (§5.1); `first` holds the representation's flag bits.
pub(crate) fn write_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: u64) {
    let max = (1u64 << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}
