//! The parts of api-guard that need no kernel: ring record decoding, HTTP parsing, exchanges,
//! client identity, the detection engine, API discovery and the security-event schema.
//! A library so that benchmarks, fuzz targets and the evaluation harness run the very code
//! the daemon runs; the agent binary (`src/agent/`) wires it to the kernel.

pub mod config;
pub mod detect;
pub mod discover;
pub mod event;
pub mod exchange;
pub mod handshake;
pub mod http;
pub mod identity;
pub mod json;
pub mod lazy_lru;
pub mod llm;
pub mod node;
pub mod record;
pub mod text;
pub mod wallclock;

#[cfg(test)]
mod testutil;
