//! From ring buffer records to per-connection byte streams: reading the ring in place, the
//! connection table and the kernel counters (records are decoded by `api_guard::record`).

pub mod adopt;
pub mod config;
pub mod gate;
pub mod interest;
pub mod kernel;
pub mod procnet;
pub mod reader;
pub mod table;
