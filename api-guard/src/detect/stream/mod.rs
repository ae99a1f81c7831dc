//! Streaming extraction of a request body's values. The HTTP layer feeds the (de-chunked)
//! body to a [`BodyScanner`] as it arrives, so the detectors see the whole body up to
//! `detect.limits.max_body_bytes` although only a prefix of it is kept: JSON strings,
//! urlencoded and multipart fields, XML text and attributes, or the text itself, each with
//! its location. What a value needs across reads (a string split between two reads, an
//! escape cut in half, a multipart delimiter straddling them) is carried in the scanner,
//! never more than one value (`max_value_bytes`) plus a few bytes of state.
//!
//! Values are collected into a [`Window`]; the caller takes a window once it holds
//! [`WINDOW_BYTES`] and hands it to detection, so a megabyte body is judged in pieces while
//! it streams and memory stays bounded. Offline callers feed the whole body at once.

mod form;
mod json;
mod multipart;
mod text;

use super::inputs::{InputLimits, Source};

/// A window is handed out once its values hold this many bytes.
pub const WINDOW_BYTES: usize = 64 * 1024;
/// Bytes of an unlabelled body looked at before deciding what it is.
const SNIFF_BYTES: usize = 1024;

/// What bounds one scan (from `[detect.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLimits {
    /// Body bytes scanned; the rest is counted, not read.
    pub max_body_bytes: u64,
    /// Bytes kept of one value; the rest of it is skipped.
    pub max_value_bytes: usize,
    /// JSON nesting followed; deeper containers are skipped whole.
    pub max_json_depth: usize,
}

impl ScanLimits {
    #[must_use]
    pub fn of(limits: &InputLimits) -> Self {
        Self {
            max_body_bytes: limits.max_body_bytes as u64,
            max_value_bytes: limits.max_value_bytes.max(1),
            max_json_depth: limits.max_json_depth,
        }
    }
}

/// One value of the body, owned (it outlives the read it came from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyValue {
    pub source: Source,
    /// Field name, or the JSON path (`$.user.name`); empty for [`Source::Body`] and names.
    pub name: String,
    pub value: String,
}

/// Values scanned since the last window was taken, and where the scan stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    pub values: Vec<BodyValue>,
    /// Bytes of `values` (names and values).
    pub bytes: usize,
    /// Values cut to `max_value_bytes`, and JSON containers skipped for their depth.
    pub skipped: usize,
    /// Body bytes scanned from the start of the body up to this window's end.
    pub scanned: u64,
    /// The scan stopped at a capture gap: nothing after it was read.
    pub stopped_at_gap: bool,
    /// The scan read `max_body_bytes` and stopped there.
    pub limit_reached: bool,
    /// The last window of the body.
    pub last: bool,
}

impl Window {
    /// Bytes held (for memory accounting).
    #[must_use]
    pub fn retained_bytes(&self) -> usize {
        self.bytes
    }

    fn push(&mut self, source: Source, name: &str, value: &str) {
        if value.is_empty() && source != Source::ArgName {
            return;
        }
        self.bytes += name.len() + value.len();
        self.values.push(BodyValue {
            source,
            name: name.to_owned(),
            value: value.to_owned(),
        });
    }
}

/// Where the format scanners put what they find.
struct Out<'w> {
    window: &'w mut Window,
    max_value_bytes: usize,
}

impl Out<'_> {
    /// A value, lossy-decoded and cut to `max_value_bytes` (a cut is counted).
    fn value(&mut self, source: Source, name: &str, raw: &[u8]) {
        let text = crate::text::utf8_lossy(raw);
        let kept = crate::text::truncate(&text, self.max_value_bytes);
        if kept.len() < text.len() {
            self.window.skipped += 1;
        }
        self.window.push(source, name, kept);
    }

    fn skipped(&mut self, n: usize) {
        self.window.skipped += n;
    }
}

/// How the body is read, decided from its `Content-Type` (or its first bytes).
#[derive(Debug)]
enum Mode {
    /// No `Content-Type`: the first bytes decide.
    Sniff(Vec<u8>),
    Json(json::JsonScan),
    Form(form::FormScan),
    Multipart(Box<multipart::MultipartScan>),
    Xml(text::XmlScan),
    Text(text::TextScan),
    /// Nothing more is read (after a capture gap the structure is unknown).
    Stopped,
}

/// Incremental extraction of one body's values.
#[derive(Debug)]
pub struct BodyScanner {
    limits: ScanLimits,
    mode: Mode,
    window: Window,
    /// Body bytes scanned so far.
    fed: u64,
}

impl BodyScanner {
    /// A scanner for a body of media type `content_type` (the `Content-Type` value with
    /// its parameters, `None` when absent).
    #[must_use]
    pub fn new(content_type: Option<&str>, limits: ScanLimits) -> Self {
        let mode = match content_type {
            None => Mode::Sniff(Vec::new()),
            Some(ct) => mode_for(ct, limits),
        };
        Self {
            limits,
            mode,
            window: Window::default(),
            fed: 0,
        }
    }

    /// The next body bytes (after any earlier ones, with no gap between).
    pub fn feed(&mut self, data: &[u8]) {
        let room = self.limits.max_body_bytes.saturating_sub(self.fed);
        let data = data
            .get(..usize::try_from(room).unwrap_or(usize::MAX))
            .unwrap_or(data);
        if data.is_empty() || matches!(self.mode, Mode::Stopped) {
            return;
        }
        self.fed += data.len() as u64;
        self.run(data);
    }

    /// `len` body bytes were lost: the structure around them is unknown, so the scan ends
    /// here (what follows is counted as uninspected by the caller).
    pub fn gap(&mut self) {
        if matches!(self.mode, Mode::Stopped) {
            return;
        }
        if self.fed < self.limits.max_body_bytes {
            self.window.stopped_at_gap = true;
        }
        // What was collected before the gap is still judged.
        self.end_mode();
        self.mode = Mode::Stopped;
    }

    /// Takes the values collected so far once they fill a window.
    pub fn take_full_window(&mut self) -> Option<Window> {
        (self.window.bytes >= WINDOW_BYTES).then(|| self.take_window(false))
    }

    /// The body ended: the last window, with what was still being collected.
    #[must_use]
    pub fn finish(mut self) -> Window {
        self.end_mode();
        self.take_window(true)
    }

    /// Bytes held: the window, and the value being collected.
    #[must_use]
    pub fn retained_bytes(&self) -> usize {
        let pending = match &self.mode {
            Mode::Sniff(b) => b.len(),
            Mode::Json(s) => s.retained_bytes(),
            Mode::Form(s) => s.retained_bytes(),
            Mode::Multipart(s) => s.retained_bytes(),
            Mode::Xml(s) => s.retained_bytes(),
            Mode::Text(s) => s.retained_bytes(),
            Mode::Stopped => 0,
        };
        self.window.retained_bytes() + pending
    }

    fn take_window(&mut self, last: bool) -> Window {
        let mut w = std::mem::take(&mut self.window);
        w.scanned = self.fed;
        w.limit_reached = self.fed >= self.limits.max_body_bytes;
        w.last = last;
        self.window.stopped_at_gap = w.stopped_at_gap;
        w
    }

    fn out(&mut self) -> Out<'_> {
        Out {
            window: &mut self.window,
            max_value_bytes: self.limits.max_value_bytes,
        }
    }

    fn run(&mut self, data: &[u8]) {
        let max_value_bytes = self.limits.max_value_bytes;
        let mut out = Out {
            window: &mut self.window,
            max_value_bytes,
        };
        match &mut self.mode {
            Mode::Sniff(buf) => {
                buf.extend_from_slice(data);
                if buf.len() >= SNIFF_BYTES {
                    self.decide();
                }
            }
            Mode::Json(s) => {
                if let Err(at) = s.feed(data, &mut out) {
                    // Not JSON after all (or not any more): the rest is read as text.
                    let rest = data.get(at..).unwrap_or_default();
                    let mut text = text::TextScan::new(max_value_bytes);
                    text.feed(rest, &mut out);
                    self.mode = Mode::Text(text);
                }
            }
            Mode::Form(s) => s.feed(data, &mut out),
            Mode::Multipart(s) => s.feed(data, &mut out),
            Mode::Xml(s) => s.feed(data, &mut out),
            Mode::Text(s) => s.feed(data, &mut out),
            Mode::Stopped => {}
        }
    }

    /// An unlabelled body: JSON if it starts like JSON, a form if it reads like one, else
    /// text; the bytes looked at are then scanned as that.
    fn decide(&mut self) {
        let Mode::Sniff(buf) = std::mem::replace(&mut self.mode, Mode::Stopped) else {
            return;
        };
        let first = buf.iter().find(|b| !b.is_ascii_whitespace());
        self.mode = if matches!(first, Some(b'{' | b'[')) {
            Mode::Json(json::JsonScan::new(self.limits.max_json_depth))
        } else if looks_like_form(&buf) {
            Mode::Form(form::FormScan::new(self.limits.max_value_bytes))
        } else {
            Mode::Text(text::TextScan::new(self.limits.max_value_bytes))
        };
        self.run(&buf);
    }

    /// Emits what the current format scanner still holds.
    fn end_mode(&mut self) {
        if matches!(self.mode, Mode::Sniff(_)) {
            self.decide();
        }
        let mut mode = std::mem::replace(&mut self.mode, Mode::Stopped);
        let mut out = self.out();
        match &mut mode {
            Mode::Json(s) => s.finish(&mut out),
            Mode::Form(s) => s.finish(&mut out),
            Mode::Multipart(s) => s.finish(&mut out),
            Mode::Xml(s) => s.finish(&mut out),
            Mode::Text(s) => s.finish(&mut out),
            Mode::Sniff(_) | Mode::Stopped => {}
        }
    }
}

fn mode_for(content_type: &str, limits: ScanLimits) -> Mode {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let v = limits.max_value_bytes;
    if media.is_empty() {
        Mode::Sniff(Vec::new())
    } else if media.contains("json") {
        Mode::Json(json::JsonScan::new(limits.max_json_depth))
    } else if media == "application/x-www-form-urlencoded" {
        Mode::Form(form::FormScan::new(v))
    } else if media.contains("xml") {
        Mode::Xml(text::XmlScan::new(v))
    } else if media.starts_with("multipart/") {
        match multipart_boundary(content_type) {
            Some(b) => Mode::Multipart(Box::new(multipart::MultipartScan::new(&b, v))),
            None => Mode::Text(text::TextScan::new(v)),
        }
    } else {
        Mode::Text(text::TextScan::new(v))
    }
}

/// `a=b` on one line, or a single URL-encoded token (`%22+union+select%0A`): clients that
/// omit the content type send forms.
fn looks_like_form(body: &[u8]) -> bool {
    let line = body.strip_suffix(b"\n").unwrap_or(body);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (line.contains(&b'=') && !line.contains(&b'\n'))
        || (!line.iter().any(u8::is_ascii_whitespace)
            && line.iter().any(|&b| b == b'%' || b == b'+'))
}

fn multipart_boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let p = p.trim();
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

/// Keys made of identifier characters need no inspection. Dotted keys do: payloads name
/// classes and properties there (`{"java.lang.Runtime": …}`, cookie `class.module.x=…`).
pub(crate) fn is_plain_key(k: &str) -> bool {
    k.len() <= 64
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Appends to `buf` what of `data` fits under `max` bytes; false when some did not.
fn append_bounded(buf: &mut Vec<u8>, data: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(buf.len());
    buf.extend_from_slice(data.get(..room).unwrap_or(data));
    data.len() <= room
}

#[cfg(test)]
mod tests;
