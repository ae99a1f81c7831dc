//! What the agent writes out: exchange lines with the request metrics ([`exchanges`]) and
//! security events ([`events`]: stdout or a rotated file, and a webhook), both through one
//! JSON-line writer ([`lines`]).

mod config;
pub mod events;
pub mod exchanges;
mod file;
pub mod lines;
mod webhook;

pub use self::{
    config::EventsConfig,
    events::{EventBudget, EventSink},
};
