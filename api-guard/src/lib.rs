//! The parts of api-guard that need no kernel: client identity and the detection engine.
//! A library so that benchmarks, fuzz targets and the evaluation harness run the very code
//! the daemon runs.

pub mod detect;
pub mod identity;
pub mod text;
