//! The detection engine (see docs/detection.md): request data is split into values
//! ([`inputs`]), decoded ([`normalize`]) and checked by the detectors; each problem found is a
//! [`Finding`] of a [`rules`] entry. [`Engine`] runs them all; [`offline`] feeds it corpus-format JSON lines.

pub mod abuse;
pub mod auth;
pub mod config;
pub mod encryption;
pub mod engine;
pub mod fields;
pub mod finding;
mod hash_buf;
pub mod injection;
pub mod inputs;
pub mod json_scan;
pub mod jwt;
pub(crate) mod keyed;
pub mod llm_abuse;
pub mod llm_leak;
pub mod normalize;
pub mod offline;
pub mod prompt;
pub mod protocol;
pub mod request;
pub mod rules;
pub mod stream;
pub mod uninspected;

pub use config::DetectConfig;
pub use engine::{Engine, LlmSide, Stage, Verdict};
pub use finding::{Finding, Kind, Severity};
pub use request::{Context, Request};
pub use rules::Rule;
