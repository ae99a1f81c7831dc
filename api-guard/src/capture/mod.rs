//! From ring buffer records to per-connection byte streams: the reader task, record decoding,
//! the connection table and the kernel counters.

pub mod events;
pub mod kernel;
pub mod procnet;
pub mod reader;
pub mod table;
