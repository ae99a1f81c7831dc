//! The node this agent runs on, for exchange lines and security events.

use std::sync::OnceLock;

use tracing::warn;

/// Longest node name (a DNS subdomain).
pub const MAX_NODE_NAME: usize = 253;

/// The node this agent runs on, from `NODE_NAME` (Kubernetes downward API), when it is a
/// valid DNS name; read once.
pub fn node_name() -> Option<&'static str> {
    static NODE: OnceLock<Option<String>> = OnceLock::new();
    NODE.get_or_init(|| {
        let raw = std::env::var_os("NODE_NAME")?;
        match raw.to_str().filter(|name| valid_node_name(name)) {
            Some(name) => Some(name.to_string()),
            None => {
                warn!(
                    "NODE_NAME is not a DNS name of at most {MAX_NODE_NAME} characters; events \
                     carry no node name"
                );
                None
            }
        }
    })
    .as_deref()
}

/// Dot-separated labels of 1–63 ASCII letters, digits and `-`, not starting or ending with `-`.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names_are_validated() {
        for ok in [
            "node-a",
            "ip-10-0-0-1.eu-west-1.compute.internal",
            "a",
            &"a".repeat(63),
        ] {
            assert!(valid_node_name(ok), "{ok}");
        }
        let long = vec!["a".repeat(63); 4].join("."); // 255 characters
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a b",
            "a\"b",
            "nöde",
            &"a".repeat(64),
            &long,
        ] {
            assert!(!valid_node_name(bad), "{bad}");
        }
    }
}
