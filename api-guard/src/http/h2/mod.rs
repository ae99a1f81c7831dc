//! HTTP/2 (RFC 9113): frames, HPACK header compression (RFC 7541) and the per-connection
//! stream state that turns each stream into one exchange.
//!
//! [`H2Connection`] is fed each direction's bytes like the HTTP/1 parser; a reader per
//! direction cuts frames (`reader`), field blocks are decoded with that direction's HPACK
//! context (`hpack`) into checked field sections (`fields`), and streams become
//! exchanges when both ends are done, on RST_STREAM, or when the connection closes.

mod connection;
mod fields;
mod frame;
pub mod hpack;
mod reader;

pub use connection::{Begin, H2Connection};
pub use fields::H2Anomaly;
pub(crate) use frame::PREFACE;
pub(crate) use reader::starts_with_frames;

#[cfg(test)]
mod tests;
