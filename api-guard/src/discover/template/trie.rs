//! The learned routes of one host: one trie per segment count, so `/files/{file}` and
//! `/files/{file}/meta` are decided apart. A node has literal children (at most
//! `max_children` of them), at most one parameter child, and, at the depth of its trie, the
//! route that ends there. Every node lies on the way to a route, so the nodes of a host are
//! at most its routes times the segment count.
//!
//! Folding: when a node would get one literal child more than `max_children`, the position
//! becomes a parameter for good: its literal children are merged into the parameter child
//! (recursively, routes that meet are counted once) and the routes under it are rendered
//! again. Later literals at that position go straight to the parameter.

use std::{
    collections::{btree_map::Entry, BTreeMap},
    sync::Arc,
};

use super::{
    naming::{render, Seg},
    Template,
};

#[derive(Debug, Default)]
pub(super) struct Node {
    lit: BTreeMap<Box<str>, Node>,
    param: Option<Box<Node>>,
    /// The parameter child was made by folding (`{file}`), not by identifiers (`{fileId}`).
    param_named: bool,
    /// Literals at this position go to the parameter child.
    folded: bool,
    /// Literals that arrived here while there was no room to store them, as a 64-bit
    /// sketch: the position still folds when it has seen too many.
    unseen: u64,
    end: Option<Arc<Template>>,
}

/// What [`learn`] changed, for the caller's counters.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// A new route was made.
    pub created: bool,
    /// Routes that disappeared into another one while folding.
    pub merged: usize,
    /// Positions folded.
    pub folds: u64,
}

pub(super) enum Outcome {
    Found(Arc<Template>),
    /// No room for a new route; the first `usize` segments were found (their shape is in
    /// the `prefix` passed to [`learn`]).
    Full(usize),
}

/// Finds or makes the route for `segs` (raw segment, is-identifier) in the trie of their
/// count. `room`: whether a new route may be made. `prefix` (at least `segs.len()` long)
/// receives the template segments walked.
pub(super) fn learn<'a>(
    root: &mut Node,
    segs: &[(&'a str, bool)],
    max_children: usize,
    room: bool,
    prefix: &mut [Seg<'a>],
    changes: &mut Changes,
) -> Outcome {
    let mut node = root;
    let mut creating = false;
    for (i, &(seg, id)) in segs.iter().enumerate() {
        if i >= prefix.len() {
            return Outcome::Full(i);
        }
        let new_lit = !id && !node.folded && !node.lit.contains_key(seg);
        let mut fold_now = new_lit && node.lit.len() >= max_children;
        if new_lit && !fold_now && !creating && !room {
            node.unseen |= 1 << (fnv1a(seg) % 64);
            if node.lit.len().saturating_add(estimate(node.unseen)) > max_children {
                fold_now = true;
            } else {
                return Outcome::Full(i);
            }
        }
        let to_param = id || node.folded || fold_now;
        if !to_param {
            if !node.lit.contains_key(seg) {
                if !creating && !room {
                    return Outcome::Full(i);
                }
                creating = true;
                node.lit.insert(seg.into(), Node::default());
            }
            set(prefix, i, Seg::Lit(seg));
            match node.lit.get_mut(seg) {
                Some(child) => node = child,
                None => return Outcome::Full(i),
            }
            continue;
        }
        if !id && !node.folded {
            changes.merged += fold(node, max_children, &mut changes.folds);
            if let Some(param) = node.param.as_deref_mut() {
                let mut segs: Vec<Seg<'_>> = prefix.iter().take(i).copied().collect();
                segs.push(param_seg(node.param_named));
                rerender(param, &mut segs);
            }
        }
        if node.param.is_none() {
            if !creating && !room {
                return Outcome::Full(i);
            }
            creating = true;
            node.param_named = !id;
        }
        let named = node.param_named;
        set(prefix, i, param_seg(named));
        node = node.param.get_or_insert_with(Box::default);
    }
    if let Some(end) = &node.end {
        return Outcome::Found(end.clone());
    }
    if !creating && !room {
        return Outcome::Full(segs.len());
    }
    let template = Arc::new(render(prefix.get(..segs.len()).unwrap_or_default(), false));
    node.end = Some(template.clone());
    changes.created = true;
    Outcome::Found(template)
}

/// A fixed hash, so that folding decisions are the same on every run.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Distinct values seen by a 64-bit sketch: the bits set, a lower bound (never folds
/// early), or `usize::MAX / 2` once all are set (some hundreds of values).
fn estimate(sketch: u64) -> usize {
    match sketch.count_ones() {
        64 => usize::MAX / 2,
        n => n as usize,
    }
}

fn set<'a>(prefix: &mut [Seg<'a>], i: usize, seg: Seg<'a>) {
    if let Some(slot) = prefix.get_mut(i) {
        *slot = seg;
    }
}

fn param_seg(named: bool) -> Seg<'static> {
    if named {
        Seg::Name
    } else {
        Seg::Id
    }
}

/// Makes `node`'s position a parameter; returns the number of routes merged away.
fn fold(node: &mut Node, max_children: usize, folds: &mut u64) -> usize {
    *folds += 1;
    node.folded = true;
    if node.param.is_none() {
        node.param_named = true;
    }
    let lits = std::mem::take(&mut node.lit);
    let param = node.param.get_or_insert_with(Box::default);
    let mut merged = 0;
    for (_, child) in lits {
        merged += merge(param, child, max_children, folds);
    }
    merged
}

/// Merges `src` into `dst`; returns the number of routes merged away.
fn merge(dst: &mut Node, src: Node, max_children: usize, folds: &mut u64) -> usize {
    let mut merged = 0;
    if let Some(end) = src.end {
        if dst.end.is_some() {
            merged += 1;
        } else {
            dst.end = Some(end);
        }
    }
    if src.folded && !dst.folded {
        merged += fold(dst, max_children, folds);
    }
    if let Some(param) = src.param {
        match dst.param.as_deref_mut() {
            Some(d) => merged += merge(d, *param, max_children, folds),
            None => {
                dst.param_named = src.param_named;
                dst.param = Some(param);
            }
        }
    }
    for (key, child) in src.lit {
        if dst.folded {
            let d = dst.param.get_or_insert_with(Box::default);
            merged += merge(d, child, max_children, folds);
            continue;
        }
        match dst.lit.entry(key) {
            Entry::Occupied(mut d) => merged += merge(d.get_mut(), child, max_children, folds),
            Entry::Vacant(d) => {
                d.insert(child);
            }
        }
    }
    if !dst.folded && dst.lit.len() > max_children {
        merged += fold(dst, max_children, folds);
    }
    merged
}

/// Renders the routes under `node` again; `segs` is the template down to `node`. A route
/// whose text did not change keeps its `Arc`.
fn rerender<'t>(node: &'t mut Node, segs: &mut Vec<Seg<'t>>) {
    if let Some(end) = &mut node.end {
        let fresh = render(segs, false);
        if fresh.text != end.text {
            *end = Arc::new(fresh);
        }
    }
    let param = param_seg(node.param_named);
    for (key, child) in node.lit.iter_mut() {
        segs.push(Seg::Lit(key));
        rerender(child, segs);
        segs.pop();
    }
    if let Some(child) = node.param.as_deref_mut() {
        segs.push(param);
        rerender(child, segs);
        segs.pop();
    }
}

/// One segment of a template read back from its text (see [`canonical`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum TSeg<'a> {
    Lit(&'a str),
    Param,
}

/// The current route that an earlier template of this trie now belongs to.
pub(super) fn canonical(root: &Node, segs: &[TSeg<'_>]) -> Option<Arc<str>> {
    let mut node = root;
    for seg in segs {
        node = match seg {
            TSeg::Lit(lit) if !node.folded => node.lit.get(*lit)?,
            _ => node.param.as_deref()?,
        };
    }
    node.end.as_ref().map(|t| t.text.clone())
}

/// The route texts of some tries, depth first: shorter paths first, then literal children
/// in byte order, then the parameter child.
pub struct Routes<'t> {
    stack: Vec<&'t Node>,
}

impl<'t> Routes<'t> {
    pub(super) fn new(roots: &'t [Node]) -> Self {
        Self {
            stack: roots.iter().rev().collect(),
        }
    }
}

impl<'t> Iterator for Routes<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        while let Some(node) = self.stack.pop() {
            self.stack.extend(node.param.as_deref());
            self.stack.extend(node.lit.values().rev());
            if let Some(end) = &node.end {
                return Some(&end.text);
            }
        }
        None
    }
}
