//! API discovery (issue 6): what the observed traffic says the API is. Library code, no
//! kernel: route templates learned from paths ([`template`]), value types and merged JSON
//! schemas ([`schema`]), sensitive-data classes ([`sensitive`]). The inventory, OpenAPI export
//! and spec comparison build on these.

pub mod schema;
pub mod sensitive;
pub mod template;
