//! Enforcement: rate-limit policies over exchanges, a bounded blocklist with expiry, and the
//! XDP guard that drops blocked sources before the TCP stack.

pub mod identity;
pub mod limiter;
pub mod policy;
