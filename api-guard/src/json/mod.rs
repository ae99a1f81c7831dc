//! One streaming JSON tokenizer for every reader of JSON bodies (detection inputs, schema
//! inference, sensitive-data classification). It pulls one event at a time from a byte
//! slice, builds no document, and allocates nothing (a container stack past 128 levels
//! aside): strings are handed out raw, as slices of the body, with [`Str`] helpers that
//! unescape them only when asked. Work is linear in the input; the state is a bit per
//! open container, and containers nested deeper than `max_depth` are reported as
//! [`Token::TooDeep`] and then skipped without recursion, so hostile depth costs no stack
//! in the tokenizer or in a recursive consumer.
//!
//! Two dialects: [`Dialect::Strict`] is the RFC 8259 grammar (strings are not checked for
//! control characters or UTF-8 here: see [`Str::unescape_strict`]); [`Dialect::Lenient`]
//! reads what a tolerant back end would: any character after a backslash, and any run of
//! `[a-z0-9.+-E]` starting like a literal or number as that scalar.

mod unescape;

#[cfg(test)]
pub(crate) mod tests;

use memchr::memchr2;

/// Which grammar the tokenizer accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 8259: exact literals and numbers, only the JSON escapes.
    Strict,
    /// Any escaped character, loose scalars (`tru`, `1.2.3`); `\u` still needs four hex digits.
    Lenient,
}

/// A string as written between its quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Str<'a> {
    raw: &'a [u8],
    escaped: bool,
}

/// A number as written; `integer` when it has no fraction and no exponent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Number<'a> {
    pub raw: &'a [u8],
    pub integer: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'a> {
    ObjectStart,
    ObjectEnd,
    ArrayStart,
    ArrayEnd,
    /// A member name; emitted once its `:` has been read.
    Key(Str<'a>),
    String(Str<'a>),
    Number(Number<'a>),
    Bool(bool),
    Null,
    /// A container opening past `max_depth`; the next call skips it whole (counting
    /// brackets outside strings, without checking that they pair up).
    TooDeep {
        object: bool,
    },
}

/// A token and the bytes it spans (`start..end`; a container's start and end are each
/// one byte, a string's span includes its quotes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    pub token: Token<'a>,
    pub start: usize,
    pub end: usize,
}

/// Why the input is not one JSON value; each carries the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("JSON cut short at byte {0}")]
    Truncated(usize),
    #[error("unexpected byte in JSON at {0}")]
    Syntax(usize),
    #[error("invalid escape in a JSON string at {0}")]
    Escape(usize),
    #[error("data after the JSON value at byte {0}")]
    Trailing(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A value must come next (start, after `:`, after `,` in an array).
    Value,
    /// After `[`: a value or `]`.
    ArrayFirst,
    /// After `{`: a key or `}`.
    ObjectFirst,
    /// After a value: `,`, the closer, or (at the top) the end.
    After,
    /// At a too-deep container's opener.
    Skip,
    Done,
    Failed(Error),
}

/// Levels of nesting tracked in the inline bit stack.
const INLINE_LEVELS: usize = 128;

pub struct Tokenizer<'a> {
    b: &'a [u8],
    i: usize,
    dialect: Dialect,
    max_depth: usize,
    depth: usize,
    /// Bit `n` set: the container open at level `n` is an object.
    stack: u128,
    /// Levels from `INLINE_LEVELS` on (only with a `max_depth` above it).
    deep: Vec<bool>,
    state: State,
}

impl<'a> Tokenizer<'a> {
    /// A tokenizer of `body`, which should hold one JSON value; at most `max_depth`
    /// containers are open at once.
    #[inline]
    pub fn new(body: &'a [u8], dialect: Dialect, max_depth: usize) -> Self {
        Tokenizer {
            b: body,
            i: 0,
            dialect,
            max_depth,
            depth: 0,
            stack: 0,
            deep: Vec::new(),
            state: State::Value,
        }
    }

    /// The next event; `Ok(None)` once the value is complete and only whitespace follows.
    /// After an error, the same error again.
    #[expect(
        clippy::should_implement_trait,
        reason = "an Iterator of Results blurs the end of the value with an error"
    )]
    // Inlined into consumers for speed (events are then never copied through memory); not
    // in debug builds, whose unshared stack slots would make each frame of a recursive
    // consumer large enough to overflow the stack at depth 127.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline(never))]
    pub fn next(&mut self) -> Result<Option<Event<'a>>, Error> {
        let r = self.step();
        if let Err(e) = r {
            self.state = State::Failed(e);
        }
        r
    }

    /// Bytes consumed so far.
    #[inline]
    pub fn offset(&self) -> usize {
        self.i
    }

    /// Containers open.
    #[inline]
    pub fn depth(&self) -> usize {
        self.depth
    }

    #[inline(always)]
    fn step(&mut self) -> Result<Option<Event<'a>>, Error> {
        match self.state {
            State::Value => self.value(),
            State::ArrayFirst => {
                self.ws();
                if self.peek() == Some(b']') {
                    return Ok(Some(self.close()));
                }
                self.value()
            }
            State::ObjectFirst => {
                self.ws();
                if self.peek() == Some(b'}') {
                    return Ok(Some(self.close()));
                }
                self.key()
            }
            State::After => self.after(),
            State::Skip => {
                self.skip()?;
                self.state = State::After;
                self.after()
            }
            State::Done => Ok(None),
            State::Failed(e) => Err(e),
        }
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// `Truncated` at the end of input, else `Syntax`, at the current offset.
    #[inline]
    fn unexpected(&self) -> Error {
        self.cut_or_syntax(self.i)
    }

    /// `Truncated` when `i` is the end of input, else `Syntax` at `i`.
    #[cold]
    fn cut_or_syntax(&self, i: usize) -> Error {
        if i >= self.b.len() {
            Error::Truncated(self.b.len())
        } else {
            Error::Syntax(i)
        }
    }

    #[inline(always)]
    fn top_is_object(&self) -> bool {
        let level = self.depth - 1;
        if level < INLINE_LEVELS {
            self.stack >> level & 1 == 1
        } else {
            self.deep.last().copied().unwrap_or(false)
        }
    }

    #[inline(always)]
    fn after(&mut self) -> Result<Option<Event<'a>>, Error> {
        self.ws();
        if self.depth == 0 {
            if self.i != self.b.len() {
                return Err(Error::Trailing(self.i));
            }
            self.state = State::Done;
            return Ok(None);
        }
        let object = self.top_is_object();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                if object {
                    self.key()
                } else {
                    self.value()
                }
            }
            Some(b'}') if object => Ok(Some(self.close())),
            Some(b']') if !object => Ok(Some(self.close())),
            _ => Err(self.unexpected()),
        }
    }

    /// Consumes the closer at `self.i` of the innermost container.
    #[inline(always)]
    fn close(&mut self) -> Event<'a> {
        let start = self.i;
        self.i += 1;
        let object = self.top_is_object();
        self.depth -= 1;
        if self.depth >= INLINE_LEVELS {
            self.deep.pop();
        } else {
            self.stack &= !(1 << self.depth);
        }
        self.state = State::After;
        let token = if object {
            Token::ObjectEnd
        } else {
            Token::ArrayEnd
        };
        Event {
            token,
            start,
            end: self.i,
        }
    }

    #[inline(always)]
    fn key(&mut self) -> Result<Option<Event<'a>>, Error> {
        self.ws();
        let start = self.i;
        if self.peek() != Some(b'"') {
            return Err(self.unexpected());
        }
        let s = self.string()?;
        let end = self.i;
        self.ws();
        if self.peek() != Some(b':') {
            return Err(self.unexpected());
        }
        self.i += 1;
        self.state = State::Value;
        Ok(Some(Event {
            token: Token::Key(s),
            start,
            end,
        }))
    }

    #[inline(always)]
    fn value(&mut self) -> Result<Option<Event<'a>>, Error> {
        self.ws();
        let start = self.i;
        let c = self.peek().ok_or(Error::Truncated(start))?;
        let token = match c {
            b'{' | b'[' => {
                let object = c == b'{';
                if self.depth >= self.max_depth {
                    self.state = State::Skip;
                    return Ok(Some(Event {
                        token: Token::TooDeep { object },
                        start,
                        end: start + 1,
                    }));
                }
                self.i += 1;
                if self.depth < INLINE_LEVELS {
                    self.stack |= u128::from(object) << self.depth;
                } else {
                    self.deep.push(object);
                }
                self.depth += 1;
                let (token, state) = if object {
                    (Token::ObjectStart, State::ObjectFirst)
                } else {
                    (Token::ArrayStart, State::ArrayFirst)
                };
                self.state = state;
                return Ok(Some(Event {
                    token,
                    start,
                    end: self.i,
                }));
            }
            b'"' => Token::String(self.string()?),
            _ => match self.dialect {
                Dialect::Strict => self.strict_scalar(c)?,
                Dialect::Lenient => self.lenient_scalar(c)?,
            },
        };
        self.state = State::After;
        Ok(Some(Event {
            token,
            start,
            end: self.i,
        }))
    }

    #[inline(always)]
    fn lenient_scalar(&mut self, c: u8) -> Result<Token<'a>, Error> {
        if !matches!(c, b't' | b'f' | b'n' | b'-' | b'0'..=b'9') {
            return Err(Error::Syntax(self.i));
        }
        let start = self.i;
        while let Some(b'a'..=b'z' | b'0'..=b'9' | b'.' | b'+' | b'-' | b'E') = self.b.get(self.i) {
            self.i += 1;
        }
        let raw = &self.b[start..self.i];
        Ok(match c {
            b't' => Token::Bool(true),
            b'f' => Token::Bool(false),
            b'n' => Token::Null,
            _ => Token::Number(Number {
                raw,
                integer: !raw.iter().any(|b| matches!(b, b'.' | b'e' | b'E')),
            }),
        })
    }

    #[inline(always)]
    fn strict_scalar(&mut self, c: u8) -> Result<Token<'a>, Error> {
        let (word, token): (&[u8], _) = match c {
            b't' => (b"true", Token::Bool(true)),
            b'f' => (b"false", Token::Bool(false)),
            b'n' => (b"null", Token::Null),
            b'-' | b'0'..=b'9' => return self.number(),
            _ => return Err(Error::Syntax(self.i)),
        };
        let rest = &self.b[self.i..];
        if rest.starts_with(word) {
            self.i += word.len();
            return Ok(token);
        }
        let n = rest.len().min(word.len());
        Err(if rest == &word[..n] {
            Error::Truncated(self.b.len())
        } else {
            Error::Syntax(self.i)
        })
    }

    /// The RFC 8259 number grammar.
    #[inline]
    fn number(&mut self) -> Result<Token<'a>, Error> {
        let b = self.b;
        let start = self.i;
        let mut i = start + usize::from(b[start] == b'-');
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let first = b.get(i).copied();
        let n = digits(&mut i);
        if n > 1 && first == Some(b'0') {
            return Err(Error::Syntax(start));
        }
        if n == 0 {
            return Err(self.cut_or_syntax(i));
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(self.cut_or_syntax(i));
            }
            integer = false;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(self.cut_or_syntax(i));
            }
            integer = false;
        }
        self.i = i;
        Ok(Token::Number(Number {
            raw: &b[start..i],
            integer,
        }))
    }

    /// A string from its opening quote: its end and whether it has escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<Str<'a>, Error> {
        let b = self.b;
        let start = self.i + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let off = memchr2(b'"', b'\\', &b[i..]).ok_or(Error::Truncated(b.len()))?;
            i += off;
            if b[i] == b'"' {
                break;
            }
            escaped = true;
            match b.get(i + 1) {
                None => return Err(Error::Truncated(b.len())),
                Some(b'u') => {
                    let hex = &b[i + 2..b.len().min(i + 6)];
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Error::Escape(i));
                    }
                    if hex.len() < 4 {
                        return Err(Error::Truncated(b.len()));
                    }
                    i += 6;
                }
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(_) if self.dialect == Dialect::Lenient => i += 2,
                Some(_) => return Err(Error::Escape(i)),
            }
        }
        self.i = i + 1;
        Ok(Str {
            raw: &b[start..i],
            escaped,
        })
    }

    /// Skips the container whose opener is at `self.i`.
    #[cold]
    fn skip(&mut self) -> Result<(), Error> {
        let mut depth = 0usize;
        while let Some(&c) = self.b.get(self.i) {
            match c {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        self.i += 1;
                        return Ok(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        Err(Error::Truncated(self.b.len()))
    }
}
