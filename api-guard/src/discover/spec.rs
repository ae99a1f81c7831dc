//! The operator's OpenAPI 3.0/3.1 spec, read so the traffic can be held against it: its
//! route templates seed the [`Templater`](super::template::Templater) (so observed paths get
//! the documented names), each live request can be checked against it ([`Spec::check`]),
//! and the inventory can be compared with it ([`compare`]: shadow endpoints the spec does
//! not document, operations nobody called).
//!
//! The spec is operator input but it may come from anywhere (a vendor, a repository), so
//! reading it is bounded: files up to [`MAX_FILE`] bytes, an in-memory budget charged while
//! deserialising (YAML alias bombs fail at it), nesting stopped by the parsers at 128 levels,
//! at most [`MAX_OPERATIONS`] operations and [`MAX_PARAMS`] parameters per operation (more
//! are dropped and counted in [`SpecStats`]), `$ref` chains of at most [`MAX_REF_DEPTH`].
//! Remote `$ref`s are not fetched: the parameter is skipped and counted.
//!
//! What is kept per operation: method, template (server base path + path key, one per
//! distinct base path, server variables replaced by their defaults), operationId, the
//! parameters (path-level merged with operation-level, the operation's win by name and
//! location) with a simple expected type, and the names of its security requirements.
//!
//! Checking ([`Spec::check`]) decisions:
//! - One violation per request at most, the first of: `unknown_endpoint`, then
//!   `missing_required_param` (required query parameters only: headers and cookies are not
//!   seen by `check`), then `wrong_param_type` (path parameters in order, then query).
//! - Path matching: literal segments equal (case-sensitive, raw), `{param}` matches one
//!   non-empty segment, literals win over parameters; empty segments (`//`, trailing `/`)
//!   are ignored as the templater does. A segment mixing text and a parameter
//!   (`{name}.json`) matches any segment without a type check.
//! - `HEAD` without a documented HEAD operation is checked against the `GET` operation
//!   (HTTP servers answer HEAD with their GET handler). `OPTIONS` without a documented
//!   OPTIONS operation is accepted on any documented path (CORS preflight) and is
//!   `unknown_endpoint` elsewhere.
//! - Values are percent-decoded (`+` as space in the query) before their type is checked;
//!   an empty value fails a typed check unless the parameter has `allowEmptyValue`. Arrays,
//!   objects, `oneOf`/`anyOf` and `content` parameters are not type-checked. Integers are
//!   digits with an optional sign, whatever their size; booleans are `true`/`false`.
//! - A violation names the spec's parameter and operation, never the request's values.

mod check;
mod doc;
mod parse;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::inventory::Inventory;
pub use check::{Violation, ViolationKind};

/// Largest spec file read by [`Spec::load`].
pub const MAX_FILE: u64 = 16 << 20;
/// Operations kept; more are dropped and counted.
pub const MAX_OPERATIONS: usize = 10_000;
/// Parameters kept per operation (after merging); more are dropped and counted.
pub const MAX_PARAMS: usize = 64;
/// `$ref` hops followed for one object.
pub const MAX_REF_DEPTH: usize = 16;
/// Values of an `enum` kept for checking; a longer enum is checked by type only.
pub const MAX_ENUM: usize = 256;
/// Segments in a template; operations with deeper templates are dropped and counted.
pub const MAX_TEMPLATE_SEGMENTS: usize = 64;
/// Memory budget charged while deserialising (about 64 bytes per value plus string bytes).
const MEMORY_BUDGET: usize = 256 << 20;
/// Warnings kept as text; the rest are only counted.
const MAX_WARNINGS: usize = 100;

/// Why a spec could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: file larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: Box<SpecError>,
    },
    /// Not valid JSON or YAML, or over the memory budget.
    #[error("{0}")]
    Syntax(String),
    #[error("the document is not a map")]
    NotAMap,
    #[error("Swagger 2.0 documents are not supported: convert to OpenAPI 3 first")]
    Swagger2,
    #[error("not an OpenAPI document (no `openapi` field)")]
    NotOpenApi,
    #[error("OpenAPI version {0:?} is not supported (3.0.x and 3.1.x are)")]
    Version(String),
    /// Something the checks depend on is malformed, at `pointer` (`paths./a.get.parameters[1]`).
    #[error("{pointer}: {message}")]
    Invalid { pointer: String, message: String },
}

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamLocation {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "path" => ParamLocation::Path,
            "query" => ParamLocation::Query,
            "header" => ParamLocation::Header,
            "cookie" => ParamLocation::Cookie,
            _ => return None,
        })
    }
}

/// The simple type a parameter value is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamType {
    Integer,
    Number,
    Boolean,
    /// Any string (a format the check does not know included).
    String,
    Uuid,
    Date,
    DateTime,
    Email,
}

impl ParamType {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::String => "string",
            ParamType::Uuid => "uuid",
            ParamType::Date => "date",
            ParamType::DateTime => "date-time",
            ParamType::Email => "email",
        }
    }
}

/// One parameter of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub required: bool,
    /// `None`: not type-checked (arrays, objects, compositions, no schema).
    pub ty: Option<ParamType>,
    /// The `enum` values as text (strings as they are, numbers and booleans as JSON);
    /// `None` when there is no enum or it is longer than [`MAX_ENUM`].
    pub enum_values: Option<Vec<String>>,
    pub allow_empty: bool,
}

/// One operation: a method on a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Uppercase: `GET`.
    pub method: String,
    /// Server base path and path key: `/v1/users/{id}`.
    pub template: String,
    pub operation_id: Option<String>,
    pub params: Vec<Parameter>,
    /// Names of the security schemes of its requirements (the operation's, else the
    /// document's), sorted and deduplicated.
    pub security: Vec<String>,
}

/// What reading the spec dropped or skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SpecStats {
    /// Operations beyond [`MAX_OPERATIONS`], or with a template deeper than
    /// [`MAX_TEMPLATE_SEGMENTS`], or a duplicate of one with the same method and shape.
    pub operations_dropped: u64,
    /// Parameters beyond [`MAX_PARAMS`] in an operation.
    pub params_dropped: u64,
    /// Parameters or schemas behind a remote `$ref` (not fetched; not checked).
    pub remote_refs: u64,
    /// Servers whose URL could not give a base path (a variable without default).
    pub servers_dropped: u64,
    /// Templates the templater refuses (see [`Spec::skipped_templates`]).
    pub templates_skipped: u64,
    /// Warnings beyond the ones kept as text.
    pub warnings_dropped: u64,
}

/// A parsed OpenAPI spec; see the module documentation.
#[derive(Debug)]
pub struct Spec {
    version: String,
    ops: Vec<Operation>,
    templates: Vec<String>,
    skipped: Vec<(String, String)>,
    stats: SpecStats,
    warnings: Vec<String>,
    matcher: check::Matcher,
}

impl Spec {
    /// Parses a JSON (first non-space byte `{`) or YAML OpenAPI 3.0/3.1 document.
    pub fn parse(bytes: &[u8]) -> Result<Spec, SpecError> {
        let doc = doc::read(bytes, MEMORY_BUDGET).map_err(SpecError::Syntax)?;
        parse::spec(&doc)
    }

    /// Reads and parses the spec at `path` (at most [`MAX_FILE`] bytes); errors name it.
    pub fn load(path: &Path) -> Result<Spec, SpecError> {
        use std::io::Read;
        let io = |source| SpecError::Io {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(MAX_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(SpecError::TooLarge {
                path: path.to_owned(),
                max: MAX_FILE,
            });
        }
        Spec::parse(&bytes).map_err(|e| SpecError::File {
            path: path.to_owned(),
            source: Box::new(e),
        })
    }

    /// The `openapi` field: `3.0.3`, `3.1.0`.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// The distinct templates the templater accepts, for
    /// [`Templater::add_known`](super::template::Templater::add_known).
    pub fn templates(&self) -> impl Iterator<Item = &str> {
        self.templates.iter().map(String::as_str)
    }

    /// Templates the templater refuses (`/files/{name}.json`), with the reason. Their
    /// operations are still checked and compared.
    pub fn skipped_templates(&self) -> &[(String, String)] {
        &self.skipped
    }

    pub fn stats(&self) -> &SpecStats {
        &self.stats
    }

    /// What was skipped or dropped, at most 100 messages (then only counted).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Checks one request; see the module documentation. `query` is the raw query string
    /// without `?`. Allocates only to build a violation (and to decode `%`-escaped values).
    pub fn check(&self, method: &str, path: &str, query: Option<&str>) -> Option<Violation> {
        check::check(self, method, path, query)
    }

    /// Whether an inventory template (`/users/{userId}`) with `method` is documented: a
    /// spec `{x}` matches any segment, an inventory `{y}` only a spec parameter, literals
    /// must be equal. Overflow templates (`…/*`) are not documented.
    pub fn is_documented(&self, method: &str, template: &str) -> bool {
        self.matcher.match_template(method, template).is_some()
    }
}

/// An inventory endpoint the spec does not document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShadowEndpoint {
    pub host: String,
    pub method: String,
    pub template: String,
    pub count: u64,
}

/// A spec operation no inventory endpoint matched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnusedOperation {
    pub method: String,
    pub template: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// In inventory order (host, template, method).
    pub shadow: Vec<ShadowEndpoint>,
    /// Sorted by template, then method.
    pub unused: Vec<UnusedOperation>,
}

/// Shadow endpoints and unused operations (hosts are not compared: the spec is taken to
/// describe every host). An inventory endpoint marks the operation it matches best
/// (literals first) as used; a HEAD endpoint without a HEAD operation marks the GET one.
pub fn compare(spec: &Spec, inv: &Inventory) -> Comparison {
    let mut used = vec![false; spec.ops.len()];
    let mut shadow = Vec::new();
    for ep in inv.endpoints() {
        let found = if ep.overflow {
            None
        } else {
            spec.matcher.match_template(&ep.method, &ep.template)
        };
        match found.and_then(|i| used.get_mut(i)) {
            Some(u) => *u = true,
            None => shadow.push(ShadowEndpoint {
                host: ep.host.clone(),
                method: ep.method.clone(),
                template: ep.template.clone(),
                count: ep.count,
            }),
        }
    }
    let mut unused: Vec<UnusedOperation> = spec
        .ops
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(op, _)| UnusedOperation {
            method: op.method.clone(),
            template: op.template.clone(),
        })
        .collect();
    unused.sort_by(|a, b| (&a.template, &a.method).cmp(&(&b.template, &b.method)));
    Comparison { shadow, unused }
}
