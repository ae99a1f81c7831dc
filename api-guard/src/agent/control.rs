//! The control socket: a Unix socket (mode 0600 in a 0700 directory, peers must be root or
//! the daemon's own user) through which `api-guard block|unblock|blocks` talk to the running
//! daemon, and `api-guard inventory` reads the live API inventory. One JSON request line,
//! one JSON response line per connection.

use std::{
    io,
    os::unix::fs::{DirBuilderExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{
    analysis::discover::SharedInventory,
    enforce::{blocklist::BlockReason, target::Target, BlockRequest, BlockView, Enforcer},
    llm::{
        egress::{EgressRow, SharedEgress},
        usage::{SharedUsage, UsageRow},
    },
    status::{Status, StatusSource},
};

pub const DEFAULT_SOCKET: &str = "/run/api-guard/api-guard.sock";
const MAX_REQUEST: u64 = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest operator-supplied reason kept.
const MAX_REASON: usize = 256;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Block {
        target: String,
        /// `None`: the configured default.
        for_secs: Option<u64>,
        reason: Option<String>,
    },
    Unblock {
        target: String,
    },
    Blocks,
    /// The API inventory, and its comparison with the configured spec.
    Inventory,
    /// What the daemon is doing (`api-guard status`).
    Status,
    /// LLM token accounting per key hash × model × client (`api-guard llm usage`).
    LlmUsage,
    /// Local processes calling AI providers (`api-guard llm egress`).
    LlmEgress,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `block`: blocked / extended / would_block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<BlockView>>,
    /// Set when no interface is guarded: blocks are recorded but drop nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// `inventory`: the snapshot document (`{"version":1,"endpoints":[...]}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<serde_json::Value>,
    /// `inventory`: shadow and unused endpoints, when the daemon has a spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `llm_usage`: the accounting rows, biggest spenders first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_usage: Option<LlmUsageView>,
    /// `llm_egress`: the egress inventory rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub llm_egress: Option<LlmEgressView>,
}

/// The `llm_egress` answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LlmEgressView {
    pub rows: Vec<EgressRow>,
    /// Rows evicted (least recently seen first) because the table was full.
    pub evicted: u64,
}

/// The `llm_usage` answer.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LlmUsageView {
    pub rows: Vec<UsageRow>,
    /// Calls accounted to the `other` row because the table was full.
    pub overflowed: u64,
}

impl Response {
    fn error(e: impl ToString) -> Self {
        Self {
            error: Some(e.to_string()),
            ..Self::default()
        }
    }
    fn ok() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }
}

/// What the control socket acts on.
#[derive(Clone)]
pub struct Handlers {
    pub enforcer: Arc<Enforcer>,
    /// `None` when discovery is disabled.
    pub inventory: Option<SharedInventory>,
    pub llm_usage: SharedUsage,
    pub llm_egress: SharedEgress,
    pub status: StatusSource,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another api-guard is running: its control socket {0} answers")]
    InUse(PathBuf),
    #[error("control socket {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Binds the socket; refuses when another daemon answers on it, replaces a stale one.
pub async fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        std::fs::remove_file(path).map_err(io_err)?;
    }
    let listener = UnixListener::bind(path).map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    Ok(listener)
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    handlers: Handlers,
    shutdown: CancellationToken,
) {
    info!(socket = %path.display(), "Control socket ready");
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => { debug!(%error, "Control accept failed"); continue; }
            },
            () = shutdown.cancelled() => break,
        };
        let handlers = handlers.clone();
        tokio::spawn(async move {
            let handled = tokio::time::timeout(IO_TIMEOUT, handle(stream, &handlers));
            match handled.await {
                Ok(Err(error)) => debug!(%error, "Control request failed"),
                Err(_) => debug!("Control request timed out"),
                Ok(Ok(())) => {}
            }
        });
    }
    let _ = std::fs::remove_file(&path);
}

async fn handle(stream: UnixStream, handlers: &Handlers) -> io::Result<()> {
    // The socket's mode already keeps others out; the peer check holds even if it is
    // loosened by hand.
    let cred = stream.peer_cred()?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let (read, mut write) = stream.into_split();
    let response = if cred.uid() != 0 && cred.uid() != me {
        warn!(
            uid = cred.uid(),
            "Control request from an unprivileged user refused"
        );
        Response::error("permission denied")
    } else {
        let mut line = String::new();
        let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
        reader.read_line(&mut line).await?;
        match serde_json::from_str::<Request>(&line) {
            // Serialising a large inventory takes a while: not on a runtime worker.
            Ok(req) => {
                let handlers = handlers.clone();
                tokio::task::spawn_blocking(move || execute(req, &handlers))
                    .await
                    .unwrap_or_else(|e| Response::error(format!("internal error: {e}")))
            }
            Err(e) => Response::error(format!("bad request: {e}")),
        }
    };
    let mut out = serde_json::to_vec(&response).unwrap_or_default();
    out.push(b'\n');
    write.write_all(&out).await?;
    write.shutdown().await
}

fn execute(req: Request, handlers: &Handlers) -> Response {
    let enforcer = &handlers.enforcer;
    let not_guarded = enforcer
        .interfaces()
        .is_empty()
        .then(|| "no XDP interface is configured (xdp.interfaces): nothing is dropped".to_string());
    match req {
        Request::Block {
            target,
            for_secs,
            reason,
        } => {
            let target: Target = match target.parse() {
                Ok(t) => t,
                Err(e) => return Response::error(e),
            };
            let secs = for_secs.unwrap_or_else(|| enforcer.default_block_secs());
            if secs == 0 || secs > crate::config::MAX_BLOCK_SECS {
                return Response::error(format!(
                    "duration must be 1..={} seconds",
                    crate::config::MAX_BLOCK_SECS
                ));
            }
            let detail = reason.map(|r| {
                r.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_REASON)
                    .collect()
            });
            match enforcer.block(BlockRequest {
                target,
                duration: Some(Duration::from_secs(secs)),
                reason: BlockReason::Manual,
                policy: None,
                detail,
            }) {
                Ok(outcome) => Response {
                    outcome: serde_json::to_value(outcome)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from)),
                    warning: not_guarded,
                    ..Response::ok()
                },
                Err(e) => Response::error(e),
            }
        }
        Request::Unblock { target } => match target.parse::<Target>() {
            Ok(t) => match enforcer.unblock(&t) {
                Ok(()) => Response::ok(),
                Err(e) => Response::error(e),
            },
            Err(e) => Response::error(e),
        },
        Request::Blocks => Response {
            blocks: Some(enforcer.list()),
            warning: not_guarded,
            ..Response::ok()
        },
        Request::Inventory => match &handlers.inventory {
            Some(shared) => Response {
                inventory: Some(shared.snapshot()),
                comparison: shared
                    .comparison()
                    .and_then(|c| serde_json::to_value(c).ok()),
                ..Response::ok()
            },
            None => Response::error("API discovery is disabled (discover.enabled = false)"),
        },
        Request::LlmUsage => {
            let book = handlers.llm_usage.lock();
            Response {
                llm_usage: Some(LlmUsageView {
                    rows: book.rows(),
                    overflowed: book.overflowed(),
                }),
                ..Response::ok()
            }
        }
        Request::LlmEgress => {
            let book = handlers.llm_egress.lock();
            Response {
                llm_egress: Some(LlmEgressView {
                    rows: book.rows(),
                    evicted: book.evicted(),
                }),
                ..Response::ok()
            }
        }
        Request::Status => Response {
            status: Some(handlers.status.status(enforcer)),
            warning: not_guarded,
            ..Response::ok()
        },
    }
}

/// Client side: sends `req` to the daemon at `path` (blocking std I/O; the CLI has no runtime).
pub fn call(path: &Path, req: &Request) -> anyhow::Result<Response> {
    use std::io::{BufRead as _, Write as _};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "no api-guard daemon is running (nothing listens on {}; see --control-socket)",
            path.display()
        ),
        io::ErrorKind::PermissionDenied => {
            anyhow::anyhow!("{}: permission denied (run as root)", path.display())
        }
        _ => anyhow::anyhow!("connecting to {}: {e}", path.display()),
    })?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    io::BufReader::new(stream).read_line(&mut answer)?;
    serde_json::from_str(&answer)
        .map_err(|e| anyhow::anyhow!("unreadable answer from the daemon: {e}: {answer:?}"))
}

/// `10m`, `90s`, `2h`, `1d`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 90s, 10m, 2h, 1d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d)")),
    };
    let secs = n.checked_mul(scale).ok_or("duration too long")?;
    if secs == 0 || secs > crate::config::MAX_BLOCK_SECS {
        return Err(format!(
            "{s:?}: must be 1 s ..= {} days",
            crate::config::MAX_BLOCK_SECS / 86_400
        ));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10m"), Ok(600));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        for bad in [
            "",
            "m",
            "0",
            "10x",
            "-5",
            "1.5h",
            "400d",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_round_trip() {
        let json = r#"{"op":"block","target":"10.0.0.1","for_secs":60,"reason":"x"}"#;
        let Request::Block {
            target, for_secs, ..
        } = serde_json::from_str(json).unwrap()
        else {
            panic!()
        };
        assert_eq!((target.as_str(), for_secs), ("10.0.0.1", Some(60)));
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
    }
}
