//! What can be blocked or allowed: one address, or a CIDR range. Parsed from user input
//! (config, control socket), so every form is validated and normalised here.

use std::{fmt, net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// An address (a /32 or /128 range is normalised to its address) or a wider range whose
/// host bits are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    Addr(IpAddr),
    Net(IpNet),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("{0:?} is not an IP address or CIDR range (e.g. 203.0.113.7, 2001:db8::/32)")]
    Syntax(String),
    #[error("{input:?} has host bits set; did you mean {suggest}?")]
    HostBits { input: String, suggest: IpNet },
}

impl Target {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // v4-mapped IPv6 addresses are the IPv4 address they carry (what XDP sees).
        let ip = ip.to_canonical();
        match self {
            Target::Addr(a) => *a == ip,
            Target::Net(n) => n.contains(&ip),
        }
    }

    /// As a range (an address is its /32 or /128).
    pub fn net(&self) -> IpNet {
        match *self {
            Target::Addr(a) => IpNet::from(a),
            Target::Net(n) => n,
        }
    }
}

impl FromStr for Target {
    type Err = TargetError;
    fn from_str(s: &str) -> Result<Self, TargetError> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target::Addr(ip.to_canonical()));
        }
        let net: IpNet = s.parse().map_err(|_| TargetError::Syntax(s.to_string()))?;
        if net.trunc() != net {
            return Err(TargetError::HostBits {
                input: s.to_string(),
                suggest: net.trunc(),
            });
        }
        Ok(if net.prefix_len() == net.max_prefix_len() {
            Target::Addr(net.addr())
        } else {
            Target::Net(net)
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(a) => a.fmt(f),
            Target::Net(n) => n.fmt(f),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Target {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of ranges with a membership test (allowlists, trusted proxies).
#[derive(Debug, Clone, Default)]
pub struct NetSet(Vec<Target>);

impl NetSet {
    pub fn new(targets: &[Target]) -> Self {
        Self(targets.to_vec())
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|t| t.contains(ip))
    }

    /// Whether `target` overlaps any range of the set.
    pub fn overlaps(&self, target: &Target) -> bool {
        let net = target.net();
        self.0
            .iter()
            .any(|t| t.net().contains(&net) || net.contains(&t.net()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(t("10.0.0.1"), Target::Addr("10.0.0.1".parse().unwrap()));
        assert_eq!(
            t(" 10.0.0.1/32 "),
            Target::Addr("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            t("::ffff:10.0.0.1"),
            Target::Addr("10.0.0.1".parse().unwrap())
        );
        assert_eq!(t("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(t("2001:db8::1/128").to_string(), "2001:db8::1");
    }

    #[test]
    fn rejects_garbage_and_host_bits() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.1/33",
            "host.example",
            "1.2.3.4/8/8",
            "::/129",
        ] {
            assert!(
                matches!(bad.parse::<Target>(), Err(TargetError::Syntax(_))),
                "{bad}"
            );
        }
        let e = "10.1.2.3/8".parse::<Target>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"10.1.2.3/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn membership() {
        let set = NetSet::new(&[t("10.0.0.0/8"), t("2001:db8::1")]);
        assert!(set.contains("10.9.9.9".parse().unwrap()));
        assert!(set.contains("::ffff:10.9.9.9".parse().unwrap()));
        assert!(set.contains("2001:db8::1".parse().unwrap()));
        assert!(!set.contains("2001:db8::2".parse().unwrap()));
        assert!(!set.contains("11.0.0.1".parse().unwrap()));
        assert!(set.overlaps(&t("10.1.0.0/16")));
        assert!(set.overlaps(&t("0.0.0.0/0")));
        assert!(!set.overlaps(&t("192.0.2.0/24")));
    }
}
