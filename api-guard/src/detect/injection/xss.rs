//! Cross-site scripting.

use super::Candidate;
use crate::detect::finding::{Finding, Kind, Severity};

pub fn check(c: &Candidate<'_>, out: &mut Vec<Finding>) {
    if libinjectionrs::detect_xss(c.decoded.as_bytes()).is_injection() {
        out.push(Finding::new(
            Kind::Xss,
            "xss.libinjection",
            Severity::High,
            c.input.location(),
            c.decoded,
        ));
    }
}
