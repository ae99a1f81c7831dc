//! The TOML configuration file: one section per subsystem, each owned (type, defaults,
//! `validate()`) by the subsystem that uses it — `[capture]` `[http]` (capture), `[tls]`,
//! `[identity]` (analysis), `[enforce]` `[xdp]` (enforce), `[detect]` `[discover]` (library),
//! `[events]` (output). This module reads the file, moves deprecated keys, runs every
//! section's checks and those between sections, and points an invalid field at its line.
//! Every field is optional; defaults are the embedded configuration `api-guard run` uses
//! without `--config`.

use std::{os::unix::fs::MetadataExt as _, path::Path};

use api_guard::{config::Invalid, detect::DetectConfig, discover::config::DiscoverConfig};
use serde::Deserialize;

pub use crate::{
    analysis::identity::IdentityConfig,
    capture::config::{CaptureConfig, HttpConfig},
    cluster::ClusterConfig,
    enforce::config::{
        EnforceConfig, EnforceMode, XdpAttachMode, XdpConfig, XdpInterface, MAX_BLOCK_SECS,
    },
    llm::LlmConfig,
    output::EventsConfig,
    tls::config::TlsConfig,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// [`ConfigError::Invalid`] in a file, with the line of the field (or of the nearest
    /// table that holds it).
    #[error("{path}:{line}: {invalid}")]
    InvalidAt {
        path: String,
        line: usize,
        invalid: Invalid,
    },
    #[error("{path}: {reason}")]
    Unsafe { path: String, reason: &'static str },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub capture: CaptureConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub identity: IdentityConfig,
    pub enforce: EnforceConfig,
    pub xdp: XdpConfig,
    pub detect: DetectConfig,
    pub discover: DiscoverConfig,
    pub events: EventsConfig,
    pub cluster: ClusterConfig,
    pub llm: LlmConfig,
    /// Deprecated keys the file used, to be logged by whoever loaded it.
    #[serde(skip)]
    pub deprecations: Vec<String>,
}

impl Config {
    /// Reads and validates a config file. A file others can write to is refused: whoever can
    /// edit it can turn enforcement off or point key files and sinks elsewhere.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let read_err = |source| ConfigError::Read {
            path: origin.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if meta.mode() & 0o002 != 0 {
            return Err(ConfigError::Unsafe {
                path: origin,
                reason: "the file is world-writable; refusing to use it (chmod o-w)",
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            source: Box::new(e),
        })?;
        let at_line = |invalid: Invalid| match field_line(text, &invalid.field) {
            Some(line) => ConfigError::InvalidAt {
                path: origin.to_string(),
                line,
                invalid,
            },
            None => ConfigError::Invalid(invalid),
        };
        config.move_deprecated().map_err(at_line)?;
        config.validate().map_err(at_line)?;
        Ok(config)
    }

    /// Moves `[enforce]` keys that now live in `[identity]` and drops ignored ones, noting
    /// each in `deprecations`.
    fn move_deprecated(&mut self) -> Result<(), Invalid> {
        let defaults = IdentityConfig::default();
        let identity = &mut self.identity;
        let enforce = &mut self.enforce;
        macro_rules! moved {
            ($key:ident) => {
                if let Some(value) = enforce.$key.take() {
                    if identity.$key != defaults.$key {
                        return Err(api_guard::config::invalid(
                            concat!("enforce.", stringify!($key)),
                            concat!(
                                "moved to identity.",
                                stringify!($key),
                                ", which is also set: keep only that one"
                            ),
                        ));
                    }
                    identity.$key = value;
                    self.deprecations.push(
                        concat!(
                            "enforce.",
                            stringify!($key),
                            " is deprecated: it is now identity.",
                            stringify!($key)
                        )
                        .to_string(),
                    );
                }
            };
        }
        moved!(trusted_proxies);
        moved!(api_key_headers);
        moved!(api_key_params);
        if self.capture.channel_capacity.take().is_some() {
            self.deprecations.push(
                "capture.channel_capacity is deprecated and ignored: records are parsed in \
                 place in the ring buffer (capture.ring_buffer_bytes is the only buffer)"
                    .to_string(),
            );
        }
        Ok(())
    }

    /// Every section's own checks, then those between sections.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.capture.validate()?;
        self.http.validate()?;
        self.tls.validate()?;
        self.identity.validate()?;
        self.enforce
            .validate(&self.xdp, &self.identity.trusted_proxies)?;
        self.xdp.validate()?;
        self.detect.validate()?;
        self.discover.validate()?;
        self.llm.validate()?;
        self.events.validate()?;
        self.cluster.validate()?;
        let cluster_policy = self
            .enforce
            .policies
            .iter()
            .position(|p| p.scope == crate::enforce::policy::PolicyScope::Cluster);
        if let (Some(i), false) = (cluster_policy, self.cluster.enabled()) {
            return Err(api_guard::config::invalid(
                format!("enforce.policies[{i}].scope"),
                "\"cluster\" needs [cluster] redis_url",
            ));
        }
        Ok(())
    }
}

/// The 1-based line of `field` (`detect.jwt.public_key_files[0]`) in the TOML `text`: the
/// deepest part of the path the file spells out (a field left at its default has no line of
/// its own, but its table may).
fn field_line(text: &str, field: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut item = doc.as_item();
    let mut found = None;
    'path: for segment in field.split('.') {
        let mut parts = segment.split('[');
        let name = parts.next().unwrap_or_default();
        let Some(table) = item.as_table_like() else {
            break;
        };
        let Some(next) = table.get(name) else {
            break;
        };
        found = table.key(name).and_then(|k| k.span()).or(found);
        item = next;
        for index in parts {
            let Some(i) = index
                .strip_suffix(']')
                .and_then(|i| i.parse::<usize>().ok())
            else {
                break 'path;
            };
            let Some(next) = item.get(i) else {
                break 'path;
            };
            found = next.span().or(found);
            item = next;
        }
    }
    let start = found?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_embedded_default() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.capture.max_capture_bytes, 16384);
        assert_eq!(c.capture.capture_caps(), (16384, 65536));
        assert!(c.capture.pids.is_empty());
    }

    #[test]
    fn identity_keys_under_enforce_still_work_with_a_warning() {
        let c = Config::parse(
            "[enforce]\ntrusted_proxies = [\"10.2.0.1\"]\napi_key_headers = [\"x-key\"]\n",
            "old",
        )
        .unwrap();
        assert_eq!(c.identity.trusted_proxies.len(), 1);
        assert_eq!(c.identity.api_key_headers, ["x-key"]);
        assert_eq!(c.identity.api_key_params, ["api_key"]);
        assert_eq!(c.enforce.trusted_proxies, None);
        assert_eq!(
            c.deprecations,
            [
                "enforce.trusted_proxies is deprecated: it is now identity.trusted_proxies",
                "enforce.api_key_headers is deprecated: it is now identity.api_key_headers",
            ]
        );
        let new = Config::parse("[identity]\ntrusted_proxies = [\"10.2.0.1\"]\n", "new").unwrap();
        assert_eq!(new.identity.trusted_proxies, c.identity.trusted_proxies);
        assert!(new.deprecations.is_empty());
        // Both places at once: which one wins would be a guess.
        let err = Config::parse(
            "[identity]\ntrusted_proxies = [\"10.2.0.1\"]\n[enforce]\ntrusted_proxies = []\n",
            "both",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("both:4: invalid value for `enforce.trusted_proxies`: moved to"),
            "{err}"
        );
    }

    #[test]
    fn the_ignored_channel_capacity_still_loads_with_a_warning() {
        let c = Config::parse("[capture]\nchannel_capacity = 0\n", "old").unwrap();
        assert_eq!(c.capture.channel_capacity, None);
        assert_eq!(c.deprecations.len(), 1);
        assert!(
            c.deprecations[0].starts_with("capture.channel_capacity is deprecated and ignored"),
            "{:?}",
            c.deprecations
        );
        assert_eq!(
            format!("{:?}", c.capture),
            format!("{:?}", Config::default().capture)
        );
    }

    #[test]
    fn invalid_fields_come_with_their_line() {
        let text = "# comment\n[capture]\nmax_capture_bytes = 0\n\n[detect]\nqueue_capacity = 0\n";
        let e = Config::parse(text, "a.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "a.toml:3: invalid value for `capture.max_capture_bytes`: must be 1..=4194304"
        );
        let text = "[capture]\n[[enforce.policies]]\nname = \"a\"\nkey = \"client_ip\"\nrate = 5.0\nburst = 5\n\
                    [[enforce.policies]]\nname = \"b\"\nkey = \"client_ip\"\nrate = 1.0\nburst = 0\n";
        let e = Config::parse(text, "p.toml").unwrap_err().to_string();
        assert_eq!(
            e,
            "p.toml:11: invalid value for `enforce.policies[1].burst`: must be >= 1"
        );
        assert_eq!(field_line(text, "enforce.policies[1]"), Some(7));
        // A field at its default: the line of its table.
        assert_eq!(
            field_line("\n[detect]\nenabled = true\n", "detect.queue_capacity"),
            Some(2)
        );
        assert_eq!(
            field_line(
                "detect = { jwt = { public_key_files = [\"a\", \"b\"] } }",
                "detect.jwt.public_key_files[1]"
            ),
            Some(1)
        );
        assert_eq!(field_line("", "detect.queue_capacity"), None);
        assert_eq!(field_line("x = [1]", "x[5].y"), Some(1));
    }

    /// The annotated example config lists every default truly, and docs/configuration.md shows
    /// the same.
    #[test]
    fn example_config_is_the_default_and_matches_the_docs() {
        let example = include_str!("../../../deploy/api-guard.example.toml");
        let parsed = Config::parse(example, "api-guard.example.toml").unwrap();
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Config::default()));
        let doc = include_str!("../../../docs/configuration.md");
        let start = doc.find("# Configuration").unwrap();
        let block = &doc[start..];
        let block = &block[block.find("```toml\n").unwrap() + 8..];
        let block = &block[..block.find("```").unwrap()];
        assert!(
            example.ends_with(block),
            "docs/configuration.md's configuration block differs from deploy/api-guard.example.toml"
        );
    }

    #[test]
    fn world_writable_files_are_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let path = std::env::temp_dir().join(format!("ag-cfg-{}.toml", std::process::id()));
        std::fs::write(&path, "[detect]\nenabled = true\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Config::load(&path).unwrap_err().to_string();
        assert!(e.contains("world-writable"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path).is_ok());
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::parse("[capture]\nring_buffer_bytes = 1000\n", "t").unwrap_err();
        assert!(e.to_string().contains("capture.ring_buffer_bytes"), "{e}");
        let e = Config::parse("[capture]\nbogus = 1\n", "t").unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        let e =
            Config::parse("[capture]\ncomms = [\"a-very-long-process-name\"]\n", "t").unwrap_err();
        assert!(e.to_string().contains("capture.comms"), "{e}");
    }

    #[test]
    fn cgroups_must_be_cgroup2_directories() {
        let e = Config::parse("[capture]\ncgroups = [\"/nonexistent/cg\"]\n", "t").unwrap_err();
        assert!(
            e.to_string().contains("`capture.cgroups`: /nonexistent/cg"),
            "{e}"
        );
        let e = Config::parse("[capture]\ncgroups = [\"/tmp\"]\n", "t").unwrap_err();
        assert!(
            e.to_string().contains("not in a cgroup v2 file system"),
            "{e}"
        );
    }

    #[test]
    fn enforcement_and_xdp_sections() {
        let c = Config::parse(
            r#"
[enforce]
mode = "dry-run"
allowlist = ["10.0.0.1", "192.168.0.0/16"]
trusted_proxies = ["10.1.0.0/16"]
deny = ["203.0.113.0/24", "2001:db8::1"]
[[enforce.policies]]
name = "login"
key = "client_ip"
rate = 0.5
burst = 3
action = "block"
block_secs = 30
[xdp]
interfaces = ["eth0", { name = "veth1", netns = "/run/netns/web", mode = "generic", packet_rate = 1000 }]
pin = true
"#,
            "t",
        )
        .unwrap();
        assert_eq!(c.enforce.mode, EnforceMode::DryRun);
        assert_eq!(c.enforce.deny[1].to_string(), "2001:db8::1");
        assert_eq!(c.enforce.policies[0].name, "login");
        let i = &c.xdp.interfaces[1];
        assert_eq!(
            (i.name.as_str(), i.packet_rate, i.packet_burst),
            ("veth1", 1000, 1000)
        );
        assert_eq!(i.mode, Some(XdpAttachMode::Generic));
        assert_eq!(i.display(), "veth1@/run/netns/web");
        assert_eq!(c.xdp.interfaces[0].packet_rate, 0);
        let d = Config::default();
        assert!(d.xdp.interfaces.is_empty() && !d.xdp.pin && d.enforce.policies.is_empty());
    }

    #[test]
    fn enforcement_errors_name_the_field() {
        for (toml, field) in [
            (
                "[enforce]\ndeny = [\"10.0.0.0/8\"]\nallowlist = [\"10.1.1.1\"]\n",
                "enforce.deny",
            ),
            (
                "[enforce]\ndeny = [\"10.0.0.1/8\"]\n",
                "did you mean 10.0.0.0/8",
            ),
            ("[enforce]\nmode = \"audit\"\n", "mode"),
            ("[enforce]\nmax_blocks = 0\n", "enforce.max_blocks"),
            (
                "[enforce]\nmax_blocks = 1\ndeny = [\"10.0.0.1\", \"10.0.0.2\"]\n",
                "more entries than enforce.max_blocks",
            ),
            (
                "[enforce]\ndeny = [\"10.0.0.0/8\", \"11.0.0.0/8\"]\n[xdp]\nmax_cidrs = 1\n",
                "xdp.max_cidrs is 1",
            ),
            (
                "[enforce]\ndefault_block_secs = 0\n",
                "enforce.default_block_secs",
            ),
            (
                "[[enforce.policies]]\nname = \"a\"\nkey = \"client_ip\"\nrate = -1.0\nburst = 1\n",
                "enforce.policies[0].rate",
            ),
            ("[xdp]\ninterfaces = [\"\"]\n", "xdp.interfaces[0].name"),
            (
                "[xdp]\ninterfaces = [\"a\", \"a\"]\n",
                "xdp.interfaces[1].name",
            ),
            (
                "[xdp]\ninterfaces = [{ name = \"a\", netns = \"rel\" }]\n",
                "xdp.interfaces[0].netns",
            ),
            (
                "[xdp]\ninterfaces = [{ name = \"a\", packet_rate = 999999999999 }]\n",
                "xdp.interfaces[0].packet_rate",
            ),
            ("[xdp]\npin_dir = \"x\"\n", "xdp.pin_dir"),
        ] {
            let e = Config::parse(toml, "t").unwrap_err().to_string();
            assert!(e.contains(field), "{toml}: {e}");
        }
    }

    #[test]
    fn cap_rounds_up_to_chunks() {
        let c = Config::parse("[capture]\nmax_capture_bytes = 5000\n", "t").unwrap();
        assert_eq!(c.capture.capture_caps(), (8192, 65536));
    }

    #[test]
    fn caps_go_up_to_four_mib() {
        let ok = "[capture]\nmax_capture_bytes = 4194304\nmax_request_capture_bytes = 4194304\n";
        let c = Config::parse(ok, "t").unwrap();
        assert_eq!(c.capture.capture_caps(), (4 << 20, 4 << 20));
        let e = Config::parse("[capture]\nmax_request_capture_bytes = 4194305\n", "t")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "t:2: invalid value for `capture.max_request_capture_bytes`: must be 1..=4194304"
        );
    }
}
