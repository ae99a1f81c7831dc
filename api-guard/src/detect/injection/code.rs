//! Code and expression injection: PHP, Java (JNDI lookups, OGNL/EL, deserialization gadgets).

use super::Candidate;
use crate::detect::finding::Finding;

pub fn check(_c: &Candidate<'_>, _out: &mut Vec<Finding>) {}
