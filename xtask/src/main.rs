//! Developer commands for api-guard: `cargo xtask setup|build|run|test|bench`.

mod bench;
mod bench_rate;
mod bench_stairs;
mod bench_xdp;
mod eval;
mod fuzz;
mod lint;
mod setup;
mod util;

use std::{
    ffi::OsString,
    os::unix::process::CommandExt as _,
    process::{Command, ExitCode},
};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use setup::Scope;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Developer commands for api-guard"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building, running and testing need: nightly rust-src, bpf-linker, Debian
    /// packages; mount tracefs and bpffs. Idempotent; needs root (except --dry-run).
    Setup(setup::SetupArgs),
    /// Build the agent (the eBPF object is built and embedded by api-guard's build.rs) and print
    /// the binary's path. Sets up the toolchain only, so it needs no root.
    Build {
        /// Build the debug profile instead of release.
        #[arg(long)]
        debug: bool,
    },
    /// Set up, build, then replace this process with `api-guard run [ARGS...]` (as root).
    Run {
        /// Passed to `api-guard run`, e.g. `-- --exchanges - --metrics-addr 127.0.0.1:9464`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Set up, run the hygiene gates (rustfmt, clippy on every crate, eBPF included: any
    /// warning fails), build the agent once, then run the whole test suite, root/eBPF
    /// integration tests included (as root). The gates are skipped when EXTRA picks packages.
    Test {
        /// Passed to `cargo test`, e.g. `-- -p integration-tests -- --nocapture`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "EXTRA"
        )]
        extra: Vec<OsString>,
    },
    /// The hygiene gates alone: rustfmt, clippy on the workspace and on the eBPF crate.
    Lint,
    /// Measure the detection engine on ../shared/corpus: recall per attack category and
    /// paranoia level, false-positive rates on the benign sets (prints tables).
    Eval(eval::EvalArgs),
    /// Fuzz the request normaliser and the detection engine (cargo-fuzz, nightly).
    Fuzz(fuzz::FuzzArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCmd,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Measure the agent's overhead on a real HTTP server.
    Overhead(bench::OverheadArgs),
    /// Measure the XDP guard: ns per packet, drop cost vs nftables, legitimate traffic under
    /// a flood, breach-to-drop time.
    Xdp(bench_xdp::XdpArgs),
    /// Connection parsing cost per request, HTTP/1.1 and HTTP/2 (criterion; no root needed).
    Http {
        /// Passed to the criterion harness, e.g. `-- h2_get_1k`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// Detection engine cost per request (criterion; no root needed).
    Detect {
        /// Passed to the criterion harness, e.g. `-- benign_json_1k --sample-size 20`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// API discovery cost per exchange: route templating, inventory recording, spec checks
    /// (criterion; no root needed).
    Discover {
        /// Passed to the criterion harness, e.g. `-- observe --sample-size 20`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
    /// LLM exchange analysis cost: recognition, request facts, usage from a 200-chunk SSE
    /// stream and a JSON answer (criterion; no root needed).
    Llm {
        /// Passed to the criterion harness, e.g. `-- sse_200 --sample-size 20`.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    util::ensure_cargo_bin_on_path();
    let result = match cli.command {
        Cmd::Setup(args) => setup::setup(&args),
        Cmd::Build { debug } => build(!debug),
        Cmd::Run { args } => run(&args),
        Cmd::Test { extra } => test(&extra),
        Cmd::Lint => setup::ensure(Scope::Toolchain).and_then(|()| lint::check()),
        Cmd::Eval(args) => eval::eval(&args),
        Cmd::Fuzz(args) => fuzz::fuzz(&args),
        Cmd::Bench {
            command: BenchCmd::Detect { args },
        } => criterion_bench("detect", &args),
        Cmd::Bench {
            command: BenchCmd::Discover { args },
        } => criterion_bench("discover", &args),
        Cmd::Bench {
            command: BenchCmd::Http { args },
        } => criterion_bench("http", &args),
        Cmd::Bench {
            command: BenchCmd::Llm { args },
        } => criterion_bench("llm", &args),
        Cmd::Bench { command } => prepare_bench().and_then(|()| match command {
            BenchCmd::Overhead(args) => bench::overhead(&args),
            BenchCmd::Xdp(args) => bench_xdp::xdp(&args),
            BenchCmd::Detect { .. }
            | BenchCmd::Discover { .. }
            | BenchCmd::Http { .. }
            | BenchCmd::Llm { .. } => {
                unreachable!("handled above")
            }
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line with the whole context chain ("tests failed: `cargo test ...` failed").
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(release: bool) -> Result<()> {
    setup::ensure(Scope::Toolchain)?;
    let bin = util::build_agent(release)?;
    println!("{}", bin.display());
    Ok(())
}

fn run(args: &[OsString]) -> Result<()> {
    setup::ensure(Scope::All)?;
    let bin = util::build_agent(true)?;
    let mut cmd = Command::new(&bin);
    cmd.arg("run").args(args);
    eprintln!("$ {}", util::show(&cmd));
    // exec: the agent takes over this process, so Ctrl-C and SIGTERM reach it directly.
    let err = cmd.exec();
    Err(err).with_context(|| format!("could not start {}", bin.display()))
}

/// Benchmarks need what the tests need, and the current agent (found via `API_GUARD_BIN`).
/// `API_GUARD_BENCH_BIN` names a binary built elsewhere instead (before/after comparisons).
fn prepare_bench() -> Result<()> {
    setup::ensure(Scope::All)?;
    let bin = match std::env::var_os("API_GUARD_BENCH_BIN") {
        Some(bin) => std::path::PathBuf::from(bin),
        None => util::build_agent(true)?,
    };
    std::env::set_var("API_GUARD_BIN", bin);
    Ok(())
}

/// A criterion benchmark of the api-guard crate (userspace code only: no root needed).
fn criterion_bench(name: &str, args: &[OsString]) -> Result<()> {
    setup::ensure(Scope::Toolchain)?;
    let mut cmd = util::cargo();
    cmd.args(["bench", "--package", "api-guard", "--bench", name, "--"])
        .args(args);
    util::run(&mut cmd).with_context(|| format!("the {name} benchmark failed"))
}

fn test(extra: &[OsString]) -> Result<()> {
    setup::ensure(Scope::All)?;
    let shared = util::shared_dir()?;
    let whole_suite = !selects_packages(extra);
    if whole_suite {
        lint::check()?;
    }
    let bin = util::build_agent(true)?;
    let mut cmd = util::cargo();
    cmd.args(["test", "--release", "--no-fail-fast"]);
    if whole_suite {
        // --workspace would override a -p given in EXTRA.
        cmd.args(["--workspace", "--exclude", "api-guard-ebpf"]);
    }
    cmd.args(extra)
        .env("API_GUARD_BIN", &bin)
        .env("API_GUARD_SHARED", &shared)
        .env("API_GUARD_TOOLS_VENV", setup::tools_venv()?);
    util::run(&mut cmd).context("tests failed")
}

/// Whether cargo arguments (before a `--`) choose packages with `-p`/`--package`.
fn selects_packages(args: &[OsString]) -> bool {
    args.iter()
        .map(|a| a.to_string_lossy())
        .take_while(|a| a != "--")
        .any(|a| a.starts_with("-p") || a == "--package" || a.starts_with("--package="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn package_selection_before_separator_only() {
        assert!(selects_packages(&os(&["-p", "integration-tests"])));
        assert!(selects_packages(&os(&["-papi-guard"])));
        assert!(selects_packages(&os(&[
            "--package=api-guard",
            "--",
            "--nocapture"
        ])));
        assert!(!selects_packages(&os(&["--test", "capture", "--", "-p"])));
        assert!(!selects_packages(&[]));
    }

    #[test]
    fn trailing_args_are_passed_through() {
        let cli = Cli::try_parse_from(["xtask", "test", "--", "-p", "x", "--", "--nocapture"])
            .expect("parses");
        let Cmd::Test { extra } = cli.command else {
            panic!("not test")
        };
        assert_eq!(extra, os(&["-p", "x", "--", "--nocapture"]));

        let cli = Cli::try_parse_from(["xtask", "run", "--exchanges", "-"]).expect("parses");
        let Cmd::Run { args } = cli.command else {
            panic!("not run")
        };
        assert_eq!(args, os(&["--exchanges", "-"]));
    }
}
