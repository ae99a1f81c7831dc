//! HTTP/2 (RFC 9113): frames, HPACK header compression (RFC 7541) and the per-connection
//! stream state that turns each stream into one exchange.

pub mod hpack;
