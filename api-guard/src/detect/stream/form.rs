//! `application/x-www-form-urlencoded` fields, resumable at any byte: a name or value cut
//! between two reads is completed by the next one. Names and values are form-decoded once
//! whole (a `%2` cut from its digits decodes as it would have in one piece).

use memchr::{memchr, memchr2};

use super::Out;
use crate::{detect::inputs::Source, text::percent_decode_bytes};

#[derive(Debug)]
pub(super) struct FormScan {
    /// Raw (still encoded) name and value of the pair being read, each at most `raw_max`.
    name: Vec<u8>,
    value: Vec<u8>,
    in_value: bool,
    /// An encoded byte takes up to three: room for a whole value once decoded.
    raw_max: usize,
}

impl FormScan {
    pub(super) fn new(max_value_bytes: usize) -> Self {
        Self {
            name: Vec::new(),
            value: Vec::new(),
            in_value: false,
            raw_max: max_value_bytes.saturating_mul(3).saturating_add(4),
        }
    }

    pub(super) fn retained_bytes(&self) -> usize {
        self.name.capacity() + self.value.capacity()
    }

    pub(super) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) {
        let mut rest = data;
        while !rest.is_empty() {
            let (found, buf) = if self.in_value {
                (memchr(b'&', rest), &mut self.value)
            } else {
                (memchr2(b'=', b'&', rest), &mut self.name)
            };
            let Some(at) = found else {
                super::append_bounded(buf, rest, self.raw_max);
                return;
            };
            super::append_bounded(buf, &rest[..at], self.raw_max);
            if rest[at] == b'=' {
                self.in_value = true;
            } else {
                self.end_pair(out);
            }
            rest = &rest[at + 1..];
        }
    }

    /// The body ended: its last pair, without the line break some clients end it with.
    pub(super) fn finish(&mut self, out: &mut Out<'_>) {
        let last = if self.in_value {
            &mut self.value
        } else {
            &mut self.name
        };
        while last.last().is_some_and(|&b| b == b'\r' || b == b'\n') {
            last.pop();
        }
        self.end_pair(out);
    }

    fn end_pair(&mut self, out: &mut Out<'_>) {
        if !self.name.is_empty() || self.in_value {
            let name: Vec<u8> = percent_decode_bytes(&self.name, true).collect();
            let name = String::from_utf8_lossy(&name);
            let name = crate::text::truncate(&name, out.max_value_bytes);
            if !name.is_empty() {
                out.value(Source::ArgName, "", name.as_bytes());
            }
            let value: Vec<u8> = percent_decode_bytes(&self.value, true).collect();
            out.value(Source::Form, name, &value);
        }
        self.name.clear();
        self.value.clear();
        self.in_value = false;
    }
}
