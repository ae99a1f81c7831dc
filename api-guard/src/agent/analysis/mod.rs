//! Analysis of finished exchanges: route labels on the parsing task, detection and discovery
//! on threads of their own.

pub mod detect;
pub mod discover;
pub mod routes;
