//! Which bodies some consumer of the exchanges reads, so that the parsers copy only those
//! (docs/development.md, "Who reads bodies"). Decided per connection, from the consumers
//! running and what the connection is; sizes, truncation flags, taps and scanners do not
//! depend on it.

use std::net::SocketAddr;

use api_guard::{detect::encryption::Channel, exchange::Role, http::BodyInterest};

/// The consumers running that read bodies. Only switches fixed at start count: what a
/// reload may turn on or enlarge (the encryption audit and its scan limit) is taken at its
/// largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyReaders {
    /// Detection: its detectors read every request body a local server receives; the
    /// encryption audit reads both bodies of a plaintext connection crossing the network;
    /// `llm_data_leak` reads LLM calls' bodies (counted under `llm`: it needs their facts).
    pub detect: bool,
    /// Discovery, with its `max_body_bytes`: the server side's bodies, scanned for sensitive
    /// data whatever their type (JSON ones also for their schema).
    pub discover: Option<usize>,
    /// LLM recognition: POST requests (a call is a POST to a known path) and, since a
    /// response's parser does not know its request, every response.
    pub llm: bool,
}

impl BodyReaders {
    /// Every consumer, with no limit of its own (the connection table's default).
    pub const ALL: Self = Self {
        detect: true,
        discover: Some(usize::MAX),
        llm: true,
    };

    /// What is read of the bodies on a connection where this host plays `role`; `tls`: its
    /// plaintext comes from a TLS library hook.
    #[must_use]
    pub fn interest(
        &self,
        role: Role,
        tls: bool,
        local: Option<SocketAddr>,
        peer: Option<SocketAddr>,
    ) -> BodyInterest {
        let all = usize::MAX;
        let audit = self.detect && !tls && audited(role, local, peer);
        // Discovery knows a body is whole when it got no more than its limit: one byte more
        // tells it that a longer one is not.
        let discover = match (role, self.discover) {
            (Role::Server, Some(max)) => max.saturating_add(1),
            _ => 0,
        };
        let either = if audit || self.llm { all } else { discover };
        let requests = match role {
            Role::Server if self.detect => all,
            Role::Server => discover,
            Role::Client if audit => all,
            Role::Client => 0,
        };
        BodyInterest {
            requests,
            post_requests: if self.llm { all } else { requests },
            responses: either,
        }
    }
}

/// Whether the encryption audit judges the bodies of a plaintext connection: only when its
/// peer is reached through the network (the audit's own test).
fn audited(role: Role, local: Option<SocketAddr>, peer: Option<SocketAddr>) -> bool {
    let channel = Channel {
        conn_id: 0,
        server: role == Role::Server,
        tls: false,
        local,
        peer,
        session: None,
        scans: None,
    };
    channel.crosses_network() == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }

    const LOOPBACK: [Option<&str>; 2] = [Some("127.0.0.1:80"), Some("127.0.0.1:40000")];
    const NETWORK: [Option<&str>; 2] = [Some("10.0.0.1:80"), Some("10.0.0.2:40000")];

    fn interest(r: &BodyReaders, role: Role, tls: bool, ends: [Option<&str>; 2]) -> BodyInterest {
        r.interest(role, tls, ends[0].and_then(addr), ends[1].and_then(addr))
    }

    #[test]
    fn every_consumer_reads_every_body_but_calls_of_this_host_unaudited() {
        for tls in [false, true] {
            for ends in [LOOPBACK, NETWORK, [None, None]] {
                let server = interest(&BodyReaders::ALL, Role::Server, tls, ends);
                assert_eq!(server, BodyInterest::ALL);
                // The calls this host makes: judged for how they travel (the audit) and,
                // as LLM calls, POSTs only.
                let client = interest(&BodyReaders::ALL, Role::Client, tls, ends);
                if !tls && ends == NETWORK {
                    assert_eq!(client, BodyInterest::ALL);
                } else {
                    let posts = BodyInterest {
                        requests: 0,
                        ..BodyInterest::ALL
                    };
                    assert_eq!(client, posts);
                }
            }
        }
    }

    #[test]
    fn no_consumer_reads_no_body() {
        let none = BodyReaders {
            detect: false,
            discover: None,
            llm: false,
        };
        for role in [Role::Server, Role::Client] {
            assert_eq!(interest(&none, role, false, NETWORK), BodyInterest::NONE);
        }
    }

    #[test]
    fn discovery_alone_reads_a_prefix_one_byte_past_its_limit_server_side() {
        let r = BodyReaders {
            detect: false,
            discover: Some(100),
            llm: false,
        };
        let server = interest(&r, Role::Server, true, NETWORK);
        assert_eq!(
            server,
            BodyInterest {
                requests: 101,
                post_requests: 101,
                responses: 101,
            }
        );
        assert_eq!(
            interest(&r, Role::Client, false, NETWORK),
            BodyInterest::NONE
        );
    }

    #[test]
    fn the_audit_reads_plaintext_bodies_that_cross_the_network() {
        let r = BodyReaders {
            detect: true,
            discover: None,
            llm: false,
        };
        // Server side: detectors read every request; the audit the responses it judges.
        let server = |tls, ends| interest(&r, Role::Server, tls, ends);
        assert_eq!(server(false, NETWORK), BodyInterest::ALL);
        let unaudited = BodyInterest {
            responses: 0,
            ..BodyInterest::ALL
        };
        assert_eq!(server(true, NETWORK), unaudited);
        assert_eq!(server(false, LOOPBACK), unaudited);
        assert_eq!(server(false, [None, None]), unaudited);
        // Client side: only the audit.
        let client = |tls, ends| interest(&r, Role::Client, tls, ends);
        assert_eq!(client(false, NETWORK), BodyInterest::ALL);
        assert_eq!(client(true, NETWORK), BodyInterest::NONE);
        assert_eq!(client(false, LOOPBACK), BodyInterest::NONE);
    }

    #[test]
    fn llm_recognition_reads_posts_and_responses() {
        let r = BodyReaders {
            detect: false,
            discover: None,
            llm: true,
        };
        for role in [Role::Server, Role::Client] {
            let i = interest(&r, role, true, LOOPBACK);
            assert_eq!(i.request("GET"), 0);
            assert_eq!(i.request("POST"), usize::MAX);
            assert_eq!(i.responses, usize::MAX);
        }
    }
}
