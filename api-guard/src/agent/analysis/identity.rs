//! Who the client of each server-side exchange is, decided once on the parsing task and
//! carried with the exchange to enforcement, detection and discovery, so they cannot disagree.
//! A configuration reload hands new settings over through a watch channel; they apply from the
//! next exchange on, for every consumer at once.

use api_guard::{
    config::{invalid, Invalid},
    http::Phase,
    identity::{AuthorizationCache, ClientIdentity, Identifier},
};
use serde::Deserialize;
use tokio::sync::watch;

use crate::{
    enforce::target::Target,
    exchange::{Exchange, Role},
};

/// The `[identity]` section: where client addresses and credentials are read from, for
/// enforcement, detection and discovery alike.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Reverse proxies whose X-Forwarded-For / Forwarded headers name the client; never
    /// blocked themselves (default none).
    pub trusted_proxies: Vec<Target>,
    /// Request headers that carry API keys (default `x-api-key`).
    pub api_key_headers: Vec<String>,
    /// Query parameters that carry API keys (default `api_key`).
    pub api_key_params: Vec<String>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: Vec::new(),
            api_key_headers: vec!["x-api-key".into()],
            api_key_params: vec!["api_key".into()],
        }
    }
}

impl IdentityConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad_name = |n: &String| n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic());
        if let Some(name) = self.api_key_headers.iter().find(|n| bad_name(n)) {
            return Err(invalid(
                "identity.api_key_headers",
                format!("{name:?} is not a header name"),
            ));
        }
        if let Some(name) = self.api_key_params.iter().find(|n| bad_name(n)) {
            return Err(invalid(
                "identity.api_key_params",
                format!("{name:?} is not a parameter name"),
            ));
        }
        Ok(())
    }

    /// The identification these settings describe.
    pub fn identifier(&self) -> Identifier {
        Identifier::new(
            self.trusted_proxies.iter().map(Target::net).collect(),
            &self.api_key_headers,
            &self.api_key_params,
        )
    }
}

pub struct ClientIdentities {
    settings: watch::Receiver<Identifier>,
    current: Identifier,
    /// Recent `Authorization` values and what they hash to: clients send the same token
    /// request after request.
    credentials: AuthorizationCache,
    /// The clients of request notices whose exchange has not come yet, by connection and
    /// notice: the exchange carries the same request, so its client is the notice's (under
    /// the same settings: a reload forgets them). Slots in sets of two by key: a notice
    /// pushed out of its set by two newer ones is forgotten, and its exchange identified
    /// anew (the same result); a few array accesses in place of a hash map's insert and
    /// remove (−0.13k instructions per exchange in the parsing replay).
    noticed: Box<[Option<Noticed>]>,
}

struct Noticed {
    key: (usize, u64),
    client: ClientIdentity,
}

/// Slots for remembered notices (a power of two): a few times the connections that have a
/// request waiting for its response at once, so that few notices are forgotten.
const NOTICED_SLOTS: usize = 1024;

/// The first of the two slots a (connection, notice) key may take.
fn notice_set((conn, notice): (usize, u64)) -> usize {
    // Fibonacci hashing of both parts; the top bits pick the set.
    let h = ((conn as u64) ^ notice.rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    2 * (h >> (64 - (NOTICED_SLOTS / 2).trailing_zeros())) as usize
}

impl ClientIdentities {
    pub fn new(settings: watch::Receiver<Identifier>) -> Self {
        let current = settings.borrow().clone();
        Self {
            settings,
            current,
            credentials: AuthorizationCache::new(),
            noticed: std::iter::repeat_with(|| None)
                .take(NOTICED_SLOTS)
                .collect(),
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
            self.noticed.fill_with(|| None);
        }
        let h = &exchange.http;
        // The connection's address while it is live (the exchange holds it) and the notice
        // number: no two live connections share a key, and a notice is always identified
        // (and its entry replaced) before its exchange is looked up.
        let key = (std::sync::Arc::as_ptr(&exchange.conn) as usize, h.notice_id);
        let set = notice_set(key);
        if h.notice_id != 0 && h.phase == Phase::Exchange {
            let slots = self.noticed.get_mut(set..set + 2).unwrap_or_default();
            if let Some(entry) = slots
                .iter_mut()
                .find(|e| e.as_ref().is_some_and(|n| n.key == key))
            {
                exchange.client = entry.take().map(|n| n.client);
                return;
            }
        }
        let remember = h.notice_id != 0 && h.phase == Phase::Request;
        // Made in its place in the exchange, and copied from there when remembered.
        let client = exchange.client.insert(self.current.identify_cached(
            exchange.conn.peer.map(|p| p.ip()),
            &h.request_headers,
            h.query.as_deref(),
            &mut self.credentials,
        ));
        if remember {
            if let Some([first, second]) = self.noticed.get_mut(set..set + 2) {
                // The newest first; the older of a full set is forgotten.
                if first.is_some() {
                    *second = first.take();
                }
                *first = Some(Noticed {
                    key,
                    client: client.clone(),
                });
            }
        }
    }
}

#[cfg(test)]
impl ClientIdentities {
    /// Notices remembered now.
    fn remembered(&self) -> usize {
        self.noticed.iter().flatten().count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::test_exchange;

    fn forwarded(path: &str) -> Exchange {
        let mut ex = test_exchange(Role::Server, "192.0.2.1:40000", path);
        ex.client = None;
        ex.http.request_headers =
            [("X-Forwarded-For", "198.51.100.7"), ("X-Api-Key", "k-1")].into();
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

    /// An exchange gets its notice's client (computed once), unless the settings changed
    /// in between.
    #[test]
    fn an_exchange_reuses_its_notices_client_under_the_same_settings() {
        let (tx, rx) = watch::channel(Identifier::default());
        let mut ids = ClientIdentities::new(rx);
        let base = forwarded("/a");
        let stage = |phase: Phase, notice_id: u64| {
            let mut ex = base.clone();
            ex.http.phase = phase;
            ex.http.notice_id = notice_id;
            ex
        };
        let mut notice = stage(Phase::Request, 1);
        ids.identify(&mut notice);
        assert_eq!(ids.remembered(), 1);
        let mut exchange = stage(Phase::Exchange, 1);
        ids.identify(&mut exchange);
        assert_eq!(exchange.client, notice.client);
        assert_eq!(ids.remembered(), 0, "taken by its exchange");

        // Another connection's notice with the same number is another entry.
        let mut other = forwarded("/a");
        other.http.phase = Phase::Request;
        other.http.notice_id = 2;
        ids.identify(&mut other);
        let mut notice = stage(Phase::Request, 2);
        ids.identify(&mut notice);
        assert_eq!(ids.remembered(), 2);

        // A reload between notice and exchange: the exchange is identified anew.
        tx.send_replace(Identifier::new(
            vec!["192.0.2.0/24".parse().unwrap()],
            &["X-API-Key".into()],
            &[],
        ));
        let mut exchange = stage(Phase::Exchange, 2);
        ids.identify(&mut exchange);
        let client = exchange.client.unwrap();
        assert_eq!(client.ip, Some([198, 51, 100, 7].into()));
        assert!(client.credential.is_some());
        assert_eq!(ids.remembered(), 0);
    }
}
