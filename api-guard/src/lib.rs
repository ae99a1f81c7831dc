//! The parts of api-guard that need no kernel: client identity, the detection engine and API
//! discovery.
//! A library so that benchmarks, fuzz targets and the evaluation harness run the very code
//! the daemon runs.

pub mod detect;
pub mod discover;
pub mod identity;
pub mod text;

#[cfg(test)]
mod testutil;
