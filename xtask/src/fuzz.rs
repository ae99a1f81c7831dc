//! `cargo xtask fuzz`: runs the cargo-fuzz targets in fuzz/ (request normaliser, whole
//! detection engine, HTTP/1 and HTTP/2 connection parsers, ring record decoder, HPACK
//! decoder) for a while, installing cargo-fuzz first if it is missing.

use std::{ffi::OsString, process::Command};

use anyhow::{Context as _, Result};

use crate::{setup, util};

/// Every target in fuzz/Cargo.toml.
const TARGETS: [&str; 6] = ["normalize", "detect", "http1", "http2", "record", "hpack"];

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// Targets to run (default: all of them, one after the other).
    #[arg(value_parser = TARGETS)]
    targets: Vec<String>,
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Passed to libFuzzer, e.g. `-- -max_len=65536`.
    #[arg(last = true)]
    extra: Vec<OsString>,
}

pub fn fuzz(args: &FuzzArgs) -> Result<()> {
    setup::ensure(setup::Scope::Toolchain)?;
    if util::find_on_path("cargo-fuzz").is_none() {
        let mut install = Command::new("cargo");
        install.args(["install", "cargo-fuzz", "--locked"]);
        util::run(&mut install).context("installing cargo-fuzz")?;
    }
    let targets: Vec<&str> = if args.targets.is_empty() {
        TARGETS.to_vec()
    } else {
        args.targets.iter().map(String::as_str).collect()
    };
    for target in targets {
        let mut cmd = Command::new("cargo");
        cmd.current_dir(util::workspace_root().join("fuzz"))
            .args(["+nightly", "fuzz", "run", "--release", target, "--"])
            .arg(format!("-max_total_time={}", args.secs))
            // Bounded memory is part of what is checked.
            .arg("-rss_limit_mb=2048")
            // An input that takes seconds is a denial of service: report it as a failure.
            .arg("-timeout=5")
            .arg("-max_len=1048576");
        // Tokens of the input format, when the target has a dictionary.
        let dict = util::workspace_root()
            .join("fuzz")
            .join("dicts")
            .join(format!("{target}.dict"));
        if dict.is_file() {
            cmd.arg(format!("-dict={}", dict.display()));
        }
        cmd.args(&args.extra);
        util::run(&mut cmd).with_context(|| format!("fuzz target {target} failed"))?;
    }
    Ok(())
}
