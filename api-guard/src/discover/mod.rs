//! API discovery (issue 6): what the observed traffic says the API is. Library code, no
//! kernel: route templates learned from paths ([`template`]), value types and merged JSON
//! schemas ([`schema`]), sensitive-data classes ([`sensitive`]), the bounded endpoint
//! inventory built from exchanges with them ([`inventory`]), its OpenAPI 3.1 export
//! ([`openapi`]), the operator's OpenAPI spec read to seed templates, check requests and
//! compare with the inventory ([`spec`]), snapshots on disk ([`persist`]) and the
//! `[discover]` settings ([`config`]). The daemon feeds it live exchanges (`discovery.rs` in
//! the binary); [`offline`] feeds it recorded exchange lines.

pub mod config;
pub mod inventory;
pub mod offline;
pub mod openapi;
pub mod persist;
pub mod schema;
pub mod sensitive;
pub mod spec;
pub mod template;
