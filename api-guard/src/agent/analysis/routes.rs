//! The `route` label of the request metrics and exchange lines: the path's route template
//! (`/users/{userId}`), so per-endpoint rates and latencies can be graphed without one series
//! per user id. Runs on the parsing task for every exchange, so it must be cheap and bounded:
//! the templater caps its own memory, and this caps the label values — after
//! `discover.max_route_labels` distinct routes, new ones are labelled `other`.
//!
//! Its templater is the node's only one: the route it returns rides on the exchange
//! (`Exchange::template`, uncapped) and discovery keys its inventory by it, so each path is
//! templated once and the inventory and the labels name routes alike.

use std::{
    collections::HashSet,
    hash::{BuildHasher, Hasher},
    sync::Arc,
};

use api_guard::discover::{
    inventory::InventoryConfig,
    template::{Route, SharedTemplater, Source, Templater},
};
use rustc_hash::FxBuildHasher;

use crate::exchange::Exchange;

/// The label for routes beyond the cap.
pub const OTHER: &str = "other";

pub struct RouteLabels {
    templater: SharedTemplater,
    labels: HashSet<Arc<str>>,
    max_labels: usize,
    other: Arc<str>,
    recent: RecentRoutes,
}

/// Slots of [`RecentRoutes`] (a power of two).
const RECENT_SLOTS: usize = 256;
/// Longest host plus path remembered: longer ones are always templated.
const MAX_RECENT_KEY: usize = 256;

/// The routes and labels of recently seen (host, path) pairs, so that a service's few hot
/// paths skip the templater and its lock. A repeated path changes nothing in the templater,
/// and its answer stays the same until a position folds or a known template is added (the
/// templater counts both, readable without its lock: [`SharedTemplater::changes`]); then
/// everything remembered is forgotten.
/// Direct-mapped, with key buffers reused: unique paths cost one slot overwrite each and
/// never grow memory past `RECENT_SLOTS` keys of `MAX_RECENT_KEY` bytes.
struct RecentRoutes {
    slots: Vec<Option<Recent>>,
    /// The templater's change count the slots were filled under (read before templating,
    /// so a slot never holds a route older than it).
    changes: u64,
}

struct Recent {
    /// Host then path.
    key: String,
    host_len: usize,
    route: Route,
    label: Arc<str>,
}

impl RecentRoutes {
    fn new() -> Self {
        Self {
            slots: (0..RECENT_SLOTS).map(|_| None).collect(),
            changes: 0,
        }
    }

    /// Forgets everything if the templater changed since the slots were filled.
    fn validate(&mut self, changes: u64) {
        if changes != self.changes {
            self.slots.iter_mut().for_each(|slot| *slot = None);
            self.changes = changes;
        }
    }

    fn slot(host: &str, path: &str) -> usize {
        let mut hasher = FxBuildHasher.build_hasher();
        hasher.write(host.as_bytes());
        hasher.write_u8(0xff);
        hasher.write(path.as_bytes());
        hasher.finish() as usize % RECENT_SLOTS
    }

    fn get(&self, host: &str, path: &str) -> Option<&Recent> {
        let recent = self.slots.get(Self::slot(host, path))?.as_ref()?;
        let (h, p) = recent.key.split_at_checked(recent.host_len)?;
        (h == host && p == path).then_some(recent)
    }

    fn put(&mut self, host: &str, path: &str, route: &Route, label: &Arc<str>) {
        // Overflow routes are not stored by the templater (it counts each of them).
        if route.source == Source::Overflow || host.len() + path.len() > MAX_RECENT_KEY {
            return;
        }
        let Some(slot) = self.slots.get_mut(Self::slot(host, path)) else {
            return;
        };
        let mut key = slot.take().map(|r| r.key).unwrap_or_default();
        key.clear();
        key.push_str(host);
        key.push_str(path);
        *slot = Some(Recent {
            key,
            host_len: host.len(),
            route: route.clone(),
            label: label.clone(),
        });
    }
}

impl RouteLabels {
    pub fn new(inventory: &InventoryConfig, max_labels: usize) -> Self {
        Self {
            templater: SharedTemplater::new(&inventory.templates),
            labels: HashSet::new(),
            max_labels,
            other: Arc::from(OTHER),
            recent: RecentRoutes::new(),
        }
    }

    /// The templater, to add a spec's templates.
    pub fn templater_mut(&mut self) -> std::sync::MutexGuard<'_, Templater> {
        self.templater.lock()
    }

    /// The templater, for the inventory to re-key its endpoints when templates fold.
    pub fn shared(&self) -> SharedTemplater {
        self.templater.clone()
    }

    /// Sets `exchange.route` and `exchange.template`.
    pub fn label(&mut self, exchange: &mut Exchange) {
        let h = &exchange.http;
        // A capture gap took the request's start line: there is no path to template, and
        // its empty one must not count as the route `/`.
        if h.request_head_lost {
            exchange.route = Some(self.other.clone());
            exchange.template = None;
            return;
        }
        let (host, path) = (h.host.as_deref().unwrap_or(""), h.path.as_str());
        self.recent.validate(self.templater.changes());
        if let Some(recent) = self.recent.get(host, path) {
            exchange.route = Some(recent.label.clone());
            exchange.template = Some(recent.route.clone());
            return;
        }
        let route = self.templater.lock().template(host, path);
        let text = route.text();
        // A label once given is kept, and past the cap every new route is `other` for good:
        // so the label can be remembered with the route.
        let label = match self.labels.get(text) {
            Some(known) => known.clone(),
            None if self.labels.len() < self.max_labels => {
                self.labels.insert(text.clone());
                text.clone()
            }
            None => self.other.clone(),
        };
        self.recent.put(host, path, &route, &label);
        exchange.route = Some(label);
        exchange.template = Some(route);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{test_exchange, Role};

    fn label(r: &mut RouteLabels, path: &str) -> String {
        let mut ex = test_exchange(Role::Server, "192.0.2.1:40000", path);
        r.label(&mut ex);
        ex.route.unwrap().to_string()
    }

    #[test]
    fn a_request_whose_start_line_was_lost_is_labelled_other_without_a_template() {
        let mut r = RouteLabels::new(&InventoryConfig::default(), 3);
        let mut ex = test_exchange(Role::Server, "192.0.2.1:40000", "");
        ex.http.request_head_lost = true;
        r.label(&mut ex);
        assert_eq!(ex.route.as_deref(), Some(OTHER));
        assert!(ex.template.is_none());
        // It takes no label of its own: the cap still leaves room for three real routes.
        assert!(r.labels.is_empty());
        assert_eq!(label(&mut r, "/"), "/");
    }

    #[test]
    fn routes_are_templates_and_their_number_is_capped() {
        let mut r = RouteLabels::new(&InventoryConfig::default(), 3);
        assert_eq!(label(&mut r, "/users/17"), "/users/{userId}");
        assert_eq!(label(&mut r, "/users/18/orders"), "/users/{userId}/orders");
        assert_eq!(label(&mut r, "/health"), "/health");
        assert_eq!(label(&mut r, "/metrics"), OTHER);
        // Routes already labelled keep their label once the cap is reached.
        assert_eq!(label(&mut r, "/users/99"), "/users/{userId}");
        // Random paths cannot add series.
        for i in 0..10_000 {
            label(&mut r, &format!("/x{i}/y"));
        }
        assert_eq!(r.labels.len(), 3);
    }

    /// Remembered routes answer as the templater would: through folds, known templates
    /// added later (from another thread's handle), label caps and overflow.
    #[test]
    fn remembered_routes_match_the_templater() {
        let cfg = InventoryConfig::default();
        let mut r = RouteLabels::new(&cfg, 40);
        let mut reference = Templater::new(&cfg.templates);
        let mut paths: Vec<String> = Vec::new();
        for round in 0..3 {
            for i in 0..60 {
                // Hot paths again and again, and new literals that fold `/files/{file}`.
                paths.push("/index.html".into());
                paths.push("/users/17/orders".into());
                paths.push(format!("/files/f{}", i % (20 + 20 * round)));
                paths.push(format!("/long/{}", "s".repeat(300)));
                // Too many segments: an overflow route, which the templater counts each time.
                paths.push("/a".repeat(40));
            }
        }
        let shared = r.shared();
        for (n, path) in paths.iter().enumerate() {
            if n == paths.len() / 2 {
                // As the inventory adds a spec's templates, on the shared templater.
                shared.lock().add_known(None, "/users/{id}/orders").unwrap();
                reference.add_known(None, "/users/{id}/orders").unwrap();
            }
            let mut ex = test_exchange(Role::Server, "192.0.2.1:40000", path);
            ex.http.host = Some("api.example".into());
            r.label(&mut ex);
            let expected = reference.template("api.example", path);
            let got = ex.template.unwrap();
            assert_eq!(got.text(), expected.text(), "{path}");
            assert_eq!((got.source, got.epoch), (expected.source, expected.epoch));
        }
        assert!(reference.epoch() > 0, "the test folds a position");
        let templater = shared.lock();
        assert!(reference.overflow_count() > 0);
        assert_eq!(templater.overflow_count(), reference.overflow_count());
        assert_eq!(templater.total_routes(), reference.total_routes());
        drop(templater);
        assert_eq!(label(&mut r, "/users/5/orders"), "/users/{id}/orders");
        assert!(r.recent.slots.iter().flatten().count() <= RECENT_SLOTS);
    }

    #[test]
    fn known_templates_name_the_route() {
        let mut r = RouteLabels::new(&InventoryConfig::default(), 10);
        r.templater_mut().add_known(None, "/users/{id}").unwrap();
        assert_eq!(label(&mut r, "/users/17"), "/users/{id}");
    }
}
