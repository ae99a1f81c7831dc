//! Matching requests and inventory templates to operations: one segment trie per method,
//! built once. A lookup is a depth-first walk trying the literal child before the
//! parameter child; each trie node is visited at most once, so the cost is bounded by the
//! spec's size whatever the path, and usually one hash lookup per segment.

use std::collections::HashMap;

use serde::Serialize;

use super::{Operation, ParamLocation, ParamType, Parameter, Spec, MAX_TEMPLATE_SEGMENTS};
use crate::{
    discover::schema::{infer, ValueType},
    text::percent_decode,
};

/// The methods an OpenAPI path item has fields for, in trie order.
pub(super) const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];
const GET: usize = 0;
const OPTIONS: usize = 4;
const HEAD: usize = 5;

/// What a request did that the spec does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    UnknownEndpoint,
    MissingRequiredParam,
    WrongParamType,
}

impl ViolationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViolationKind::UnknownEndpoint => "unknown_endpoint",
            ViolationKind::MissingRequiredParam => "missing_required_param",
            ViolationKind::WrongParamType => "wrong_param_type",
        }
    }
}

/// A request's departure from the spec. Names come from the spec; request values are
/// never kept (they may be secrets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub param: Option<String>,
    pub location: Option<ParamLocation>,
    /// `integer`, `uuid`, `enum(asc|desc)`…
    pub expected: Option<String>,
    /// The matched operation: `GET /orders`.
    pub operation: Option<String>,
}

#[derive(Debug, Default)]
struct Node {
    lit: HashMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    op: Option<usize>,
}

/// Per operation, what `check` looks at, as indices into its parameters.
#[derive(Debug, Default)]
struct Compiled {
    /// (segment index, parameter index) of typed path parameters.
    path: Vec<(usize, usize)>,
    /// Parameter indices of query parameters (at most 64, see `MAX_PARAMS`).
    query: Vec<usize>,
    /// Bits over `query` of the required ones.
    required: u64,
}

#[derive(Debug, Default)]
pub(super) struct Matcher {
    roots: [Node; 8],
    compiled: Vec<Compiled>,
}

fn method_index(method: &str) -> Option<usize> {
    METHODS.iter().position(|m| m.eq_ignore_ascii_case(method))
}

/// A template segment that is (or contains) a parameter matches any segment.
fn is_param(seg: &str) -> bool {
    seg.contains('{')
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The path without query, fragment or a leading `http(s)://authority`.
fn path_part(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = path.get(..end).unwrap_or(path);
    for scheme in ["http://", "https://"] {
        if path
            .get(..scheme.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        {
            let rest = path.get(scheme.len()..).unwrap_or("");
            return rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("");
        }
    }
    path
}

impl Matcher {
    /// Adds operation `index` (whose template has at most `MAX_TEMPLATE_SEGMENTS`
    /// segments); false when its method and shape are taken already.
    pub fn insert(&mut self, index: usize, op: &Operation) -> bool {
        let Some(m) = method_index(&op.method) else {
            return false;
        };
        let Some(mut node) = self.roots.get_mut(m) else {
            return false;
        };
        let mut compiled = Compiled::default();
        for (i, seg) in segments(&op.template).enumerate() {
            node = if is_param(seg) {
                let name = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
                let typed = op.params.iter().position(|p| {
                    p.location == ParamLocation::Path
                        && Some(p.name.as_str()) == name
                        && (p.ty.is_some() || p.enum_values.is_some())
                });
                if let Some(p) = typed {
                    compiled.path.push((i, p));
                }
                node.param.get_or_insert_with(Box::default)
            } else {
                node.lit.entry(seg.into()).or_default()
            };
        }
        if node.op.is_some() {
            return false;
        }
        node.op = Some(index);
        for (i, p) in op.params.iter().enumerate() {
            if p.location == ParamLocation::Query && compiled.query.len() < 64 {
                if p.required {
                    compiled.required |= 1 << compiled.query.len();
                }
                compiled.query.push(i);
            }
        }
        if self.compiled.len() <= index {
            self.compiled.resize_with(index + 1, Compiled::default);
        }
        if let Some(c) = self.compiled.get_mut(index) {
            *c = compiled;
        }
        true
    }

    fn find_path(&self, method: usize, segs: &[&str]) -> Option<usize> {
        self.roots.get(method).and_then(|r| find(r, segs, false))
    }

    /// The operation documenting an inventory `template` with `method`.
    pub fn match_template(&self, method: &str, template: &str) -> Option<usize> {
        let m = method_index(method)?;
        let mut buf = [""; MAX_TEMPLATE_SEGMENTS];
        let mut n = 0;
        for seg in segments(template) {
            if seg == "*" {
                return None;
            }
            *buf.get_mut(n)? = seg;
            n += 1;
        }
        let segs = buf.get(..n)?;
        let walk = |m: usize| self.roots.get(m).and_then(|r| find(r, segs, true));
        walk(m).or_else(|| if m == HEAD { walk(GET) } else { None })
    }
}

/// Depth first, literal before parameter. With `template`, a `{y}` segment of `segs` is
/// an inventory parameter and matches only a spec parameter.
fn find(node: &Node, segs: &[&str], template: bool) -> Option<usize> {
    let Some((first, rest)) = segs.split_first() else {
        return node.op;
    };
    let inv_param = template && first.starts_with('{') && first.ends_with('}');
    (!inv_param)
        .then(|| node.lit.get(*first))
        .flatten()
        .and_then(|child| find(child, rest, template))
        .or_else(|| {
            node.param
                .as_deref()
                .and_then(|child| find(child, rest, template))
        })
}

pub(super) fn check(
    spec: &Spec,
    method: &str,
    path: &str,
    query: Option<&str>,
) -> Option<Violation> {
    let unknown = || {
        Some(Violation {
            kind: ViolationKind::UnknownEndpoint,
            param: None,
            location: None,
            expected: None,
            operation: None,
        })
    };
    let m = &spec.matcher;
    let mut buf = [""; MAX_TEMPLATE_SEGMENTS];
    let mut n = 0;
    for seg in segments(path_part(path)) {
        let Some(slot) = buf.get_mut(n) else {
            return unknown();
        };
        *slot = seg;
        n += 1;
    }
    let segs = buf.get(..n).unwrap_or_default();
    let Some(mi) = method_index(method) else {
        return unknown();
    };
    let found = m
        .find_path(mi, segs)
        .or_else(|| (mi == HEAD).then(|| m.find_path(GET, segs)).flatten());
    let Some(index) = found else {
        if mi == OPTIONS && (0..METHODS.len()).any(|i| m.find_path(i, segs).is_some()) {
            return None;
        }
        return unknown();
    };
    let (op, compiled) = (spec.ops.get(index)?, m.compiled.get(index)?);
    let mut wrong: Option<&Parameter> = None;
    for &(seg, p) in &compiled.path {
        if let (Some(value), Some(param)) = (segs.get(seg), op.params.get(p)) {
            if !valid(param, &percent_decode(value, false)) {
                wrong = Some(param);
                break;
            }
        }
    }
    let mut present = 0u64;
    if !compiled.query.is_empty() {
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(k, true);
            let hit =
                compiled.query.iter().enumerate().find_map(|(bit, &p)| {
                    op.params.get(p).filter(|p| p.name == key).map(|p| (bit, p))
                });
            if let Some((bit, param)) = hit {
                present |= 1 << bit;
                if wrong.is_none() && !valid(param, &percent_decode(v, true)) {
                    wrong = Some(param);
                }
            }
        }
    }
    let missing = compiled.required & !present;
    let (kind, param) = if missing != 0 {
        let bit = missing.trailing_zeros() as usize;
        let p = compiled.query.get(bit).and_then(|&p| op.params.get(p))?;
        (ViolationKind::MissingRequiredParam, p)
    } else {
        (ViolationKind::WrongParamType, wrong?)
    };
    Some(Violation {
        kind,
        param: Some(param.name.clone()),
        location: Some(param.location),
        expected: Some(expected(param)),
        operation: Some(format!("{} {}", op.method, op.template)),
    })
}

/// What a parameter expects, for a violation: `integer`, `enum(asc|desc)` (cut at 80 bytes).
fn expected(p: &Parameter) -> String {
    let Some(values) = &p.enum_values else {
        return p.ty.unwrap_or(ParamType::String).as_str().to_owned();
    };
    let mut out = String::from("enum(");
    for (i, v) in values.iter().enumerate() {
        if out.len() + v.len() > 80 {
            out.push_str("|…");
            break;
        }
        if i > 0 {
            out.push('|');
        }
        out.push_str(v);
    }
    out.push(')');
    out
}

fn valid(p: &Parameter, v: &str) -> bool {
    if v.is_empty() && p.allow_empty {
        return true;
    }
    if let Some(values) = &p.enum_values {
        return values.iter().any(|e| e == v);
    }
    match p.ty {
        None | Some(ParamType::String) => true,
        Some(ParamType::Integer) => is_integer(v),
        Some(ParamType::Number) => is_number(v),
        Some(ParamType::Boolean) => v == "true" || v == "false",
        Some(ParamType::Uuid) => infer(v) == ValueType::Uuid,
        Some(ParamType::Date) => infer(v) == ValueType::Date,
        Some(ParamType::DateTime) => infer(v) == ValueType::DateTime,
        Some(ParamType::Email) => infer(v) == ValueType::Email,
    }
}

fn digits(b: &[u8]) -> usize {
    b.iter().take_while(|c| c.is_ascii_digit()).count()
}

fn is_integer(v: &str) -> bool {
    let b = v.as_bytes();
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    !b.is_empty() && digits(b) == b.len()
}

/// Decimal with optional sign, fraction and exponent (`1`, `-1.5`, `.5`, `2e10`); no
/// `inf` or `NaN`.
fn is_number(v: &str) -> bool {
    let b = v.as_bytes();
    let b = b
        .strip_prefix(b"-")
        .or_else(|| b.strip_prefix(b"+"))
        .unwrap_or(b);
    let int = digits(b);
    let mut rest = b.get(int..).unwrap_or_default();
    let mut frac = 0;
    if let Some(r) = rest.strip_prefix(b".") {
        frac = digits(r);
        rest = r.get(frac..).unwrap_or_default();
    }
    if int + frac == 0 {
        return false;
    }
    if let Some(r) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let r = r
            .strip_prefix(b"-")
            .or_else(|| r.strip_prefix(b"+"))
            .unwrap_or(r);
        return !r.is_empty() && digits(r) == r.len();
    }
    rest.is_empty()
}
