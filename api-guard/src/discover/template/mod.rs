//! Route templates learned from observed request paths, per host: `/users/123/orders/9f2c…`
//! becomes `/users/{userId}/orders/{orderId}`. The inventory, the OpenAPI export and the
//! per-route statistics key on these templates, so the number of them must stay bounded
//! whatever the traffic: an attacker sending random paths must not grow memory.
//!
//! How a path becomes a template ([`Templater::template`]):
//! - Normalised first: query and fragment dropped (also a leading `http://host`), empty
//!   segments skipped (`//` and a trailing `/` do not matter). Paths longer than
//!   `max_path_len` bytes or with more than `max_segments` segments are overflow.
//! - Known templates ([`Templater::add_known`], from a spec) win: the host's own, then the
//!   ones for every host; literal segments beat parameters. They are kept apart from learned
//!   routes and count against their own limit, `max_known`.
//! - Otherwise each segment that looks like an identifier ([`classify`]: integer, uuid, hex,
//!   date, email, random token, or longer than `max_segment_len`) is a parameter at once.
//!   The other segments are literals until their position, under the same template prefix
//!   and in paths of the same segment count, has seen more than `max_children` distinct
//!   literals: then that position is folded into a parameter for good (`/files/{file}`) and
//!   the routes below it merge. While the host has no room for new routes, the literals a
//!   position could not store are still counted (estimated with a 64-bit sketch per trie
//!   node), so a table filled by junk still folds instead of refusing every new path.
//! - Learned routes are limited per host (`max_routes_per_host`) and in total
//!   (`max_routes_total`), hosts to `max_hosts`. A path that would need a new route beyond
//!   them is overflow: it gets the template of the part of it that is known followed by
//!   `/*` (`/users/{userId}/*`, or just `/*`), [`Source::Overflow`], and is counted in
//!   [`Templater::overflow_count`]. Nothing is stored for it.
//!
//! Templates change: a fold turns `/files/report.pdf` into `/files/{file}`. `template()`
//! always returns the current template; a caller that keeps data per template watches
//! [`Templater::epoch`] (incremented on every fold) and, when it moved, re-keys its entries
//! with [`Templater::canonical`]. A learned template never changes otherwise; known ones
//! never change.
//!
//! Memory: a learned route costs at most `max_segments` trie nodes of about 80 bytes plus
//! its literal text (each literal at most `max_segment_len` bytes), and its template text,
//! so the worst case is about `max_routes_total × max_segments × (80 + max_segment_len)`;
//! real routes share prefixes and are far smaller. Segment values are never stored unless
//! they stay literal in a template; identifier-like values (emails, tokens) never do.

mod classify;
mod known;
mod naming;
mod trie;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard,
    },
};

use serde::Deserialize;

pub use classify::{classify, IdKind, MAX_CLASSIFIED_LEN};
pub use trie::Routes;

use crate::detect::config::{invalid, Invalid};
use naming::{render, Seg};
use trie::{Changes, Node, Outcome, TSeg};

/// Upper bound for `max_segments`; paths are split into a stack array of this size.
pub const MAX_SEGMENTS: usize = 64;
/// Longest host name kept (a DNS name is at most 253, plus a port); longer hosts are
/// overflow.
const MAX_HOST_LEN: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateConfig {
    /// Learned routes per host (default 1000).
    pub max_routes_per_host: usize,
    /// Learned routes over all hosts (default 100000).
    pub max_routes_total: usize,
    /// Hosts with learned routes (default 1000).
    pub max_hosts: usize,
    /// Distinct literals one position may hold before it becomes a parameter (default 50).
    pub max_children: usize,
    /// Segments in a path; deeper paths are overflow (default 32, at most 64).
    pub max_segments: usize,
    /// Bytes in a segment; longer segments are parameters (default 128, at most 256).
    pub max_segment_len: usize,
    /// Bytes in a path after the query is cut; longer paths are overflow (default 8192).
    pub max_path_len: usize,
    /// Known templates over all hosts (default 10000).
    pub max_known: usize,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        Self {
            max_routes_per_host: 1000,
            max_routes_total: 100_000,
            max_hosts: 1000,
            max_children: 50,
            max_segments: 32,
            max_segment_len: 128,
            max_path_len: 8192,
            max_known: 10_000,
        }
    }
}

impl TemplateConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for (name, value, max) in [
            ("max_routes_per_host", self.max_routes_per_host, 1 << 20),
            ("max_routes_total", self.max_routes_total, 1 << 24),
            ("max_hosts", self.max_hosts, 1 << 20),
            ("max_children", self.max_children, 1 << 16),
            ("max_segments", self.max_segments, MAX_SEGMENTS),
            ("max_segment_len", self.max_segment_len, MAX_CLASSIFIED_LEN),
            ("max_path_len", self.max_path_len, 1 << 20),
            ("max_known", self.max_known, 1 << 20),
        ] {
            if value == 0 || value > max {
                return Err(invalid(
                    format!("discover.templates.{name}"),
                    format!("must be between 1 and {max}"),
                ));
            }
        }
        Ok(())
    }
}

/// A template that [`Templater::add_known`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("segment {index} mixes literal text and a parameter (only whole-segment `{{name}}` is supported)")]
    PartialParam { index: usize },
    #[error(
        "parameter at segment {index} has no valid name (1 to 64 bytes, no `{{`, `}}` or `/`)"
    )]
    BadName { index: usize },
    #[error("template has more than {max} segments")]
    TooDeep { max: usize },
    #[error("more than {max} known templates")]
    TooMany { max: usize },
}

/// A route template: its text and where its parameters are.
#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    /// `/users/{userId}/orders/{orderId}`; `/` for the root; overflow ones end in `/*`.
    pub text: Arc<str>,
    /// The parameters in segment order.
    pub params: Box<[Param]>,
}

impl Template {
    /// The template whose text is `text`: every whole `{name}` segment is a parameter (as
    /// the templater renders them).
    fn of_text(text: Arc<str>) -> Template {
        let params = segments(&text)
            .enumerate()
            .filter_map(|(segment, s)| {
                let name = s.strip_prefix('{')?.strip_suffix('}')?;
                Some(Param {
                    segment,
                    name: name.into(),
                })
            })
            .collect();
        Template { text, params }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Index of the path segment (0 is the first after the leading `/`).
    pub segment: usize,
    /// Name without braces: `userId`.
    pub name: Box<str>,
}

/// Where a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A known template ([`Templater::add_known`]).
    Known,
    /// Learned from traffic; listed by [`Templater::routes`].
    Learned,
    /// No room: a known prefix and `/*`, not stored.
    Overflow,
}

/// The template a path maps to. Cloning is two reference counts.
#[derive(Debug, Clone)]
pub struct Route {
    pub template: Arc<Template>,
    pub source: Source,
    /// The templater's [`Templater::epoch`] when it was returned: a route whose epoch is not
    /// the current one may have been generalised since ([`Templater::current`]).
    pub epoch: u64,
}

impl Route {
    /// The template text, the key an inventory would use.
    pub fn text(&self) -> &Arc<str> {
        &self.template.text
    }

    /// The (parameter name, raw segment) pairs of `path`, which must be the path this route
    /// was returned for. Values are as sent (not percent-decoded); for callers to infer
    /// parameter types, not to store.
    pub fn values<'p>(&'p self, path: &'p str) -> impl Iterator<Item = (&'p str, &'p str)> {
        let mut params = self.template.params.iter().peekable();
        // A route without parameters has no values: its path is not split at all.
        let path = if params.peek().is_some() {
            path_part(path)
        } else {
            ""
        };
        segments(path)
            .enumerate()
            .map_while(move |(i, seg)| {
                let param = *params.peek()?;
                if param.segment == i {
                    params.next();
                    Some(Some((&*param.name, seg)))
                } else {
                    Some(None)
                }
            })
            .flatten()
    }
}

/// The path without query, fragment or a leading `scheme://authority`.
fn path_part(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    let path = path.get(..end).unwrap_or(path);
    let lower_starts = |p: &str| {
        path.get(..p.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(p))
    };
    for scheme in ["http://", "https://"] {
        if lower_starts(scheme) {
            let rest = path.get(scheme.len()..).unwrap_or("");
            return rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("");
        }
    }
    path
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// One templater for every consumer of a node's traffic: the parsing task templates each
/// exchange's path once (its `route` label and the [`Route`] the exchange carries), and
/// discovery, on its own thread, reads it only to re-key its endpoints after a fold. The
/// lock is held for one path or one re-key.
#[derive(Debug, Clone)]
pub struct SharedTemplater(Arc<Mutex<Templater>>, Arc<AtomicU64>);

impl SharedTemplater {
    pub fn new(cfg: &TemplateConfig) -> Self {
        let templater = Templater::new(cfg);
        let changes = templater.changes.clone();
        Self(Arc::new(Mutex::new(templater)), changes)
    }

    /// Changes so far that may alter a path's template (folds, known templates added),
    /// without the lock: a cache of templates stays valid while this stays the same.
    pub fn changes(&self) -> u64 {
        self.1.load(Ordering::Acquire)
    }

    pub fn lock(&self) -> MutexGuard<'_, Templater> {
        // Every templater call leaves it consistent (bounded, counted updates), so a panic
        // elsewhere while it was held does not make it unusable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Per host learned routes: one trie per segment count (index = count).
#[derive(Debug, Default)]
struct Host {
    roots: Vec<Node>,
    routes: usize,
}

/// Learns route templates from request paths; see the module documentation.
#[derive(Debug)]
pub struct Templater {
    cfg: TemplateConfig,
    hosts: HashMap<Box<str>, Host>,
    known: known::Known,
    routes: usize,
    overflow: u64,
    epoch: u64,
    /// Counted under the lock, read without it ([`SharedTemplater::changes`]).
    changes: Arc<AtomicU64>,
    host_buf: String,
}

impl Templater {
    /// A templater with `cfg`, whose out-of-range values are clamped (see
    /// [`TemplateConfig::validate`] to refuse them instead).
    pub fn new(cfg: &TemplateConfig) -> Self {
        let mut cfg = cfg.clone();
        cfg.max_segments = cfg.max_segments.clamp(1, MAX_SEGMENTS);
        cfg.max_segment_len = cfg.max_segment_len.clamp(1, MAX_CLASSIFIED_LEN);
        cfg.max_children = cfg.max_children.max(1);
        Self {
            cfg,
            hosts: HashMap::new(),
            known: known::Known::default(),
            routes: 0,
            overflow: 0,
            epoch: 0,
            changes: Arc::default(),
            host_buf: String::new(),
        }
    }

    /// Adds a known template (`/users/{id}`, whole-segment parameters only) for `host`
    /// (`None`: every host). Returns false when a template of the same shape was already
    /// known for that host; the first one is kept. Routes learned before are not removed,
    /// but paths matching the template get it from now on.
    pub fn add_known(&mut self, host: Option<&str>, template: &str) -> Result<bool, TemplateError> {
        let host = host.map(|h| h.to_ascii_lowercase());
        let added = self.known.add(
            host.as_deref(),
            template,
            self.cfg.max_segments,
            self.cfg.max_known,
        );
        self.changes.fetch_add(1, Ordering::Release);
        added
    }

    /// The current template for a request to `host` (ASCII case-insensitive, port kept as
    /// given) for `path`, learning it if new. Bounded work: linear in the path, plus, when a
    /// position folds, the routes below it.
    pub fn template(&mut self, host: &str, path: &str) -> Route {
        let path = path_part(path);
        if path.len() > self.cfg.max_path_len || host.len() > MAX_HOST_LEN {
            return self.overflow(&[], 0);
        }
        let mut raw = [""; MAX_SEGMENTS];
        let mut n = 0;
        for seg in segments(path) {
            let Some(slot) = raw.get_mut(n).filter(|_| n < self.cfg.max_segments) else {
                return self.overflow(&[], 0);
            };
            *slot = seg;
            n += 1;
        }
        let raw = raw.get(..n).unwrap_or_default();
        self.host_buf.clear();
        self.host_buf
            .extend(host.chars().map(|c| c.to_ascii_lowercase()));
        if let Some(t) = self.known.find(&self.host_buf, raw) {
            return Route {
                template: t.clone(),
                source: Source::Known,
                epoch: self.epoch,
            };
        }
        let mut segs = [("", false); MAX_SEGMENTS];
        for (slot, seg) in segs.iter_mut().zip(raw) {
            *slot = (
                seg,
                classify::classify_capped(seg, self.cfg.max_segment_len).is_some(),
            );
        }
        if !self.hosts.contains_key(self.host_buf.as_str()) {
            if self.hosts.len() >= self.cfg.max_hosts {
                return self.overflow(&[], 0);
            }
            self.hosts
                .insert(self.host_buf.as_str().into(), Host::default());
        }
        let Some(h) = self.hosts.get_mut(self.host_buf.as_str()) else {
            return self.overflow(&[], 0);
        };
        if h.roots.len() <= n {
            h.roots.resize_with(n + 1, Node::default);
        }
        let room =
            h.routes < self.cfg.max_routes_per_host && self.routes < self.cfg.max_routes_total;
        let mut prefix = [Seg::Id; MAX_SEGMENTS];
        let mut changes = Changes::default();
        let outcome = match h.roots.get_mut(n) {
            Some(root) => trie::learn(
                root,
                segs.get(..n).unwrap_or_default(),
                self.cfg.max_children,
                room,
                &mut prefix,
                &mut changes,
            ),
            None => Outcome::Full(0),
        };
        let created = usize::from(changes.created);
        h.routes = (h.routes + created).saturating_sub(changes.merged);
        self.routes = (self.routes + created).saturating_sub(changes.merged);
        self.epoch += changes.folds;
        if changes.folds > 0 {
            self.changes.fetch_add(1, Ordering::Release);
        }
        match outcome {
            Outcome::Found(template) => Route {
                template,
                source: Source::Learned,
                epoch: self.epoch,
            },
            Outcome::Full(walked) => self.overflow(&prefix, walked),
        }
    }

    fn overflow(&mut self, prefix: &[Seg<'_>], walked: usize) -> Route {
        self.overflow += 1;
        Route {
            template: Arc::new(render(prefix.get(..walked).unwrap_or_default(), true)),
            source: Source::Overflow,
            epoch: self.epoch,
        }
    }

    /// `route`, returned earlier for `host`, as of now: itself when no fold changed it,
    /// else the template it was generalised into. Nothing is learned.
    pub fn current(&self, host: &str, route: &Route) -> Route {
        let unchanged = Route {
            epoch: self.epoch,
            ..route.clone()
        };
        if route.epoch == self.epoch || route.source != Source::Learned {
            return unchanged;
        }
        match self.canonical(host, &route.template.text) {
            Some(text) if text != route.template.text => Route {
                template: Arc::new(Template::of_text(text)),
                source: Source::Learned,
                epoch: self.epoch,
            },
            _ => unchanged,
        }
    }

    /// The current template that `template`, returned earlier for `host`, belongs to now
    /// (itself if unchanged); `None` for overflow templates and unknown ones.
    pub fn canonical(&self, host: &str, template: &str) -> Option<Arc<str>> {
        let host = host.to_ascii_lowercase();
        let mut segs = Vec::new();
        for seg in segments(template) {
            if seg == "*" || segs.len() >= self.cfg.max_segments {
                return None;
            }
            segs.push(if seg.starts_with('{') && seg.ends_with('}') {
                TSeg::Param
            } else {
                TSeg::Lit(seg)
            });
        }
        if let Some(text) = self.known.canonical(&host, &segs) {
            return Some(text);
        }
        let root = self.hosts.get(host.as_str())?.roots.get(segs.len())?;
        trie::canonical(root, &segs)
    }

    /// The learned templates of `host` (known ones are not listed), shortest paths first.
    pub fn routes(&self, host: &str) -> Routes<'_> {
        let roots = self
            .hosts
            .get(host.to_ascii_lowercase().as_str())
            .map_or(&[][..], |h| &h.roots);
        Routes::new(roots)
    }

    /// Learned routes of `host`.
    pub fn route_count(&self, host: &str) -> usize {
        self.hosts
            .get(host.to_ascii_lowercase().as_str())
            .map_or(0, |h| h.routes)
    }

    /// Learned routes over all hosts.
    pub fn total_routes(&self) -> usize {
        self.routes
    }

    /// Hosts with learned routes.
    pub fn host_count(&self) -> usize {
        self.hosts.len()
    }

    /// Known templates added.
    pub fn known_count(&self) -> usize {
        self.known.count()
    }

    /// Paths that got an overflow template.
    pub fn overflow_count(&self) -> u64 {
        self.overflow
    }

    /// Folds so far; when it changes, templates returned earlier may have been generalised
    /// (see [`Templater::canonical`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}
