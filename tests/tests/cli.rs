//! The command line as an operator meets it (no root, no daemon): `--version`, `--help`,
//! shell completions, and `check-config` on the shipped example, on a file with a bad value
//! (file, line and field named), on a world-writable file (refused), and talking to a daemon
//! that is not there (a clear error, not a backtrace).

use std::{fs, os::unix::fs::PermissionsExt as _, process::Command, time::Duration};

use anyhow::{ensure, Result};
use integration_tests::{
    agent::{agent_binary, AgentOptions},
    util::{run_with_timeout, Finished},
    TempDir,
};

fn api_guard(args: &[&str]) -> Result<Finished> {
    let bin = agent_binary(&AgentOptions::default())?;
    run_with_timeout(Command::new(bin).args(args), Duration::from_secs(20))
}

#[test]
fn version_help_and_completions() -> Result<()> {
    let v = api_guard(&["--version"])?;
    ensure!(v.status.success());
    ensure!(
        v.stdout_text().trim() == format!("api-guard {}", env!("CARGO_PKG_VERSION")),
        "{}",
        v.stdout_text()
    );
    let help = api_guard(&["--help"])?.stdout_text();
    for sub in [
        "run",
        "check-config",
        "status",
        "block",
        "unblock",
        "blocks",
        "inventory",
        "detect",
        "completions",
    ] {
        ensure!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{sub} "))),
            "--help lacks {sub}:\n{help}"
        );
    }
    for (shell, marker) in [
        ("bash", "complete -F _api__guard"),
        ("zsh", "#compdef api-guard"),
        ("fish", "complete -c api-guard"),
    ] {
        let out = api_guard(&["completions", shell])?;
        ensure!(out.status.success(), "{shell}: {}", out.stderr_text());
        let script = out.stdout_text();
        ensure!(script.contains(marker), "{shell} script lacks {marker:?}");
        ensure!(
            script.contains("check-config") && script.contains("control-socket"),
            "{shell} script lacks subcommands or flags"
        );
    }
    Ok(())
}

#[test]
fn check_config_names_file_line_and_field_and_refuses_unsafe_files() -> Result<()> {
    let example = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/api-guard.example.toml"
    );
    let ok = api_guard(&["check-config", example])?;
    ensure!(
        ok.status.success() && ok.stdout_text().trim().ends_with(": ok"),
        "{}{}",
        ok.stdout_text(),
        ok.stderr_text()
    );

    let dir = TempDir::new("cli")?;
    let bad = dir.path().join("bad.toml");
    fs::write(&bad, "[detect]\nenabled = true\n\n[xdp]\nmax_cidrs = 0\n")?;
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o600))?;
    let out = api_guard(&["check-config", bad.to_str().unwrap_or_default()])?;
    ensure!(!out.status.success());
    let err = out.stderr_text();
    ensure!(
        err.trim()
            == format!(
                "error: {}:5: invalid value for `xdp.max_cidrs`: must be > 0",
                bad.display()
            ),
        "{err}"
    );
    ensure!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );

    fs::write(&bad, "[detect]\nenabled = true\n")?;
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o666))?;
    let out = api_guard(&["check-config", bad.to_str().unwrap_or_default()])?;
    ensure!(!out.status.success());
    ensure!(
        out.stderr_text().contains("world-writable"),
        "{}",
        out.stderr_text()
    );
    Ok(())
}

#[test]
fn control_commands_without_a_daemon_say_so() -> Result<()> {
    let dir = TempDir::new("cli-nodaemon")?;
    let socket = dir.path().join("none.sock");
    let socket = socket.to_str().unwrap_or_default();
    for args in [
        vec!["status", "--control-socket", socket],
        vec!["inventory", "--control-socket", socket],
        vec!["blocks", "--control-socket", socket],
    ] {
        let out = api_guard(&args)?;
        ensure!(!out.status.success(), "{args:?}");
        let err = out.stderr_text();
        ensure!(
            err.starts_with("error: no api-guard daemon is running"),
            "{args:?}: {err}"
        );
    }
    Ok(())
}
