//! The `route` label of the request metrics and exchange lines: the path's route template
//! (`/users/{userId}`), so per-endpoint rates and latencies can be graphed without one series
//! per user id. Runs on the parsing task for every exchange, so it must be cheap and bounded:
//! the templater caps its own memory, and this caps the label values — after
//! `discover.max_route_labels` distinct routes, new ones are labelled `other`.
//!
//! Its templater is the node's only one: the route it returns rides on the exchange
//! (`Exchange::template`, uncapped) and discovery keys its inventory by it, so each path is
//! templated once and the inventory and the labels name routes alike.

use std::{collections::HashSet, sync::Arc};

use api_guard::discover::{
    inventory::InventoryConfig,
    template::{SharedTemplater, Templater},
};

use crate::exchange::Exchange;

/// The label for routes beyond the cap.
pub const OTHER: &str = "other";

pub struct RouteLabels {
    templater: SharedTemplater,
    labels: HashSet<Arc<str>>,
    max_labels: usize,
    other: Arc<str>,
}

impl RouteLabels {
    pub fn new(inventory: &InventoryConfig, max_labels: usize) -> Self {
        Self {
            templater: SharedTemplater::new(&inventory.templates),
            labels: HashSet::new(),
            max_labels,
            other: Arc::from(OTHER),
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
        let route = self
            .templater
            .lock()
            .template(h.host.as_deref().unwrap_or(""), &h.path);
        let text = route.text();
        exchange.route = Some(match self.labels.get(text) {
            Some(known) => known.clone(),
            None if self.labels.len() < self.max_labels => {
                self.labels.insert(text.clone());
                text.clone()
            }
            None => self.other.clone(),
        });
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

    #[test]
    fn known_templates_name_the_route() {
        let mut r = RouteLabels::new(&InventoryConfig::default(), 10);
        r.templater_mut().add_known(None, "/users/{id}").unwrap();
        assert_eq!(label(&mut r, "/users/17"), "/users/{id}");
    }
}
