//! Small process, file and polling helpers shared by the harness modules.

use std::fs;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// A number unique within this process; with the pid it names namespaces, dirs and comms.
pub fn next_id() -> u32 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Root directory for everything the harness writes (temp dirs, lock files, markers).
pub fn harness_root() -> PathBuf {
    std::env::temp_dir().join("api-guard-tests")
}

/// The workspace's cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace
/// root when relative), else `<workspace>/target`.
pub fn target_dir() -> Result<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("tests crate has no parent directory")?;
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target")))
}

/// PyPI's `openapi-spec-validator`, installed by `cargo xtask setup` (and `cargo xtask
/// test`) into the venv `$API_GUARD_TOOLS_VENV`, by default `<target dir>/tools/venv`.
/// Fails (never skips) when it is not there.
pub fn openapi_validator() -> Result<PathBuf> {
    let venv = tools_venv()?;
    let bin = venv.join("bin").join("openapi-spec-validator");
    ensure!(
        bin.is_file(),
        "the OpenAPI validator is missing at {}: `cargo xtask setup` (or `cargo xtask test`) \
         installs PyPI's openapi-spec-validator into that venv",
        bin.display()
    );
    Ok(bin)
}

/// The venv `cargo xtask setup` installs the pinned PyPI tools into (xtask's `PYPI_TOOLS`):
/// `$API_GUARD_TOOLS_VENV`, by default `<target dir>/tools/venv`.
pub fn tools_venv() -> Result<PathBuf> {
    Ok(match std::env::var_os("API_GUARD_TOOLS_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => target_dir()?.join("tools").join("venv"),
    })
}

/// The venv's `site-packages`, for `PYTHONPATH`: scripts run by [`python3_bin`] (or a
/// [`CommExe`] link to it, which a venv would not recognise as its own interpreter) import
/// the venv's packages through it. The venv is made with that same python, so compiled
/// packages (grpcio) fit. Fails (never skips) unless every module of `modules` is there.
pub fn tools_pythonpath(modules: &[&str]) -> Result<PathBuf> {
    let venv = tools_venv()?;
    let lib = venv.join("lib");
    let site = fs::read_dir(&lib)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir());
    let missing = |what: &str| {
        format!(
            "{what} is missing from the tools venv {}: `cargo xtask setup` installs the pinned \
             PyPI packages (hypercorn, uvicorn, grpcio, h2) there",
            venv.display()
        )
    };
    let site = site.with_context(|| missing("site-packages"))?;
    for module in modules {
        let present = site.join(module).is_dir() || site.join(format!("{module}.py")).is_file();
        ensure!(present, "{}", missing(&format!("python module {module:?}")));
    }
    Ok(site)
}

/// Fails (rather than silently skipping) when not root: a skipped test checks nothing.
pub fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        bail!("this test needs root (network namespaces, eBPF); running as uid {euid}");
    }
    Ok(())
}

/// A directory removed on drop (kept when `API_GUARD_KEEP_TEST_DIRS` is set, for debugging).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        let base = harness_root();
        fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
        let path = base.join(format!("{prefix}-{}-{}", std::process::id(), next_id()));
        // A directory left by an earlier process that had the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("API_GUARD_KEEP_TEST_DIRS").is_some() {
            eprintln!("keeping {}", self.path.display());
            return;
        }
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Makes the child receive `signal` when the spawning thread exits, so a killed test
/// binary never leaves servers or a daemon running.
pub fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    // SAFETY: the closure only calls prctl, which is async-signal-safe and touches no
    // state shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs a short command to completion; an error carries the command line and its stderr.
pub fn run_checked(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a bounded child run produced.
#[derive(Debug)]
pub struct Finished {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Spawns `cmd` (stdout/stderr captured), records its pid, and kills it after `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Result<Finished> {
    die_with_parent(cmd, libc::SIGKILL);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {cmd:?}"))?;
    let pid = child.id();
    let out_reader = spawn_reader(child.stdout.take());
    let err_reader = spawn_reader(child.stderr.take());
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap_or_default();
            bail!(
                "{cmd:?} did not finish within {timeout:?}; stderr: {}",
                String::from_utf8_lossy(&stderr)
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ok(Finished {
        pid,
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed: start.elapsed(),
    })
}

fn spawn_reader<R: Read + Send + 'static>(src: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut src) = src {
            let _ = src.read_to_end(&mut buf);
        }
        buf
    })
}

/// SIGKILLs and reaps a child if it is still running.
pub fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Sends `signal` and waits up to `timeout` for the child to exit.
pub fn signal_and_wait(
    child: &mut Child,
    signal: libc::c_int,
    timeout: Duration,
) -> Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        return Ok(status);
    }
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    // SAFETY: kill has no memory-safety preconditions; the pid is our unreaped child.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(io::Error::last_os_error()).context("kill");
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("pid {pid} did not exit within {timeout:?} after signal {signal}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `probe` every `interval` until it yields `Some`, or fails after `timeout` with
/// the last error (or `what`) in the message.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match probe() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() > deadline {
            return match last_err {
                Some(e) => {
                    Err(e.context(format!("timed out after {timeout:?} waiting for {what}")))
                }
                None => bail!("timed out after {timeout:?} waiting for {what}"),
            };
        }
        thread::sleep(interval);
    }
}

/// The Debian python (linked against the system libssl.so.3), else whatever `python3` is.
pub fn python3_bin() -> PathBuf {
    let debian = Path::new("/usr/bin/python3");
    if debian.exists() {
        debian.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// Resolves a program name through PATH (for symlinks whose name sets the comm).
pub fn which(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .with_context(|| format!("{program} not found in PATH"))
}

/// A program reached through a symlink (in a temp dir) whose name becomes the process
/// comm, so a `[capture] comms` filter can select exactly one test's processes.
pub struct CommExe {
    path: PathBuf,
    comm: String,
    _dir: TempDir,
}

impl CommExe {
    /// A symlink named `comm` (1-15 bytes, no '/') to `program`.
    pub fn new(program: &Path, comm: &str) -> Result<CommExe> {
        ensure!(
            !comm.is_empty() && comm.len() <= 15 && !comm.contains('/'),
            "comm {comm:?} must be 1-15 bytes without '/'"
        );
        let dir = TempDir::new("exe")?;
        let path = dir.join(comm);
        std::os::unix::fs::symlink(program, &path)
            .with_context(|| format!("linking {} to {}", path.display(), program.display()))?;
        Ok(CommExe {
            path,
            comm: comm.to_string(),
            _dir: dir,
        })
    }

    /// `python3_bin()` under the name `comm`.
    pub fn python(comm: &str) -> Result<CommExe> {
        let python = python3_bin();
        Self::new(&which(&python.to_string_lossy()).unwrap_or(python), comm)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn comm(&self) -> &str {
        &self.comm
    }
}

/// A comm (`/proc/<pid>/comm`, at most 15 bytes) unique to this process and call; the
/// prefix is cut to 4 ASCII characters so pid and counter always fit.
pub fn unique_comm(prefix: &str) -> String {
    let prefix: String = prefix
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(4)
        .collect();
    format!("{prefix}{}x{}", std::process::id(), next_id())
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// CLOCK_MONOTONIC in nanoseconds, the clock of the exchanges' `*_ns` fields.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Writes `size` bytes of `fill` to `path`.
pub fn write_filled(path: &Path, size: usize, fill: u8) -> Result<()> {
    fs::write(path, vec![fill; size]).with_context(|| format!("writing {}", path.display()))
}

/// Deterministic text of `len` bytes with no attack syntax (words and spaces): padding that
/// no detector should flag.
pub fn filler(len: usize) -> String {
    const WORDS: [&str; 8] = [
        "alpha", "bravo", "delta", "kilo", "lima", "oscar", "tango", "zulu",
    ];
    let mut s = String::with_capacity(len + 8);
    let mut i = 0usize;
    while s.len() < len {
        s.push_str(WORDS[(i * 7 + i / 3) % WORDS.len()]);
        s.push(' ');
        i += 1;
    }
    s.truncate(len);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_comm_fits_in_task_comm() {
        let a = unique_comm("agcurl");
        let b = unique_comm("agcurl");
        assert!(a.len() <= 15, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }
}
