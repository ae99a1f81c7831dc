//! The parser this module had before it used the shared tokenizer, kept verbatim as the
//! reference of a differential test: the lexing moved, the behaviour must not change.

use super::*;

/// [`JsonSchema::observe`] as it was.
pub(super) fn observe(s: &mut JsonSchema, body: &[u8]) -> Observed {
    let mut p = Parser {
        b: body,
        i: 0,
        limits: s.limits,
        nodes: 1,
        too_deep: 0,
        dropped: 0,
    };
    let mut sample = Node::default();
    let ok = p.value(0, &mut sample).is_some() && {
        p.ws();
        p.i == body.len()
    };
    let mut out = Observed {
        merged: ok,
        too_deep: p.too_deep,
        dropped: p.dropped,
    };
    if !ok {
        s.invalid = s.invalid.saturating_add(1);
        return out;
    }
    s.samples = s.samples.saturating_add(1);
    let mut budget = Budget {
        used: s.nodes,
        max: s.limits.max_nodes,
        max_properties: s.limits.max_properties,
        dropped: 0,
    };
    merge(&mut s.root, sample, &mut budget);
    s.nodes = budget.used;
    out.dropped = out.dropped.saturating_add(budget.dropped);
    out
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    limits: SchemaLimits,
    /// Nodes allocated in this sample.
    nodes: usize,
    too_deep: usize,
    dropped: u64,
}

/// A string's content: borrowed when it has no escapes (only those get a format).
enum Str<'a> {
    Plain(&'a str),
    Escaped,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let next = self.b.get(self.i) == Some(&c);
        self.i += usize::from(next);
        next
    }

    fn alloc(&mut self) -> bool {
        let ok = self.nodes < self.limits.max_nodes;
        self.nodes += usize::from(ok);
        ok
    }

    /// Parses one value into `node`; `None` when malformed or cut short.
    fn value(&mut self, depth: usize, node: &mut Node) -> Option<()> {
        self.ws();
        match *self.b.get(self.i)? {
            c @ (b'{' | b'[') if depth >= self.limits.max_depth => {
                node.kinds |= if c == b'{' { OBJECT } else { ARRAY };
                node.any = true;
                self.too_deep += 1;
                self.skip_container()
            }
            b'{' => self.object(depth, node),
            b'[' => self.array(depth, node),
            b'"' => {
                let f = match self.string()? {
                    Str::Plain(s) => string_format(s),
                    Str::Escaped => ValueType::String,
                };
                node.add_format(f);
                Some(())
            }
            b't' => self.literal(b"true", BOOLEAN, node),
            b'f' => self.literal(b"false", BOOLEAN, node),
            b'n' => self.literal(b"null", NULL, node),
            b'-' | b'0'..=b'9' => {
                node.kinds |= self.number()?;
                Some(())
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &[u8], kind: u8, node: &mut Node) -> Option<()> {
        if !self.b.get(self.i..)?.starts_with(word) {
            return None;
        }
        self.i += word.len();
        node.kinds |= kind;
        Some(())
    }

    /// JSON number grammar; `INTEGER` without fraction or exponent.
    fn number(&mut self) -> Option<u8> {
        let b = self.b;
        self.i += usize::from(b.get(self.i) == Some(&b'-'));
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - s
        };
        let first = *b.get(self.i)?;
        let n = digits(&mut self.i);
        if n == 0 || (n > 1 && first == b'0') {
            return None;
        }
        let mut kind = INTEGER;
        if b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if digits(&mut self.i) == 0 {
                return None;
            }
            kind = NUMBER;
        }
        if matches!(b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(&mut self.i) == 0 {
                return None;
            }
            kind = NUMBER;
        }
        Some(kind)
    }

    fn object(&mut self, depth: usize, node: &mut Node) -> Option<()> {
        self.i += 1;
        node.kinds |= OBJECT;
        let obj = node.object.get_or_insert_with(Default::default);
        obj.count = obj.count.saturating_add(1);
        let stamp = obj.count;
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            self.member(depth, obj, key, stamp)?;
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(());
        }
    }

    fn member(&mut self, depth: usize, obj: &mut Obj, key: Str<'_>, stamp: u64) -> Option<()> {
        let name = match key {
            Str::Plain(k) if k.len() <= MAX_KEY_LEN => k,
            _ => return self.discard(depth, obj),
        };
        if !name.is_empty() && infer(name) != ValueType::String {
            if obj.dynamic.is_none() {
                if !self.alloc() {
                    return self.discard(depth, obj);
                }
                obj.dynamic = Some(Box::default());
            }
            let d = obj.dynamic.as_deref_mut()?;
            return self.value(depth + 1, d);
        }
        if !obj.properties.contains_key(name) {
            if obj.properties.len() >= self.limits.max_properties || !self.alloc() {
                return self.discard(depth, obj);
            }
            obj.properties.insert(name.to_owned(), Field::default());
        }
        let field = obj.properties.get_mut(name)?;
        if field.stamp != stamp {
            field.stamp = stamp;
            field.present = field.present.saturating_add(1);
        }
        self.value(depth + 1, &mut field.schema)
    }

    /// Parses (validates) a member value that is not recorded.
    fn discard(&mut self, depth: usize, obj: &mut Obj) -> Option<()> {
        obj.dropped = obj.dropped.saturating_add(1);
        self.dropped = self.dropped.saturating_add(1);
        let nodes = self.nodes;
        let mut scratch = Node::default();
        let r = self.value(depth + 1, &mut scratch);
        self.nodes = nodes;
        r
    }

    fn array(&mut self, depth: usize, node: &mut Node) -> Option<()> {
        self.i += 1;
        node.kinds |= ARRAY;
        if self.eat(b']') {
            return Some(());
        }
        loop {
            if node.items.is_none() {
                if self.alloc() {
                    node.items = Some(Box::default());
                } else {
                    node.any = true;
                }
            }
            match node.items.as_deref_mut() {
                Some(items) => self.value(depth + 1, items)?,
                None => {
                    let nodes = self.nodes;
                    self.value(depth + 1, &mut Node::default())?;
                    self.nodes = nodes;
                }
            }
            if self.eat(b',') {
                continue;
            }
            return self.eat(b']').then_some(());
        }
    }

    /// Skips a container by counting brackets outside strings (without checking that
    /// they pair up: the content is not described anyway).
    fn skip_container(&mut self) -> Option<()> {
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
                        return Some(());
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        None
    }

    /// A string from its opening quote; content only when it has no escapes.
    fn string(&mut self) -> Option<Str<'a>> {
        self.i += 1;
        let start = self.i;
        let b = self.b;
        let mut escaped = false;
        loop {
            self.i += memchr::memchr2(b'"', b'\\', b.get(self.i..)?)?;
            if b.get(self.i) == Some(&b'"') {
                break;
            }
            escaped = true;
            self.i += 1;
            match *b.get(self.i)? {
                b'u' => {
                    let hex = b.get(self.i + 1..self.i + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.i += 5;
                }
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                _ => return None,
            }
        }
        let raw = b.get(start..self.i)?;
        self.i += 1;
        if escaped {
            return Some(Str::Escaped);
        }
        Some(match std::str::from_utf8(raw) {
            Ok(s) => Str::Plain(s),
            Err(_) => Str::Escaped,
        })
    }
}
