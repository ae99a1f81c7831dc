//! HTTP/2 framing anomalies the parser noted, and h2c upgrade requests: the raw material
//! of request smuggling through HTTP/2-to-HTTP/1 downgrades (RFC 9113 §8.2.2, §8.6) and of
//! h2c smuggling past proxies.

use super::{Report, Rule};
use crate::{detect::request::Request, http::h2::H2Anomaly};

pub(super) fn check(req: &Request<'_>, r: &mut Report<'_>) {
    for a in req.anomalies {
        let (rule, location) = match a {
            H2Anomaly::PseudoAfterRegular
            | H2Anomaly::RepeatedPseudo
            | H2Anomaly::InvalidPseudo
            | H2Anomaly::MissingPseudo => (Rule::H2PseudoHeaders, "headers"),
            H2Anomaly::ConnectionSpecific => (Rule::H2ConnectionHeader, "headers"),
            H2Anomaly::ContentLengthMismatch => (Rule::H2ContentLength, "header:content-length"),
            H2Anomaly::InvalidName => (Rule::InvalidHeaderName, "headers"),
            H2Anomaly::InvalidValue => (Rule::InvalidHeaderValue, "headers"),
            H2Anomaly::BadFieldBlock => continue,
        };
        r.add(rule, location, a.as_str());
    }
    let h2c = req.fields().any(|(n, v)| {
        n.eq_ignore_ascii_case("upgrade")
            && v.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"))
    });
    if h2c {
        r.add(Rule::H2cUpgrade, "header:upgrade", "Upgrade: h2c");
    }
}
