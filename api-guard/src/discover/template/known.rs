//! Templates supplied by the operator (from an OpenAPI spec), for one host or for all. A
//! path that matches one always gets it, before anything is learned: literal segments are
//! tried before parameters at each position, so `/users/me` beats `/users/{id}`. The search
//! is depth first over a trie and visits each node at most once, so its cost is bounded by
//! the number of known templates whatever the path.

use std::{collections::HashMap, sync::Arc};

use super::{
    naming::{render, Seg},
    trie::TSeg,
    Template, TemplateError,
};

#[derive(Debug, Default)]
struct KNode {
    lit: HashMap<Box<str>, KNode>,
    param: Option<Box<KNode>>,
    end: Option<Arc<Template>>,
}

#[derive(Debug, Default)]
pub(super) struct Known {
    global: KNode,
    /// Keyed by lowercased host.
    hosts: HashMap<Box<str>, KNode>,
    count: usize,
}

/// A parameter name: 1 to 64 bytes, none of `{`, `}`, `/`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && !name.contains(['{', '}', '/'])
}

/// Splits a template (`/users/{id}`) into literal and parameter segments.
fn parse(template: &str, max_segments: usize) -> Result<Vec<Seg<'_>>, TemplateError> {
    let mut segs = Vec::new();
    for (index, seg) in template.split('/').filter(|s| !s.is_empty()).enumerate() {
        if index >= max_segments {
            return Err(TemplateError::TooDeep { max: max_segments });
        }
        let inner = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'));
        segs.push(match inner {
            Some(name) if valid_name(name) => Seg::Named(name),
            Some(_) => return Err(TemplateError::BadName { index }),
            None if seg.contains(['{', '}']) => return Err(TemplateError::PartialParam { index }),
            None => Seg::Lit(seg),
        });
    }
    Ok(segs)
}

impl Known {
    pub fn count(&self) -> usize {
        self.count
    }

    /// Adds `template` for `host` (lowercased by the caller) or for every host. Returns
    /// false when that shape (same literals, parameters in the same places) was known
    /// already; the first one given is kept.
    pub fn add(
        &mut self,
        host: Option<&str>,
        template: &str,
        max_segments: usize,
        max_known: usize,
    ) -> Result<bool, TemplateError> {
        let segs = parse(template, max_segments)?;
        if self.count >= max_known {
            return Err(TemplateError::TooMany { max: max_known });
        }
        let mut node = match host {
            Some(h) => self.hosts.entry(h.into()).or_default(),
            None => &mut self.global,
        };
        for seg in &segs {
            node = match seg {
                Seg::Lit(lit) => node.lit.entry((*lit).into()).or_default(),
                _ => node.param.get_or_insert_with(Box::default),
            };
        }
        if node.end.is_some() {
            return Ok(false);
        }
        node.end = Some(Arc::new(render(&segs, false)));
        self.count += 1;
        Ok(true)
    }

    /// The known template for a path of raw `segs` on `host` (lowercased): the host's own
    /// templates first, then the ones for every host.
    pub fn find(&self, host: &str, segs: &[&str]) -> Option<&Arc<Template>> {
        if self.count == 0 {
            return None;
        }
        self.hosts
            .get(host)
            .and_then(|n| find(n, segs))
            .or_else(|| find(&self.global, segs))
    }

    /// The known template whose text has the shape `segs`, if any.
    pub fn canonical(&self, host: &str, segs: &[TSeg<'_>]) -> Option<Arc<str>> {
        let walk = |mut node: &KNode| {
            for seg in segs {
                node = match seg {
                    TSeg::Lit(lit) => node.lit.get(*lit)?,
                    TSeg::Param => node.param.as_deref()?,
                };
            }
            node.end.as_ref().map(|t| t.text.clone())
        };
        self.hosts
            .get(host)
            .and_then(walk)
            .or_else(|| walk(&self.global))
    }
}

fn find<'k>(node: &'k KNode, segs: &[&str]) -> Option<&'k Arc<Template>> {
    let Some((first, rest)) = segs.split_first() else {
        return node.end.as_ref();
    };
    node.lit
        .get(*first)
        .and_then(|child| find(child, rest))
        .or_else(|| node.param.as_deref().and_then(|child| find(child, rest)))
}
