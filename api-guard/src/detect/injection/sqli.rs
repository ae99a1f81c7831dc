//! SQL injection.

use super::Candidate;
use crate::detect::finding::Finding;

pub fn check(_c: &Candidate<'_>, _out: &mut Vec<Finding>) {}
