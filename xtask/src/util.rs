//! Helpers shared by the xtask commands (and by `bench`).

use std::{
    env,
    ffi::OsStr,
    fs,
    io::ErrorKind,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context as _, Result};

/// The workspace root (the directory holding the top-level Cargo.toml).
pub fn workspace_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}

/// A `cargo` command that runs in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(workspace_root());
    cmd
}

/// The cargo target directory: `CARGO_TARGET_DIR` if set, else what `cargo metadata` reports
/// (which also honours `build.target-dir` in `.cargo/config.toml`).
pub fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        return Ok(if dir.is_absolute() {
            dir
        } else {
            workspace_root().join(dir)
        });
    }
    let metadata = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    json_string_field(&metadata, "target_directory")
        .map(PathBuf::from)
        .context("`cargo metadata` output has no target_directory")
}

/// The agent binary for the given profile.
pub fn agent_bin(release: bool) -> Result<PathBuf> {
    let profile = if release { "release" } else { "debug" };
    Ok(target_dir()?.join(profile).join("api-guard"))
}

/// Builds the agent (`cargo build -p api-guard`; api-guard's build.rs builds and embeds the
/// eBPF object) and returns the binary's path. The toolchain must be set up first.
pub fn build_agent(release: bool) -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--package", "api-guard"]);
    if release {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    let bin = agent_bin(release)?;
    if !bin.is_file() {
        bail!("the build succeeded but {} does not exist", bin.display());
    }
    Ok(bin)
}

/// The shared data directory the tests read (corpus, design notes): `API_GUARD_SHARED` if set,
/// else `../shared` beside the repository.
pub fn shared_dir() -> Result<PathBuf> {
    let (dir, origin) = match env::var_os("API_GUARD_SHARED").filter(|d| !d.is_empty()) {
        Some(dir) => (PathBuf::from(dir), "API_GUARD_SHARED"),
        None => (
            workspace_root().join("..").join("shared"),
            "the repository's sibling",
        ),
    };
    fs::canonicalize(&dir)
        .ok()
        .filter(|d| d.is_dir())
        .with_context(|| {
            format!(
                "the shared data directory {} ({origin}) is missing: the tests read the corpus \
                 from it; put the `shared` directory beside the repository or set API_GUARD_SHARED",
                dir.display()
            )
        })
}

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // /proc/self/status: "Uid:\t<real>\t<effective>\t<saved>\t<fs>"
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Stops with an explanation unless running as root.
pub fn require_root() -> Result<()> {
    if is_root() {
        return Ok(());
    }
    bail!(
        "root is required: the agent loads eBPF programs, setup mounts tracefs/bpffs and installs \
         Debian packages, and the integration tests create network namespaces. Run this command \
         again as root (only `cargo xtask build` and `cargo xtask setup --dry-run` work without)."
    )
}

/// `$CARGO_HOME`, defaulting to `~/.cargo`.
pub fn cargo_home() -> Result<PathBuf> {
    match env::var_os("CARGO_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => Ok(home_dir()?.join(".cargo")),
    }
}

pub fn home_dir() -> Result<PathBuf> {
    env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// Puts `$CARGO_HOME/bin` on PATH (for this process and its children) if it is missing, so
/// `cargo`, `rustup` and a `cargo install`ed `bpf-linker` are found however we were started.
pub fn ensure_cargo_bin_on_path() {
    let Ok(bin) = cargo_home().map(|home| home.join("bin")) else {
        return;
    };
    let path = env::var_os("PATH").unwrap_or_default();
    if env::split_paths(&path).any(|p| p == bin) {
        return;
    }
    if let Ok(joined) = env::join_paths(std::iter::once(bin).chain(env::split_paths(&path))) {
        env::set_var("PATH", joined);
    }
}

/// The first executable called `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The command line as a shell would show it, with the variables it sets in front.
pub fn show(cmd: &Command) -> String {
    fn quote(s: &OsStr) -> String {
        let s = s.to_string_lossy();
        let plain = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=+,@%".contains(c));
        if plain {
            s.into_owned()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    }
    let envs = cmd
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| format!("{}={}", k.to_string_lossy(), quote(v))));
    let words = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(quote);
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

fn spawn_error(cmd: &Command, err: std::io::Error) -> anyhow::Error {
    let program = cmd.get_program().to_string_lossy().into_owned();
    if err.kind() == ErrorKind::NotFound {
        anyhow::anyhow!(
            "could not run `{}`: `{program}` is not installed or not on PATH",
            show(cmd)
        )
    } else {
        anyhow::Error::new(err).context(format!("could not run `{}`", show(cmd)))
    }
}

/// Prints the command, runs it with inherited stdio and fails, naming it, unless it succeeds.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", show(cmd));
    let status = cmd.status().map_err(|e| spawn_error(cmd, e))?;
    if !status.success() {
        bail!("`{}` failed ({status})", show(cmd));
    }
    Ok(())
}

/// Runs the command quietly and returns its stdout; on failure the error carries its stderr.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(cmd, e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("`{}` failed ({}): {}", show(cmd), out.status, stderr.trim());
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8", show(cmd)))
}

/// The string value of the first `"key": "..."` in a JSON document. Enough for the flat
/// top-level fields of `cargo metadata` without a JSON dependency.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let pattern = format!("\"{key}\"");
    let rest = &json[json.find(&pattern)? + pattern.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = rest.chars();
    loop {
        match chars.next()? {
            '"' => return Some(value),
            '\\' => match chars.next()? {
                'n' => value.push('\n'),
                't' => value.push('\t'),
                'r' => value.push('\r'),
                'b' => value.push('\u{8}'),
                'f' => value.push('\u{c}'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => value.push(other), // \" \\ \/
            },
            c => value.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_field_plain_and_escaped() {
        let json =
            r#"{"packages":[],"target_directory":"/a \"b\"\\c\/d\u00e9","workspace_root":"/w"}"#;
        assert_eq!(
            json_string_field(json, "target_directory").as_deref(),
            Some("/a \"b\"\\c/dé")
        );
        assert_eq!(
            json_string_field(json, "workspace_root").as_deref(),
            Some("/w")
        );
        assert_eq!(json_string_field(json, "missing"), None);
        assert_eq!(json_string_field(r#"{"k": "unterminated"#, "k"), None);
    }

    #[test]
    fn show_quotes_only_when_needed() {
        let mut cmd = Command::new("cargo");
        cmd.env("LLVM_PREFIX", "/x y")
            .args(["+nightly", "install", "it's"]);
        assert_eq!(
            show(&cmd),
            r#"LLVM_PREFIX='/x y' cargo +nightly install 'it'\''s'"#
        );
    }
}
