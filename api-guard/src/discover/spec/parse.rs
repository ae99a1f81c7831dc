//! From the document tree to operations. Everything the checks rely on (parameter names
//! and locations, `$ref`s) is validated and reported with its location as
//! `paths./users/{id}.get.parameters[1]`; what only describes the API (responses, bodies,
//! examples) is not looked at.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{
    check::{Matcher, METHODS},
    Operation, ParamLocation, ParamType, Parameter, Spec, SpecError, SpecStats, MAX_ENUM,
    MAX_OPERATIONS, MAX_PARAMS, MAX_REF_DEPTH, MAX_TEMPLATE_SEGMENTS, MAX_WARNINGS,
};
use crate::{
    discover::template::{TemplateConfig, Templater, MAX_SEGMENTS},
    text::percent_decode,
};

/// Servers looked at per `servers` list.
const MAX_SERVERS: usize = 16;
/// Security requirements, and schemes per requirement, looked at.
const MAX_SECURITY: usize = 64;
/// Longest path key, operationId or parameter name kept.
const MAX_TEXT: usize = 4096;

fn invalid(pointer: &str, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        pointer: pointer.to_owned(),
        message: message.into(),
    }
}

struct Builder<'d> {
    doc: &'d Value,
    ops: Vec<Operation>,
    stats: SpecStats,
    warnings: Vec<String>,
    matcher: Matcher,
}

impl<'d> Builder<'d> {
    fn warn(&mut self, msg: String) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(msg);
        } else {
            self.stats.warnings_dropped += 1;
        }
    }

    /// Follows local `$ref`s from `v`; `None` for a remote one (counted).
    fn resolve_doc(&mut self, mut v: &'d Value, ptr: &str) -> Result<Option<&'d Value>, SpecError> {
        for _ in 0..=MAX_REF_DEPTH {
            let Some(r) = v.as_object().and_then(|m| m.get("$ref")) else {
                return Ok(Some(v));
            };
            let Some(r) = r.as_str() else {
                return Err(invalid(ptr, "$ref is not a string"));
            };
            let Some(local) = r.strip_prefix('#') else {
                self.stats.remote_refs += 1;
                self.warn(format!("{ptr}: remote $ref {r} not followed"));
                return Ok(None);
            };
            let local = percent_decode(local, false);
            match self.doc.pointer(&local) {
                Some(target) => v = target,
                None => return Err(invalid(ptr, format!("$ref {r} not found"))),
            }
        }
        Err(invalid(
            ptr,
            format!("$ref chain longer than {MAX_REF_DEPTH} (a cycle?)"),
        ))
    }
}

fn is_version(v: &str, major_minor: &str) -> bool {
    v.strip_prefix(major_minor)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

pub(super) fn spec(doc: &Value) -> Result<Spec, SpecError> {
    let root = doc.as_object().ok_or(SpecError::NotAMap)?;
    let version = match root.get("openapi") {
        Some(Value::String(s)) if is_version(s, "3.0") || is_version(s, "3.1") => s.clone(),
        Some(Value::String(s)) => return Err(SpecError::Version(s.clone())),
        Some(other) => return Err(SpecError::Version(other.to_string())),
        None if root.contains_key("swagger") => return Err(SpecError::Swagger2),
        None => return Err(SpecError::NotOpenApi),
    };
    let mut b = Builder {
        doc,
        ops: Vec::new(),
        stats: SpecStats::default(),
        warnings: Vec::new(),
        matcher: Matcher::default(),
    };
    let root_servers = b.base_paths(root.get("servers"), "servers")?;
    let root_servers = if root_servers.is_empty() {
        vec![String::from("/")]
    } else {
        root_servers
    };
    let root_security = security(root.get("security"));
    let paths = match root.get("paths") {
        None => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(invalid("paths", "not a map")),
    };
    for (key, item) in paths.into_iter().flatten() {
        if key.starts_with("x-") {
            continue;
        }
        let ptr = format!("paths.{key}");
        if !key.starts_with('/') || key.len() > MAX_TEXT {
            return Err(invalid(
                &ptr,
                "a path must start with `/` (and be under 4 KiB)",
            ));
        }
        if b.ops.len() >= MAX_OPERATIONS {
            let n = item.as_object().map_or(0, |m| {
                METHODS
                    .iter()
                    .filter(|x| m.contains_key(&x.to_ascii_lowercase()))
                    .count()
            });
            b.stats.operations_dropped += n as u64;
            continue;
        }
        let Some(item) = b.resolve_doc(item, &ptr)? else {
            continue;
        };
        let item = item
            .as_object()
            .ok_or_else(|| invalid(&ptr, "path item is not a map"))?;
        let item_servers = b.base_paths(item.get("servers"), &format!("{ptr}.servers"))?;
        let item_params = b.params(item.get("parameters"), &format!("{ptr}.parameters"))?;
        for method in METHODS {
            let lower = method.to_ascii_lowercase();
            let Some(op) = item.get(&lower) else {
                continue;
            };
            let op_ptr = format!("{ptr}.{lower}");
            let op = op
                .as_object()
                .ok_or_else(|| invalid(&op_ptr, "operation is not a map"))?;
            b.operation(OpInput {
                method,
                key,
                ptr: &op_ptr,
                op,
                inherited_params: &item_params,
                servers: [&item_servers, &root_servers]
                    .into_iter()
                    .find(|s| !s.is_empty())
                    .map_or(&[][..], |s| s.as_slice()),
                security: &root_security,
            })?;
        }
    }
    let (templates, skipped) = templates(&b.ops);
    b.stats.templates_skipped = skipped.len() as u64;
    for (t, e) in &skipped {
        b.warn(format!("template {t} is not given to the templater: {e}"));
    }
    Ok(Spec {
        version,
        ops: b.ops,
        templates,
        skipped,
        stats: b.stats,
        warnings: b.warnings,
        matcher: b.matcher,
    })
}

struct OpInput<'a, 'd> {
    method: &'static str,
    key: &'a str,
    ptr: &'a str,
    op: &'d Map<String, Value>,
    inherited_params: &'a [Parameter],
    servers: &'a [String],
    security: &'a Option<Vec<String>>,
}

impl<'d> Builder<'d> {
    fn operation(&mut self, o: OpInput<'_, 'd>) -> Result<(), SpecError> {
        let own_servers = self.base_paths(o.op.get("servers"), &format!("{}.servers", o.ptr))?;
        let own = self.params(o.op.get("parameters"), &format!("{}.parameters", o.ptr))?;
        let mut params = o.inherited_params.to_vec();
        for p in own {
            match params
                .iter_mut()
                .find(|q| q.name == p.name && q.location == p.location)
            {
                Some(q) => *q = p,
                None => params.push(p),
            }
        }
        if params.len() > MAX_PARAMS {
            self.stats.params_dropped += (params.len() - MAX_PARAMS) as u64;
            params.truncate(MAX_PARAMS);
        }
        let operation_id =
            o.op.get("operationId")
                .and_then(Value::as_str)
                .filter(|s| s.len() <= MAX_TEXT)
                .map(str::to_owned);
        let security = match security(o.op.get("security")) {
            Some(s) => s,
            None => o.security.clone().unwrap_or_default(),
        };
        let servers = if own_servers.is_empty() {
            o.servers
        } else {
            &own_servers
        };
        for base in servers {
            let template = join(base, o.key);
            if self.ops.len() >= MAX_OPERATIONS
                || template.split('/').filter(|s| !s.is_empty()).count() > MAX_TEMPLATE_SEGMENTS
            {
                self.stats.operations_dropped += 1;
                continue;
            }
            let op = Operation {
                method: o.method.to_owned(),
                template,
                operation_id: operation_id.clone(),
                params: params.clone(),
                security: security.clone(),
            };
            if self.matcher.insert(self.ops.len(), &op) {
                self.ops.push(op);
            } else {
                self.stats.operations_dropped += 1;
                self.warn(format!(
                    "{}: {} {} has the shape of an earlier operation, dropped",
                    o.ptr, op.method, op.template
                ));
            }
        }
        Ok(())
    }

    /// The parameters of a `parameters` list (at most `MAX_PARAMS`, the rest counted).
    fn params(&mut self, v: Option<&'d Value>, ptr: &str) -> Result<Vec<Parameter>, SpecError> {
        let list = match v {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid(ptr, "parameters is not a list")),
        };
        if list.len() > MAX_PARAMS {
            self.stats.params_dropped += (list.len() - MAX_PARAMS) as u64;
        }
        let mut out = Vec::new();
        for (i, p) in list.iter().take(MAX_PARAMS).enumerate() {
            let ptr = format!("{ptr}[{i}]");
            if let Some(p) = self.param(p, &ptr)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn param(&mut self, v: &'d Value, ptr: &str) -> Result<Option<Parameter>, SpecError> {
        let Some(v) = self.resolve_doc(v, ptr)? else {
            return Ok(None);
        };
        let m = v
            .as_object()
            .ok_or_else(|| invalid(ptr, "parameter is not a map"))?;
        let name = match m.get("name") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_TEXT => s.clone(),
            _ => return Err(invalid(ptr, "parameter has no `name`")),
        };
        let location = m
            .get("in")
            .and_then(Value::as_str)
            .and_then(ParamLocation::parse)
            .ok_or_else(|| {
                invalid(
                    ptr,
                    format!("parameter {name:?}: `in` must be path, query, header or cookie"),
                )
            })?;
        let flag = |k: &str| m.get(k).and_then(Value::as_bool).unwrap_or(false);
        let (ty, enum_values) = match m.get("schema") {
            Some(s) => self.schema(s, &format!("{ptr}.schema"))?,
            None => (None, None),
        };
        Ok(Some(Parameter {
            name,
            location,
            // Path parameters are always required (and present when the path matched).
            required: location == ParamLocation::Path || flag("required"),
            ty,
            enum_values,
            allow_empty: flag("allowEmptyValue"),
        }))
    }

    /// The checked type and enum of a parameter schema.
    fn schema(
        &mut self,
        v: &'d Value,
        ptr: &str,
    ) -> Result<(Option<ParamType>, Option<Vec<String>>), SpecError> {
        let mut v = v;
        // `allOf: [{$ref}]` is the usual way to add a description to a referenced schema.
        for _ in 0..=MAX_REF_DEPTH {
            let Some(r) = self.resolve_doc(v, ptr)? else {
                return Ok((None, None));
            };
            v = r;
            match v.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
                Some([only]) => v = only,
                _ => break,
            }
        }
        let Some(m) = v.as_object() else {
            return Ok((None, None));
        };
        let ty = match m.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            // 3.1: `type: [integer, "null"]`.
            Some(Value::Array(a)) => {
                let mut non_null = a.iter().filter_map(Value::as_str).filter(|t| *t != "null");
                match (non_null.next(), non_null.next()) {
                    (Some(t), None) => Some(t),
                    _ => return Ok((None, None)),
                }
            }
            _ => None,
        };
        let ty = match ty {
            Some("integer") => Some(ParamType::Integer),
            Some("number") => Some(ParamType::Number),
            Some("boolean") => Some(ParamType::Boolean),
            Some("string") => Some(match m.get("format").and_then(Value::as_str) {
                Some("uuid") => ParamType::Uuid,
                Some("date") => ParamType::Date,
                Some("date-time") => ParamType::DateTime,
                Some("email") => ParamType::Email,
                _ => ParamType::String,
            }),
            None if m.contains_key("enum") => None,
            // Arrays, objects, compositions and unknown types are not checked.
            _ => return Ok((None, None)),
        };
        let enum_values = m.get("enum").and_then(Value::as_array).and_then(|a| {
            if a.len() > MAX_ENUM {
                return None;
            }
            a.iter()
                .filter(|e| !e.is_null())
                .map(|e| match e {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Some(e.to_string()),
                    _ => None,
                })
                .collect::<Option<Vec<_>>>()
        });
        Ok((ty, enum_values))
    }

    /// The distinct base paths of a `servers` list; empty when absent or when none gives
    /// one (the caller then uses the enclosing level's).
    fn base_paths(&mut self, v: Option<&Value>, ptr: &str) -> Result<Vec<String>, SpecError> {
        let list = match v {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => return Err(invalid(ptr, "servers is not a list")),
        };
        let mut out: Vec<String> = Vec::new();
        for (i, s) in list.iter().take(MAX_SERVERS).enumerate() {
            let ptr = format!("{ptr}[{i}]");
            let url = s
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(&ptr, "server has no `url`"))?;
            match substitute(url, s.get("variables")) {
                Some(url) => {
                    let base = join(base_path(&url), "");
                    if !out.contains(&base) {
                        out.push(base);
                    }
                }
                None => {
                    self.stats.servers_dropped += 1;
                    self.warn(format!("{ptr}: a variable of {url:?} has no default"));
                }
            }
        }
        Ok(out)
    }
}

/// `url` with each `{var}` replaced by its default; `None` when one has none.
fn substitute(url: &str, vars: Option<&Value>) -> Option<String> {
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        out.push_str(rest.get(..open)?);
        let after = rest.get(open + 1..)?;
        let close = after.find('}')?;
        let name = after.get(..close)?;
        let default = vars?.get(name)?.get("default")?.as_str()?;
        out.push_str(default);
        rest = after.get(close + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

/// The path of a server URL: absolute (`https://h/v1`), network-path (`//h/v1`) or a
/// path (`/v1`, and `v1` taken as `/v1`).
fn base_path(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    let url = url.get(..end).unwrap_or(url);
    let after_authority = |rest: &'_ str| -> usize { rest.find('/').unwrap_or(rest.len()) };
    if let Some(i) = url.find("://") {
        let rest = url.get(i + 3..).unwrap_or("");
        return rest.get(after_authority(rest)..).unwrap_or("");
    }
    if let Some(rest) = url.strip_prefix("//") {
        return rest.get(after_authority(rest)..).unwrap_or("");
    }
    url
}

/// `base` and `key` joined into a template without empty segments: `/v1/users/{id}`.
fn join(base: &str, key: &str) -> String {
    let mut out = String::with_capacity(base.len() + key.len() + 1);
    for seg in base
        .split('/')
        .chain(key.split('/'))
        .filter(|s| !s.is_empty())
    {
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The scheme names of a `security` list, sorted; `None` when absent.
fn security(v: Option<&Value>) -> Option<Vec<String>> {
    let list = v?.as_array()?;
    let mut names: Vec<String> = list
        .iter()
        .take(MAX_SECURITY)
        .filter_map(Value::as_object)
        .flat_map(|m| m.keys().take(MAX_SECURITY).cloned())
        .collect();
    names.sort();
    names.dedup();
    Some(names)
}

/// The templates the templater accepts (one per shape) and the refused ones with why.
fn templates(ops: &[Operation]) -> (Vec<String>, Vec<(String, String)>) {
    let mut templater = Templater::new(&TemplateConfig {
        max_segments: MAX_SEGMENTS,
        max_known: MAX_OPERATIONS,
        ..TemplateConfig::default()
    });
    let mut seen = HashSet::new();
    let (mut ok, mut skipped) = (Vec::new(), Vec::new());
    for op in ops {
        if !seen.insert(op.template.as_str()) {
            continue;
        }
        match templater.add_known(None, &op.template) {
            Ok(true) => ok.push(op.template.clone()),
            Ok(false) => {}
            Err(e) => skipped.push((op.template.clone(), e.to_string())),
        }
    }
    (ok, skipped)
}
