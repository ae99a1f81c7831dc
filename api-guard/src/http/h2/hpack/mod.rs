//! HPACK header decompression (RFC 7541) for passively captured HTTP/2 connections.
//!
//! One [`Decoder`] per connection direction decodes every header block of that direction in
//! order (the dynamic table is shared by all streams). It works from the start of a
//! connection ([`Decoder::new`]) or from a point in the middle ([`Decoder::joined_mid_stream`]),
//! where fields referring to table entries from before the join are counted but not
//! emitted. Every input is bounded: table sizes by [`HpackLimits::max_table_size`], a block's
//! fields by [`HpackLimits::max_fields`] and [`HpackLimits::max_header_list_size`], and no
//! input makes it panic.
//!
//! After [`Decoder::decode`] returns an error the decoder's state (its dynamic table) is
//! unknown: part of the block may have been applied. The caller must stop using it for
//! that connection direction (the connection leaves HTTP/2 parsing).

mod huffman;
mod table;
#[cfg(test)]
mod testenc;
#[cfg(test)]
mod tests;

use table::{DynamicTable, Entry, Lookup, ENTRY_OVERHEAD};

/// Bounds on what one decoder accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HpackLimits {
    /// Largest dynamic table size (SETTINGS value or size update) accepted.
    pub max_table_size: usize,
    /// Largest sum over a block of name + value + 32 per field (as SETTINGS_MAX_HEADER_LIST_SIZE).
    pub max_header_list_size: usize,
    /// Largest number of fields per block.
    pub max_fields: usize,
}

impl Default for HpackLimits {
    fn default() -> Self {
        HpackLimits {
            max_table_size: 65_536,
            max_header_list_size: 65_536,
            max_fields: 256,
        }
    }
}

/// One decoded header field; the slices borrow the block, the dynamic table or the
/// decoder's scratch buffer, so they live only for the `emit` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// Sent as a never-indexed literal (§6.2.3): the sender marked it sensitive.
    pub sensitive: bool,
}

/// What one block held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Fields passed to `emit`.
    pub fields: u32,
    /// Fields skipped because they refer to dynamic-table entries from before a mid-stream
    /// join.
    pub unresolved: u32,
}

/// Why a block could not be decoded. After any of these the decoder must not be used again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    #[error("HPACK block truncated")]
    Truncated,
    #[error("HPACK integer overflows")]
    IntegerOverflow,
    #[error("HPACK index {0} is not in the tables")]
    InvalidIndex(u64),
    #[error("invalid HPACK Huffman string")]
    Huffman,
    #[error("HPACK dynamic table size update to {0} exceeds the allowed maximum")]
    TableSizeUpdate(u64),
    #[error("HPACK dynamic table size update after a header field")]
    TableSizeUpdateNotAtStart,
    #[error("HPACK header list exceeds the size limit")]
    HeaderListTooLarge,
    #[error("HPACK header block has too many fields")]
    TooManyFields,
}

/// The table size both sides start with (RFC 9113 §6.5.2, SETTINGS_HEADER_TABLE_SIZE).
const DEFAULT_TABLE_SIZE: usize = 4096;

/// An HPACK decoder for one direction of one connection.
#[derive(Clone, Debug)]
pub struct Decoder {
    limits: HpackLimits,
    table: DynamicTable,
    /// The decoding peer's SETTINGS_HEADER_TABLE_SIZE, clamped to the cap: size updates may
    /// not exceed it.
    setting: usize,
    /// Huffman-decoded names and values of the current field (reused, never shrunk below
    /// what one field needed; bounded by `max_header_list_size`).
    scratch: Vec<u8>,
}

/// Where a decoded string lives until the field is complete.
#[derive(Clone, Copy)]
enum Str {
    /// `block[start..end]`.
    Block(usize, usize),
    /// `scratch[start..end]`.
    Scratch(usize, usize),
}

impl Str {
    fn len(self) -> usize {
        match self {
            Str::Block(s, e) | Str::Scratch(s, e) => e.saturating_sub(s),
        }
    }

    fn get<'a>(self, block: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
        match self {
            Str::Block(s, e) => block.get(s..e),
            Str::Scratch(s, e) => scratch.get(s..e),
        }
        .unwrap_or_default()
    }
}

/// A literal field's name.
#[derive(Clone, Copy)]
enum Name<'t> {
    Literal(Str),
    /// From the static or dynamic table.
    Table(&'t [u8]),
    /// A dynamic-table entry from before a mid-stream join.
    Unresolved,
}

/// How a literal field is to be indexed (§6.2).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Indexing {
    Incremental,
    Without,
    Never,
}

impl Decoder {
    /// Decoder for a connection seen from its start: dynamic table empty, size 4096 (or the
    /// cap, if lower).
    pub fn new(limits: HpackLimits) -> Self {
        let size = DEFAULT_TABLE_SIZE.min(limits.max_table_size);
        Decoder {
            limits,
            table: DynamicTable::new(size, false),
            setting: size,
            scratch: Vec::new(),
        }
    }

    /// Decoder for a connection joined mid-way: the dynamic table's earlier entries are
    /// unknown. Fields that refer to them are counted in [`BlockInfo::unresolved`] and not
    /// emitted. Until [`Decoder::set_max_table_size_setting`] says otherwise, the table size
    /// setting is assumed to be the cap (the peer may have raised it before the join).
    pub fn joined_mid_stream(limits: HpackLimits) -> Self {
        Decoder {
            limits,
            table: DynamicTable::new(limits.max_table_size, true),
            setting: limits.max_table_size,
            scratch: Vec::new(),
        }
    }

    /// The decoding peer announced SETTINGS_HEADER_TABLE_SIZE = n: later size updates must
    /// not exceed it (clamped to [`HpackLimits::max_table_size`]). The table itself changes
    /// only when the encoder sends a size update (§4.2).
    pub fn set_max_table_size_setting(&mut self, n: u32) {
        self.setting = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.limits.max_table_size);
    }

    /// Decodes one complete header block (HEADERS + CONTINUATION fragments already joined,
    /// padding and priority removed), calling `emit` for each field in order.
    ///
    /// Fields that refer to dynamic-table entries this decoder never saw (mid-stream join)
    /// are not emitted but counted in [`BlockInfo::unresolved`]. On error, fields before the
    /// error have been emitted and the decoder must be discarded (see the module docs).
    pub fn decode(
        &mut self,
        block: &[u8],
        emit: &mut dyn FnMut(Field<'_>),
    ) -> Result<BlockInfo, HpackError> {
        let mut info = BlockInfo::default();
        let mut pos = 0usize;
        let mut list_size = 0usize;
        let mut count = 0usize;
        let mut at_start = true;
        while let Some(&first) = block.get(pos) {
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3).
                if !at_start {
                    return Err(HpackError::TableSizeUpdateNotAtStart);
                }
                let size = read_int(block, &mut pos, 5)?;
                match usize::try_from(size) {
                    Ok(s) if s <= self.setting => self.table.set_max_size(s),
                    _ => return Err(HpackError::TableSizeUpdate(size)),
                }
                continue;
            }
            at_start = false;
            if count >= self.limits.max_fields {
                return Err(HpackError::TooManyFields);
            }
            count += 1;
            // Largest name + value this field may still have.
            let budget = self
                .limits
                .max_header_list_size
                .checked_sub(list_size)
                .and_then(|b| b.checked_sub(ENTRY_OVERHEAD))
                .ok_or(HpackError::HeaderListTooLarge)?;

            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = read_int(block, &mut pos, 7)?;
                match self.table.get(index) {
                    Lookup::Field(name, value) => {
                        let len = name.len() + value.len();
                        if len > budget {
                            return Err(HpackError::HeaderListTooLarge);
                        }
                        list_size += len + ENTRY_OVERHEAD;
                        emit(Field {
                            name,
                            value,
                            sensitive: false,
                        });
                        info.fields = info.fields.saturating_add(1);
                    }
                    Lookup::Unresolved => {
                        list_size += ENTRY_OVERHEAD;
                        info.unresolved = info.unresolved.saturating_add(1);
                    }
                    Lookup::Invalid => return Err(HpackError::InvalidIndex(index)),
                }
                continue;
            }

            // Literal field (§6.2).
            let (indexing, prefix) = match first & 0xf0 {
                0x00 => (Indexing::Without, 4),
                0x10 => (Indexing::Never, 4),
                _ => (Indexing::Incremental, 6),
            };
            let name_index = read_int(block, &mut pos, prefix)?;
            self.scratch.clear();
            let name = if name_index == 0 {
                Name::Literal(read_str(block, &mut pos, budget, &mut self.scratch)?)
            } else {
                match self.table.get(name_index) {
                    Lookup::Field(name, _) => Name::Table(name),
                    Lookup::Unresolved => Name::Unresolved,
                    Lookup::Invalid => return Err(HpackError::InvalidIndex(name_index)),
                }
            };
            let name_len = match name {
                Name::Literal(s) => s.len(),
                Name::Table(name) => name.len(),
                Name::Unresolved => 0,
            };
            let value_budget = budget
                .checked_sub(name_len)
                .ok_or(HpackError::HeaderListTooLarge)?;
            let value = read_str(block, &mut pos, value_budget, &mut self.scratch)?;
            list_size += name_len + value.len() + ENTRY_OVERHEAD;

            let value = value.get(block, &self.scratch);
            let name = match name {
                Name::Literal(s) => Some(s.get(block, &self.scratch)),
                Name::Table(name) => Some(name),
                Name::Unresolved => None,
            };
            match name {
                Some(name) => {
                    emit(Field {
                        name,
                        value,
                        sensitive: indexing == Indexing::Never,
                    });
                    info.fields = info.fields.saturating_add(1);
                }
                None => info.unresolved = info.unresolved.saturating_add(1),
            }
            if indexing == Indexing::Incremental {
                let entry = match name {
                    Some(name) => Entry::known(name, value),
                    None => Entry::Placeholder {
                        size: value.len() + ENTRY_OVERHEAD,
                    },
                };
                self.table.insert(entry);
            }
        }
        Ok(info)
    }

    /// Bytes of heap memory held: dynamic-table contents and slots, and the scratch buffer.
    pub fn retained_bytes(&self) -> usize {
        self.table.retained_bytes() + self.scratch.capacity()
    }

    /// The dynamic table's current size as §4.1 counts it.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// The dynamic table's current maximum size (§4.2).
    pub fn max_table_size(&self) -> usize {
        self.table.max_size()
    }

    /// Number of dynamic-table entries held (placeholders included).
    pub fn table_len(&self) -> usize {
        self.table.len()
    }
}

/// Reads an integer with an `n`-bit prefix (§5.1) at `*pos`, which must be in the block.
/// Values that do not fit in 64 bits are an error, which also bounds the number of
/// continuation bytes (ten at most).
fn read_int(block: &[u8], pos: &mut usize, n: u32) -> Result<u64, HpackError> {
    let max_prefix = (1u8 << n) - 1;
    let first = block.get(*pos).ok_or(HpackError::Truncated)? & max_prefix;
    *pos += 1;
    if first < max_prefix {
        return Ok(u64::from(first));
    }
    let mut value = u64::from(max_prefix);
    let mut shift = 0u32;
    loop {
        let byte = *block.get(*pos).ok_or(HpackError::Truncated)?;
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        let add = bits
            .checked_shl(shift)
            .filter(|v| v >> shift == bits)
            .ok_or(HpackError::IntegerOverflow)?;
        value = value.checked_add(add).ok_or(HpackError::IntegerOverflow)?;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
        shift += 7;
    }
}

/// Reads a string literal (§5.2): raw bytes stay in the block, Huffman-coded ones are
/// decoded onto the end of `scratch`. Longer than `budget` bytes is
/// [`HpackError::HeaderListTooLarge`].
fn read_str(
    block: &[u8],
    pos: &mut usize,
    budget: usize,
    scratch: &mut Vec<u8>,
) -> Result<Str, HpackError> {
    let huffman = block.get(*pos).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = read_int(block, pos, 7)?;
    let start = *pos;
    let end = usize::try_from(len)
        .ok()
        .and_then(|len| start.checked_add(len))
        .filter(|&end| end <= block.len())
        .ok_or(HpackError::Truncated)?;
    let src = block.get(start..end).ok_or(HpackError::Truncated)?;
    *pos = end;
    if huffman {
        let at = scratch.len();
        huffman::decode(src, budget, scratch)?;
        Ok(Str::Scratch(at, scratch.len()))
    } else if src.len() > budget {
        Err(HpackError::HeaderListTooLarge)
    } else {
        Ok(Str::Block(start, end))
    }
}
