//! Bounded metric label values for LLM metrics: models (like routes: the first
//! `max` distinct ones, then `other`) and key hashes (the top `max` keys by token volume, then
//! `other`).

use std::{collections::HashMap, sync::Arc};

pub const OTHER: &str = "other";
/// Key label of calls without a credential.
pub const NO_KEY: &str = "none";

/// The first `max` distinct models get their own label.
pub struct ModelLabels {
    labels: HashMap<String, Arc<str>>,
    max: usize,
    other: Arc<str>,
}

impl ModelLabels {
    pub fn new(max: usize) -> Self {
        Self {
            labels: HashMap::new(),
            max,
            other: Arc::from(OTHER),
        }
    }

    pub fn label(&mut self, model: &str) -> Arc<str> {
        if let Some(l) = self.labels.get(model) {
            return l.clone();
        }
        if self.labels.len() >= self.max {
            return self.other.clone();
        }
        let l: Arc<str> = Arc::from(model);
        self.labels.insert(model.to_owned(), l.clone());
        l
    }
}

/// Key labels for the top `max` keys by tokens. Volumes are tracked for at most
/// `max_tracked` keys (the rest count as `other` until a tracked one is forgotten). A key
/// that overtakes the smallest labelled one takes its place: series of the displaced key
/// stop growing and its later tokens count under `other`, so sums stay exact.
pub struct KeyLabels {
    volumes: HashMap<String, u64>,
    labelled: HashMap<String, Arc<str>>,
    max: usize,
    max_tracked: usize,
    other: Arc<str>,
    none: Arc<str>,
}

impl KeyLabels {
    pub fn new(max: usize, max_tracked: usize) -> Self {
        Self {
            volumes: HashMap::new(),
            labelled: HashMap::new(),
            max,
            max_tracked: max_tracked.max(max),
            other: Arc::from(OTHER),
            none: Arc::from(NO_KEY),
        }
    }

    /// Adds `tokens` to `key`'s volume and returns its label.
    pub fn label(&mut self, key: Option<&str>, tokens: u64) -> Arc<str> {
        let Some(key) = key else {
            return self.none.clone();
        };
        let tracked = self.volumes.len();
        let volume = match self.volumes.get_mut(key) {
            Some(v) => {
                *v = v.saturating_add(tokens);
                *v
            }
            None if tracked < self.max_tracked => {
                self.volumes.insert(key.to_owned(), tokens);
                tokens
            }
            None => return self.other.clone(),
        };
        if let Some(l) = self.labelled.get(key) {
            return l.clone();
        }
        if self.labelled.len() < self.max {
            return self.admit(key);
        }
        // O(max) only for keys outside the top, and max is small (default 100).
        let smallest = self
            .labelled
            .keys()
            .map(|k| (self.volumes.get(k).copied().unwrap_or(0), k.clone()))
            .min();
        match smallest {
            Some((v, k)) if volume > v => {
                self.labelled.remove(&k);
                self.admit(key)
            }
            _ => self.other.clone(),
        }
    }

    fn admit(&mut self, key: &str) -> Arc<str> {
        let l: Arc<str> = Arc::from(key);
        self.labelled.insert(key.to_owned(), l.clone());
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_are_capped() {
        let mut m = ModelLabels::new(2);
        assert_eq!(&*m.label("a"), "a");
        assert_eq!(&*m.label("b"), "b");
        assert_eq!(&*m.label("c"), OTHER);
        assert_eq!(&*m.label("a"), "a");
    }

    #[test]
    fn the_top_keys_by_volume_are_labelled() {
        let mut k = KeyLabels::new(2, 10);
        assert_eq!(&*k.label(Some("k1"), 10), "k1");
        assert_eq!(&*k.label(Some("k2"), 5), "k2");
        assert_eq!(&*k.label(Some("k3"), 1), OTHER);
        // k3 overtakes k2 (5): it takes its label.
        assert_eq!(&*k.label(Some("k3"), 10), "k3");
        assert_eq!(&*k.label(Some("k2"), 1), OTHER);
        assert_eq!(&*k.label(None, 1), NO_KEY);
        for i in 0..100 {
            k.label(Some(&format!("x{i}")), 1);
        }
        assert!(k.volumes.len() <= 10 && k.labelled.len() <= 2);
    }
}
