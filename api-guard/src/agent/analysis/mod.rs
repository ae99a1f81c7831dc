//! Analysis of finished exchanges. On the parsing task, once per exchange, the facts every
//! consumer shares are derived ([`Annotator`]: route label, client identity); detection and
//! discovery then run on threads of their own.

pub mod detect;
pub mod discover;
pub mod identity;
pub mod routes;
pub mod worker;

#[cfg(test)]
#[path = "../analysis_replay.rs"]
mod replay;

use self::{identity::ClientIdentities, routes::RouteLabels};
use crate::{exchange::Exchange, llm::LlmCalls};

/// Derives the shared facts of an exchange on the parsing task.
pub struct Annotator {
    pub routes: RouteLabels,
    pub clients: ClientIdentities,
    /// After identity: an incoming call's key hash comes from its client identity.
    pub llm: LlmCalls,
}

impl Annotator {
    pub fn annotate(&mut self, exchange: &mut Exchange) {
        self.routes.label(exchange);
        self.clients.identify(exchange);
        self.llm.annotate(exchange);
    }
}
