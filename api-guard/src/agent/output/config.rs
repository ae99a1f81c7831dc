//! `[events]`: rotation of the events file and the optional webhook.

use std::{
    fmt,
    fs::File,
    io::Read as _,
    os::unix::fs::{MetadataExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use api_guard::config::Invalid;

/// Default `max_file_bytes`: 100 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 100 * 1024 * 1024;
/// Upper bound of `max_files`.
pub const MAX_FILES_LIMIT: u32 = 1000;
/// Longest accepted webhook URL.
const MAX_URL_LEN: usize = 2048;
/// Largest accepted token file.
const MAX_TOKEN_BYTES: u64 = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// The events file is rotated before a line would take it past this size; 0 = never.
    pub max_file_bytes: u64,
    /// Rotated files kept (`events.jsonl.1` newest … `.N` oldest).
    pub max_files: u32,
    /// POST events as JSON arrays to this endpoint.
    pub webhook: Option<WebhookConfig>,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_files: 5,
            webhook: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` endpoint.
    pub url: String,
    /// File holding a bearer token (sent as `Authorization: Bearer …`); not readable by others.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Per-request timeout (connect, send, response).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Retries of one batch after the first attempt (exponential backoff with jitter).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Events waiting for delivery; when full, new events are dropped (and counted).
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// Events per POST.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
}

fn default_timeout_secs() -> u64 {
    5
}
fn default_max_retries() -> u32 {
    5
}
fn default_queue_capacity() -> usize {
    10_000
}
fn default_batch_max() -> usize {
    100
}

fn invalid(field: &str, reason: impl Into<String>) -> Invalid {
    api_guard::config::invalid(field, reason)
}

impl EventsConfig {
    /// Checks every field; the token file is checked for existence and permissions here (its
    /// content is read only when the webhook starts).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_files > MAX_FILES_LIMIT {
            return Err(invalid(
                "events.max_files",
                format!("must be <= {MAX_FILES_LIMIT}"),
            ));
        }
        let Some(w) = &self.webhook else {
            return Ok(());
        };
        validate_url(&w.url).map_err(|reason| invalid("events.webhook.url", reason))?;
        if let Some(path) = &w.token_file {
            check_token_file(path)
                .map_err(|reason| invalid("events.webhook.token_file", reason))?;
        }
        if !(1..=300).contains(&w.timeout_secs) {
            return Err(invalid("events.webhook.timeout_secs", "must be 1..=300"));
        }
        if w.max_retries > 100 {
            return Err(invalid("events.webhook.max_retries", "must be <= 100"));
        }
        if !(1..=1_000_000).contains(&w.queue_capacity) {
            return Err(invalid(
                "events.webhook.queue_capacity",
                "must be 1..=1000000",
            ));
        }
        if !(1..=10_000).contains(&w.batch_max) {
            return Err(invalid("events.webhook.batch_max", "must be 1..=10000"));
        }
        Ok(())
    }
}

fn validate_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_LEN {
        return Err(format!("longer than {MAX_URL_LEN} bytes"));
    }
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a valid URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err("must start with http:// or https://".into()),
    }
    let Some(authority) = uri.authority() else {
        return Err("has no host".into());
    };
    if authority.as_str().contains('@') {
        // Credentials in the URL would end up in logs and errors: use `token_file`.
        return Err("must not contain credentials (use events.webhook.token_file)".into());
    }
    if authority.host().is_empty() {
        return Err("has no host".into());
    }
    Ok(())
}

/// The token file must be a regular file that others can neither read nor write.
fn check_token_file(path: &Path) -> Result<std::fs::Metadata, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o006 != 0 {
        return Err(format!(
            "{} is readable or writable by others (mode {mode:04o}); `chmod 600` it",
            path.display()
        ));
    }
    if meta.size() > MAX_TOKEN_BYTES {
        return Err(format!(
            "{} is larger than {MAX_TOKEN_BYTES} bytes",
            path.display()
        ));
    }
    Ok(meta)
}

/// A bearer token. Its value never appears in `Debug` output, logs or errors.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token (surrounding whitespace trimmed). Errors name the file, never its content.
    pub fn read(path: &Path) -> Result<Self, Invalid> {
        let field = "events.webhook.token_file";
        check_token_file(path).map_err(|reason| invalid(field, reason))?;
        let mut raw = Vec::new();
        File::open(path)
            .and_then(|f| f.take(MAX_TOKEN_BYTES + 1).read_to_end(&mut raw))
            .map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))?;
        if raw.len() as u64 > MAX_TOKEN_BYTES {
            return Err(invalid(
                field,
                format!("{} is larger than {MAX_TOKEN_BYTES} bytes", path.display()),
            ));
        }
        let token = std::str::from_utf8(&raw).unwrap_or("").trim();
        // Visible ASCII only: anything else could split or smuggle HTTP headers.
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                field,
                format!(
                    "{} must hold one token of visible ASCII characters",
                    path.display()
                ),
            ));
        }
        Ok(Self(token.to_string()))
    }

    pub(super) fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> EventsConfig {
        toml::from_str(toml_text).expect("valid TOML")
    }

    fn err(c: &EventsConfig) -> String {
        c.validate().expect_err("invalid").to_string()
    }

    #[test]
    fn defaults_and_field_paths() {
        let c = parse("");
        assert_eq!(c, EventsConfig::default());
        assert_eq!(c.max_file_bytes, 100 * 1024 * 1024);
        assert_eq!(c.max_files, 5);
        c.validate().expect("defaults are valid");
        let w = parse("[webhook]\nurl = \"https://siem.example:8443/events\"\n");
        let hook = w.webhook.clone().expect("webhook");
        assert_eq!(
            (
                hook.timeout_secs,
                hook.max_retries,
                hook.queue_capacity,
                hook.batch_max
            ),
            (5, 5, 10_000, 100)
        );
        w.validate().expect("valid webhook");

        for (text, field) in [
            ("max_files = 1001", "events.max_files"),
            ("[webhook]\nurl = \"ftp://x/\"", "events.webhook.url"),
            ("[webhook]\nurl = \"http://\"", "events.webhook.url"),
            ("[webhook]\nurl = \"not a url\"", "events.webhook.url"),
            (
                "[webhook]\nurl = \"http://user:pw@h/\"",
                "events.webhook.url",
            ),
            (
                "[webhook]\nurl = \"http://h/\"\ntimeout_secs = 0",
                "events.webhook.timeout_secs",
            ),
            (
                "[webhook]\nurl = \"http://h/\"\nmax_retries = 101",
                "events.webhook.max_retries",
            ),
            (
                "[webhook]\nurl = \"http://h/\"\nqueue_capacity = 0",
                "events.webhook.queue_capacity",
            ),
            (
                "[webhook]\nurl = \"http://h/\"\nbatch_max = 0",
                "events.webhook.batch_max",
            ),
            (
                "[webhook]\nurl = \"http://h/\"\ntoken_file = \"/nonexistent/token\"",
                "events.webhook.token_file",
            ),
        ] {
            let e = err(&parse(text));
            assert!(e.contains(&format!("`{field}`")), "{text}: {e}");
        }
        // Credentials in the URL are refused without repeating them.
        let e = err(&parse("[webhook]\nurl = \"http://user:pw@h/\""));
        assert!(!e.contains("pw"), "{e}");
        assert!(
            toml::from_str::<EventsConfig>("[webhook]\nurl = \"http://h/\"\nbogus = 1").is_err()
        );
    }

    #[test]
    fn token_file_permissions_and_secrecy() {
        let dir = std::env::temp_dir().join(format!("ag-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cr3t-Token\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Token::read(&path).expect_err("world-readable").to_string();
        assert!(
            e.contains("readable or writable by others (mode 0644)"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        let c = parse(&format!(
            "[webhook]\nurl = \"http://h/\"\ntoken_file = {:?}",
            path.display().to_string()
        ));
        assert!(err(&c).contains("`events.webhook.token_file`"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        c.validate().expect("0600 token file");
        let token = Token::read(&path).expect("token");
        assert_eq!(token.header_value(), "Bearer s3cr3t-Token");
        let shown = format!("{token:?} {c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");

        std::fs::write(&path, "two\nlines").unwrap();
        let e = Token::read(&path)
            .expect_err("header smuggling")
            .to_string();
        assert!(e.contains("visible ASCII"), "{e}");
        std::fs::write(&path, "").unwrap();
        assert!(Token::read(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
