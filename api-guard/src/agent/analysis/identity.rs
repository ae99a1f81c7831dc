//! Who the client of each server-side exchange is, decided once on the parsing task and
//! carried with the exchange to enforcement, detection and discovery, so they cannot disagree.
//! A configuration reload hands new settings over through a watch channel; they apply from the
//! next exchange on, for every consumer at once.

use api_guard::identity::{AuthorizationCache, Identifier};
use tokio::sync::watch;

use crate::exchange::{Exchange, Role};

pub struct ClientIdentities {
    settings: watch::Receiver<Identifier>,
    current: Identifier,
    /// Recent `Authorization` values and what they hash to: clients send the same token
    /// request after request.
    credentials: AuthorizationCache,
}

impl ClientIdentities {
    pub fn new(settings: watch::Receiver<Identifier>) -> Self {
        let current = settings.borrow().clone();
        Self {
            settings,
            current,
            credentials: AuthorizationCache::new(),
        }
    }

    /// Sets `exchange.client` for a request this host received (outgoing calls have none).
    pub fn identify(&mut self, exchange: &mut Exchange) {
        if exchange.conn.role != Role::Server {
            return;
        }
        // One atomic load per exchange; a clone only after a reload changed the settings.
        if self.settings.has_changed().unwrap_or(false) {
            self.current = self.settings.borrow_and_update().clone();
        }
        let h = &exchange.http;
        exchange.client = Some(self.current.identify_cached(
            exchange.conn.peer.map(|p| p.ip()),
            &h.request_headers,
            h.query.as_deref(),
            &mut self.credentials,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_exchange;

    fn forwarded(path: &str) -> Exchange {
        let mut ex = test_exchange(Role::Server, "192.0.2.1:40000", path);
        ex.client = None;
        ex.http.request_headers = vec![
            ("X-Forwarded-For".into(), "198.51.100.7".into()),
            ("X-Api-Key".into(), "k-1".into()),
        ];
        ex
    }

    #[test]
    fn new_settings_apply_from_the_next_exchange() {
        let (tx, rx) = watch::channel(Identifier::default());
        let mut ids = ClientIdentities::new(rx);
        let mut ex = forwarded("/a");
        ids.identify(&mut ex);
        let client = ex.client.unwrap();
        assert_eq!(client.ip, Some([192, 0, 2, 1].into()));
        assert_eq!(client.via_proxy, None);
        assert_eq!(client.credential, None);

        tx.send_replace(Identifier::new(
            vec!["192.0.2.0/24".parse().unwrap()],
            &["X-API-Key".into()],
            &[],
        ));
        let mut ex = forwarded("/b");
        ids.identify(&mut ex);
        let client = ex.client.unwrap();
        assert_eq!(client.ip, Some([198, 51, 100, 7].into()));
        assert_eq!(client.via_proxy, Some([192, 0, 2, 1].into()));
        assert!(client.credential.is_some());

        // The host's own outgoing calls carry no client.
        let mut ex = test_exchange(Role::Client, "192.0.2.9:80", "/c");
        ids.identify(&mut ex);
        assert_eq!(ex.client, None);
    }
}
