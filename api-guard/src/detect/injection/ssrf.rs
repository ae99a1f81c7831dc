//! Server-side request forgery: URLs or hosts in parameters pointing at loopback, link-local / cloud metadata or private ranges.

use super::Candidate;
use crate::detect::finding::Finding;

pub fn check(_c: &Candidate<'_>, _out: &mut Vec<Finding>) {}
