//! The hygiene gates `cargo xtask test` runs before the tests (and `cargo xtask lint` alone):
//! rustfmt, clippy on the workspace, and clippy on the eBPF crate, which the ordinary
//! workspace `cargo clippy` cannot run (it is left out of the default members and only builds
//! with nightly for `bpfel-unknown-none`). Any warning fails.

use std::{env, process::Command};

use anyhow::{Context as _, Result};

use crate::{setup, util};

/// Every gate, in order of cost.
pub fn check() -> Result<()> {
    let mut fmt = util::cargo();
    fmt.args(["fmt", "--all", "--check"]);
    util::run(&mut fmt)
        .context("`cargo fmt --all --check` found unformatted code (run cargo fmt --all)")?;
    let mut clippy = util::cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--exclude",
        "api-guard-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    util::run(&mut clippy).context("clippy on the workspace failed")?;
    clippy_ebpf()
}

/// `cargo +nightly clippy` on api-guard-ebpf, for the target and with the flags aya-build
/// (api-guard/build.rs) builds it with, failing on any warning.
pub fn clippy_ebpf() -> Result<()> {
    setup::ensure(setup::Scope::Toolchain)?;
    let mut cmd = clippy_ebpf_command();
    util::run(&mut cmd).context("clippy on the eBPF crate (api-guard-ebpf) failed")
}

/// The command [`clippy_ebpf`] runs.
fn clippy_ebpf_command() -> Command {
    let mut cmd = util::cargo();
    cmd.args([
        "+nightly",
        "clippy",
        "--package",
        "api-guard-ebpf",
        "--release",
        "--target",
        "bpfel-unknown-none",
        "-Z",
        "build-std=core",
        "--",
        "-D",
        "warnings",
    ]);
    // aya-build's rustflags (0x1f-separated), so the `bpf_target_arch` cfg of aya-ebpf holds.
    let rustflags = [
        format!("--cfg=bpf_target_arch=\"{}\"", env::consts::ARCH),
        "-Cdebuginfo=2".to_owned(),
        "-Clink-arg=--btf".to_owned(),
    ]
    .join("\x1f");
    cmd.env("CARGO_ENCODED_RUSTFLAGS", rustflags);
    // As aya-build does: a RUSTC from the calling cargo would override `+nightly`.
    cmd.env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER");
    cmd
}
