//! JSON strings (values, and keys that are not plain names) with their paths, read as a
//! resumable state machine: a string, an escape or a `\u` sequence may be cut anywhere.
//! Lenient, as a tolerant back end reads JSON: any character after a backslash, any run of
//! non-structural bytes as a scalar, several documents in a row (NDJSON). Containers nested
//! deeper than the limit are skipped whole, counted once, without a stack of their own.

use memchr::memchr2;

use super::{is_plain_key, Out};
use crate::detect::inputs::Source;

/// Bytes of one key kept in the path.
const MAX_PATH_KEY_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must come (top level, after `:`, after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ValueOrEnd,
    /// After `{` or `,` in an object: a key or `}`.
    Key,
    Colon,
    /// After a value: `,`, the container's end, or (top level) the next document.
    After,
    Str,
    /// In a string, after a backslash.
    Escape,
    /// In a `\u` escape: hex digits read so far and their value.
    Unicode(u8, u16),
    Scalar,
    /// Inside a container nested too deep: how deep, and whether in a string (after a
    /// backslash).
    Skip {
        depth: u64,
        in_string: bool,
        escape: bool,
    },
}

#[derive(Debug)]
pub(super) struct JsonScan {
    max_depth: usize,
    state: State,
    /// Open containers: (is object, path length at the container, next array index).
    stack: Vec<(bool, usize, usize)>,
    path: String,
    /// The string being read, unescaped, at most `max + 4` bytes.
    buf: Vec<u8>,
    is_key: bool,
    /// A high surrogate waiting for its low half.
    high: Option<u16>,
    max_value: usize,
}

impl JsonScan {
    pub(super) fn new(max_depth: usize) -> Self {
        Self {
            max_depth,
            state: State::Value,
            stack: Vec::new(),
            path: String::from("$"),
            buf: Vec::new(),
            is_key: false,
            high: None,
            max_value: 0,
        }
    }

    pub(super) fn retained_bytes(&self) -> usize {
        self.buf.capacity() + self.path.capacity() + self.stack.capacity() * 24
    }

    /// Scans `data`; `Err(at)` when the bytes from `at` on are not JSON.
    pub(super) fn feed(&mut self, data: &[u8], out: &mut Out<'_>) -> Result<(), usize> {
        self.max_value = out.max_value_bytes + 4;
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            match self.state {
                State::Str => {
                    let rest = &data[i..];
                    if self.high.is_some() && !matches!(rest.first(), Some(b'"' | b'\\')) {
                        // A high surrogate followed by a character, not its low half.
                        self.flush_high();
                    }
                    match memchr2(b'"', b'\\', rest) {
                        None => {
                            self.keep(rest);
                            i = data.len();
                        }
                        Some(n) => {
                            self.keep(&rest[..n]);
                            i += n + 1;
                            if rest[n] == b'"' {
                                self.flush_high();
                                self.end_string(out);
                            } else {
                                self.state = State::Escape;
                            }
                        }
                    }
                    continue;
                }
                State::Escape => {
                    if b == b'u' {
                        self.state = State::Unicode(0, 0);
                    } else {
                        self.flush_high();
                        let c = match b {
                            b'b' => 0x08,
                            b'f' => 0x0c,
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            other => other,
                        };
                        self.keep(&[c]);
                        self.state = State::Str;
                    }
                }
                State::Unicode(n, acc) => {
                    let Some(d) = crate::text::hex_value(b) else {
                        return Err(i);
                    };
                    let acc = acc << 4 | u16::from(d);
                    if n == 3 {
                        self.unit(acc);
                        self.state = State::Str;
                    } else {
                        self.state = State::Unicode(n + 1, acc);
                    }
                }
                State::Skip {
                    depth,
                    in_string,
                    escape,
                } => {
                    self.state = match (in_string, escape, b) {
                        (true, true, _) => State::Skip {
                            depth,
                            in_string,
                            escape: false,
                        },
                        (true, false, b'\\') => State::Skip {
                            depth,
                            in_string,
                            escape: true,
                        },
                        (true, false, b'"') | (false, _, b'"') => State::Skip {
                            depth,
                            in_string: !in_string,
                            escape: false,
                        },
                        (false, _, b'[' | b'{') => State::Skip {
                            depth: depth + 1,
                            in_string,
                            escape,
                        },
                        (false, _, b']' | b'}') if depth <= 1 => State::After,
                        (false, _, b']' | b'}') => State::Skip {
                            depth: depth - 1,
                            in_string,
                            escape,
                        },
                        _ => self.state,
                    };
                }
                State::Scalar => {
                    if is_delimiter(b) {
                        self.state = State::After;
                        continue; // the delimiter is read in `After`
                    }
                }
                _ if b.is_ascii_whitespace() => {}
                State::Value | State::ValueOrEnd => {
                    if b == b']' && self.state == State::ValueOrEnd {
                        self.close(false).ok_or(i)?;
                    } else {
                        self.element();
                        match b {
                            b'{' | b'[' => self.open(b == b'{', out),
                            b'"' => self.begin_string(false),
                            b',' | b':' | b']' | b'}' => return Err(i),
                            _ => self.state = State::Scalar,
                        }
                    }
                }
                State::Key => match b {
                    b'"' => self.begin_string(true),
                    // A trailing comma, as lenient parsers accept.
                    b'}' => self.close(true).ok_or(i)?,
                    _ => return Err(i),
                },
                State::Colon => {
                    if b != b':' {
                        return Err(i);
                    }
                    self.state = State::Value;
                }
                State::After => match (self.stack.last_mut(), b) {
                    (Some((true, _, _)), b',') => self.state = State::Key,
                    (Some((false, _, index)), b',') => {
                        *index += 1;
                        self.state = State::Value;
                    }
                    (Some((is_object, _, _)), b'}' | b']') => {
                        let object = *is_object;
                        if object != (b == b'}') {
                            return Err(i);
                        }
                        self.close(object).ok_or(i)?;
                    }
                    // The next document of a stream of them.
                    (None, _) => {
                        self.path.truncate(1);
                        self.state = State::Value;
                        continue;
                    }
                    _ => return Err(i),
                },
            }
            i += 1;
        }
        Ok(())
    }

    /// The body ended: a string cut short is still judged.
    pub(super) fn finish(&mut self, out: &mut Out<'_>) {
        if matches!(self.state, State::Str | State::Escape | State::Unicode(..)) && !self.is_key {
            self.flush_high();
            out.value(Source::Json, &self.path, &self.buf);
        }
        self.buf = Vec::new();
    }

    /// Before a value in an array: its path gets the element's index.
    fn element(&mut self) {
        if let Some(&(false, mark, index)) = self.stack.last() {
            self.path.truncate(mark);
            self.path.push('[');
            crate::text::push_decimal(&mut self.path, index);
            self.path.push(']');
        }
    }

    fn open(&mut self, object: bool, out: &mut Out<'_>) {
        if self.stack.len() >= self.max_depth {
            out.skipped(1);
            self.state = State::Skip {
                depth: 1,
                in_string: false,
                escape: false,
            };
            return;
        }
        self.stack.push((object, self.path.len(), 0));
        self.state = if object {
            State::Key
        } else {
            State::ValueOrEnd
        };
    }

    fn close(&mut self, object: bool) -> Option<()> {
        let (is_object, mark, _) = self.stack.pop()?;
        if is_object != object {
            return None;
        }
        self.path.truncate(mark);
        self.state = State::After;
        Some(())
    }

    fn begin_string(&mut self, key: bool) {
        self.is_key = key;
        self.buf.clear();
        self.high = None;
        self.state = State::Str;
    }

    fn end_string(&mut self, out: &mut Out<'_>) {
        if self.is_key {
            let key = crate::text::utf8_lossy(&self.buf);
            if !is_plain_key(&key) {
                out.value(Source::ArgName, "", &self.buf);
            }
            let mark = self.stack.last().map_or(1, |&(_, mark, _)| mark);
            self.path.truncate(mark);
            self.path.push('.');
            self.path
                .push_str(crate::text::truncate(&key, MAX_PATH_KEY_BYTES));
            self.state = State::Colon;
        } else {
            out.value(Source::Json, &self.path, &self.buf);
            self.state = State::After;
        }
        self.buf.clear();
    }

    fn keep(&mut self, bytes: &[u8]) {
        super::append_bounded(&mut self.buf, bytes, self.max_value);
    }

    fn push_char(&mut self, c: char) {
        self.keep(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    /// A UTF-16 code unit from a `\u` escape; lone surrogates become U+FFFD.
    fn unit(&mut self, u: u16) {
        match u {
            0xD800..=0xDBFF => {
                self.flush_high();
                self.high = Some(u);
            }
            0xDC00..=0xDFFF => match self.high.take() {
                Some(h) => {
                    let c = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(u) - 0xDC00);
                    self.push_char(char::from_u32(c).unwrap_or('\u{fffd}'));
                }
                None => self.push_char('\u{fffd}'),
            },
            _ => {
                self.flush_high();
                self.push_char(char::from_u32(u32::from(u)).unwrap_or('\u{fffd}'));
            }
        }
    }

    fn flush_high(&mut self) {
        if self.high.take().is_some() {
            self.push_char('\u{fffd}');
        }
    }
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace() || matches!(b, b',' | b']' | b'}' | b':' | b'"' | b'[' | b'{')
}
